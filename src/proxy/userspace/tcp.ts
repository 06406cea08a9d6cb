// One TCP listener of userspace mode: accept, pick an endpoint, connect,
// splice both ways. A connect that fails moves on to the next endpoint, round
// the list again if need be, with growing timeouts; when four attempts failed
// the client is reset, as a REJECT would.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { targetKey } from './balancer.js';
import type { Listener, Logger, Route } from './route.js';

/** Connect timeouts per attempt, as kube-proxy's userspace proxier used. */
const CONNECT_TIMEOUTS_MS = [250, 500, 1000, 2000];

/** Every proxied TCP socket, across listeners: cleanup() ends them all, a closed listener leaves them be. */
export type ConnectionSet = Set<Socket>;

export class TcpListener implements Listener {
  private server: Server | null = null;

  constructor(
    readonly key: string,
    private readonly address: string,
    private readonly port: number,
    public route: Route,
    private readonly connections: ConnectionSet,
    private readonly log: Logger,
  ) {}

  listen(): Promise<void> {
    // pauseOnConnect: the client's first bytes wait in the kernel until the endpoint is connected.
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => {
        this.server = null;
        reject(err);
      };
      server.once('error', failed);
      server.listen({ host: this.address, port: this.port }, () => {
        server.off('error', failed);
        server.on('error', (err) => this.log.warn({ listener: this.key, err: String(err) }, 'userspace: TCP listener error'));
        resolve();
      });
    });
  }

  close(): void {
    this.server?.close();
    this.server = null;
  }

  endpointsChanged(): void {
    // Established connections keep their endpoint; the next accept reads the new list.
  }

  private accept(client: Socket): void {
    client.on('error', () => {});
    const route = this.route;
    const ip = client.remoteAddress ?? '';
    if (route.allow && !route.allow(ip)) {
      client.resetAndDestroy();
      return;
    }
    this.connections.add(client);
    client.once('close', () => this.connections.delete(client));
    this.attempt(client, route, ip, new Set(), 0);
  }

  private attempt(client: Socket, route: Route, ip: string, tried: Set<string>, n: number): void {
    if (client.destroyed) return;
    let target = n < CONNECT_TIMEOUTS_MS.length ? route.balancer.pick(ip, tried) : null;
    // Every endpoint tried and attempts left: go round again with the longer timeout (a lone endpoint whose first
    // SYN was lost deserves more than 250 ms).
    if (!target && n < CONNECT_TIMEOUTS_MS.length && tried.size > 0) {
      tried.clear();
      target = route.balancer.pick(ip, tried);
    }
    if (!target) {
      if (n > 0) this.log.debug({ service: route.name, client: ip, attempts: n }, 'userspace: no endpoint answered; resetting the client');
      client.resetAndDestroy();
      return;
    }
    tried.add(targetKey(target));
    const upstream = connect({ host: target.ip, port: target.port, allowHalfOpen: true });
    const timer = setTimeout(() => upstream.destroy(new Error(`connect timeout after ${CONNECT_TIMEOUTS_MS[n]} ms`)), CONNECT_TIMEOUTS_MS[n]);
    const abandon = () => {
      clearTimeout(timer);
      upstream.destroy();
    };
    client.once('close', abandon);
    upstream.once('error', (err) => {
      clearTimeout(timer);
      client.off('close', abandon);
      this.log.debug({ service: route.name, endpoint: targetKey(target), err: String(err) }, 'userspace: endpoint connect failed');
      this.attempt(client, route, ip, tried, n + 1);
    });
    upstream.once('connect', () => {
      clearTimeout(timer);
      client.off('close', abandon);
      upstream.removeAllListeners('error');
      this.splice(client, upstream);
    });
  }

  private splice(client: Socket, upstream: Socket): void {
    this.connections.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    // A reset on one side is passed on as a reset; any other error just ends both.
    const fail = (other: Socket) => (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') other.resetAndDestroy();
      else other.destroy();
    };
    upstream.on('error', fail(client));
    client.on('error', fail(upstream));
    // A side that closed cleanly lets the other finish writing what it holds.
    upstream.once('close', () => {
      this.connections.delete(upstream);
      if (!client.destroyed) client.destroySoon();
    });
    client.once('close', () => {
      if (!upstream.destroyed) upstream.destroySoon();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
