// The proxier with a recording backend and the real manifests source:
// nothing before the initial state, partial requests for what changed, a full
// sync after a failure, files changed at run time reaching the backend.
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Proxier } from '../../src/proxy/core/proxier.js';
import { ProxyHealth } from '../../src/proxy/health/proxy-health.js';
import { ServiceHealthServers, startHealthzServer } from '../../src/proxy/health/servers.js';
import type { ProxyBackend, SyncRequest, SyncResult } from '../../src/proxy/model.js';
import { ManifestsSource } from '../../src/sources/manifests/index.js';

class RecordingBackend implements ProxyBackend {
  readonly mode = 'iptables' as const;
  readonly family = 4 as const;
  requests: Array<{ changed: string[] | null; services: string[] }> = [];
  failNext = false;
  async sync(req: SyncRequest): Promise<SyncResult> {
    this.requests.push({ changed: req.changed ? [...req.changed].sort() : null, services: [...req.state.services.keys()].sort() });
    if (this.failNext) {
      this.failNext = false;
      throw new Error('kernel said no');
    }
    return { full: req.changed === null };
  }
  async cleanup(): Promise<void> {}
}

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const svc = (name: string, ip: string, extra = '') =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ns}\nspec:\n  clusterIP: ${ip}\n  ports: [{name: http, port: 80}]\n${extra}`;
const slice = (svcName: string, ip: string, node = 'n1') =>
  `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: ${svcName}-x, namespace: ns, labels: {kubernetes.io/service-name: ${svcName}}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints: [{addresses: [${ip}], nodeName: ${node}}]\n`;

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

function get(port: number, path: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

let dir = '';
let proxier: Proxier | undefined;
let source: ManifestsSource | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-t-core-'));
});
afterEach(async () => {
  proxier?.stop();
  await source?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('Proxier', () => {
  it('syncs fully first, then partially for what changed, and fully again after a failure', async () => {
    writeFileSync(join(dir, 'a.yaml'), svc('a', '10.96.0.1') + '---\n' + slice('a', '10.244.0.5'));
    writeFileSync(join(dir, 'b.yaml'), svc('b', '10.96.0.2'));
    const backend = new RecordingBackend();
    proxier = new Proxier({ nodeName: 'n1', backends: new Map([[4, backend]]), minSyncPeriodMs: 50, syncPeriodMs: 60_000, log: quiet, conntrack: null });
    source = new ManifestsSource(dir, 'n1', quiet);
    await source.start(proxier);
    await until(() => backend.requests.length >= 1);
    expect(backend.requests[0]).toEqual({ changed: null, services: ['ns/a:http', 'ns/b:http'] });

    writeFileSync(join(dir, 'b.yaml'), svc('b', '10.96.0.2') + '---\n' + slice('b', '10.244.0.6'));
    await until(() => backend.requests.length >= 2);
    expect(backend.requests[1]!.changed).toEqual(['ns/b:http']);

    backend.failNext = true;
    unlinkSync(join(dir, 'a.yaml'));
    await until(() => backend.requests.length >= 4, 8000);
    expect(backend.requests[2]!.changed).toEqual(['ns/a:http']);
    expect(backend.requests[3]).toEqual({ changed: null, services: ['ns/b:http'] });
  });

  it('programs nothing before the source has synced, and skips a bad file but not the rest', async () => {
    writeFileSync(join(dir, 'bad.yaml'), 'kind: Service\nmetadata: {name: [\n');
    writeFileSync(join(dir, 'good.yaml'), svc('good', '10.96.0.3'));
    const backend = new RecordingBackend();
    proxier = new Proxier({ nodeName: 'n1', backends: new Map([[4, backend]]), minSyncPeriodMs: 10, syncPeriodMs: 60_000, log: quiet, conntrack: null });
    proxier.onServiceUpsert({ metadata: { name: 'early', namespace: 'ns' }, spec: { clusterIP: '10.96.0.9', ports: [{ port: 1 }] } });
    await new Promise((r) => setTimeout(r, 100));
    expect(backend.requests).toEqual([]);
    source = new ManifestsSource(dir, 'n1', quiet);
    await source.start(proxier);
    await until(() => backend.requests.length >= 1);
    expect(backend.requests[0]!.services).toEqual(['ns/early:', 'ns/good:http']);
  });

  it('serves healthz and the ETP Local health-check port with kube-proxy bodies', async () => {
    const health = new ProxyHealth(60_000);
    const healthz = await startHealthzServer('127.0.0.1:0', health, () => true);
    const hcPort = 20000 + Math.floor(Math.random() * 20000);
    const serviceHealth = new ServiceHealthServers(health, () => {});
    const backend = new RecordingBackend();
    proxier = new Proxier({ nodeName: 'n1', backends: new Map([[4, backend]]), minSyncPeriodMs: 10, syncPeriodMs: 60_000, log: quiet, conntrack: null, health, serviceHealth });
    const lb = svc('lb', '10.96.0.4', `  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: ${hcPort}\n  ports: [{name: http, port: 80, nodePort: 30080}]\nstatus: {loadBalancer: {ingress: [{ip: 192.0.2.1}]}}\n`).replace('  ports: [{name: http, port: 80}]\n', '');
    writeFileSync(join(dir, 'lb.yaml'), lb + '---\n' + slice('lb', '10.244.0.7', 'n2'));
    source = new ManifestsSource(dir, 'n1', quiet);
    await source.start(proxier);
    await until(() => backend.requests.length >= 1);
    try {
      const port = (healthz.address() as { port: number }).port;
      const h = await get(port, '/healthz');
      expect(h.code).toBe(200);
      expect(Object.keys(JSON.parse(h.body))).toEqual(['lastUpdated', 'currentTime', 'nodeEligible']);
      let hc = await get(hcPort, '/');
      expect(hc.code).toBe(503);
      expect(JSON.parse(hc.body)).toEqual({ service: { namespace: 'ns', name: 'lb' }, localEndpoints: 0, serviceProxyHealthy: true });
      writeFileSync(join(dir, 'lb.yaml'), lb + '---\n' + slice('lb', '10.244.0.7', 'n1'));
      await until(() => backend.requests.length >= 2);
      hc = await get(hcPort, '/');
      expect(hc.code).toBe(200);
      expect(JSON.parse(hc.body).localEndpoints).toBe(1);
    } finally {
      healthz.close();
      serviceHealth.close();
    }
  });
});
