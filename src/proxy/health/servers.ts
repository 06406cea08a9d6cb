// HTTP endpoints of the proxy, on kube-proxy's addresses and with its bodies:
// /healthz and /livez on --healthz-bind-address (0.0.0.0:10256), /metrics on
// --metrics-bind-address (127.0.0.1:10249), and one health-check server per
// externalTrafficPolicy=Local LoadBalancer service on its healthCheckNodePort.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { metrics, registry } from '../metrics.js';
import type { ServiceView } from '../model.js';
import type { ProxyHealth } from './proxy-health.js';

export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr);
  if (!m) throw new Error(`"${addr}" is not host:port`);
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}

function listen(server: Server, addr: string): Promise<Server> {
  const { host, port } = splitHostPort(addr);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
  res.end(JSON.stringify(body));
}

function healthBody(health: ProxyHealth): Record<string, unknown> {
  const last = health.lastUpdatedMs;
  return {
    lastUpdated: last ? new Date(last).toISOString() : new Date(0).toISOString(),
    currentTime: new Date().toISOString(),
  };
}

export function startHealthzServer(addr: string, health: ProxyHealth, nodeEligible: () => boolean): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/livez') {
      const ok = health.healthy();
      const code = ok ? 200 : 503;
      (path === '/healthz' ? metrics.healthzServedTotal : metrics.livezServedTotal).inc({ code: String(code) });
      json(res, code, path === '/healthz' ? { ...healthBody(health), nodeEligible: nodeEligible() } : healthBody(health));
      return;
    }
    res.writeHead(404).end('404 page not found\n');
  });
  return listen(server, addr);
}

export function startMetricsServer(addr: string, mode: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
      return;
    }
    if (path === '/proxyMode') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end(mode);
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200).end('ok');
      return;
    }
    res.writeHead(404).end('404 page not found\n');
  });
  return listen(server, addr);
}

interface HealthCheck {
  server: Server;
  namespace: string;
  name: string;
  localEndpoints: number;
}

/** One server per healthCheckNodePort; 200 while the node has local endpoints and the proxy is healthy. */
export class ServiceHealthServers {
  private readonly byPort = new Map<number, HealthCheck>();

  constructor(
    private readonly health: ProxyHealth,
    private readonly onError: (port: number, err: unknown) => void,
  ) {}

  /** Brings the set of servers in line with the views (any family). */
  update(views: Iterable<ServiceView>): void {
    const want = new Map<number, { namespace: string; name: string; local: number }>();
    for (const v of views) {
      const port = v.info.healthCheckNodePort;
      if (!port) continue;
      const local = v.externalEndpoints.filter((e) => e.isLocal).length;
      const prev = want.get(port);
      want.set(port, { namespace: v.info.namespace, name: v.info.service, local: Math.max(local, prev?.local ?? 0) });
    }
    for (const [port, hc] of this.byPort) {
      if (!want.has(port)) {
        hc.server.close();
        this.byPort.delete(port);
      }
    }
    for (const [port, w] of want) {
      let hc = this.byPort.get(port);
      if (!hc) {
        const entry: HealthCheck = { server: createServer(), namespace: w.namespace, name: w.name, localEndpoints: 0 };
        entry.server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
          const healthy = this.health.healthy();
          const code = entry.localEndpoints > 0 && healthy ? 200 : 503;
          json(res, code, { service: { namespace: entry.namespace, name: entry.name }, localEndpoints: entry.localEndpoints, serviceProxyHealthy: healthy });
        });
        entry.server.on('error', (err) => {
          this.onError(port, err);
          this.byPort.delete(port);
        });
        entry.server.listen(port, '0.0.0.0');
        this.byPort.set(port, (hc = entry));
      }
      hc.namespace = w.namespace;
      hc.name = w.name;
      hc.localEndpoints = w.local;
    }
  }

  close(): void {
    for (const hc of this.byPort.values()) hc.server.close();
    this.byPort.clear();
  }
}
