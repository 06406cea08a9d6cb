// One UDP listener of userspace mode. Each client address gets a session: its
// own upstream socket to the endpoint chosen for it, so replies can be told
// apart and sent back from the listener's socket (the address the client
// wrote to). A session ends when idle for --udp-timeout, when its endpoint
// leaves the service, or on an upstream socket error.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import ipaddr from 'ipaddr.js';
import { targetKey, type Target } from './balancer.js';
import type { Listener, Logger, Route } from './route.js';

interface Session {
  readonly target: Target;
  readonly upstream: Socket;
  readonly timer: NodeJS.Timeout;
}

const ignore = () => {};

export class UdpListener implements Listener {
  private sock: Socket | null = null;
  private readonly sessions = new Map<string, Session>();

  constructor(
    readonly key: string,
    private readonly address: string,
    private readonly port: number,
    public route: Route,
    private readonly idleTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  private get type(): 'udp4' | 'udp6' {
    return this.address.includes(':') ? 'udp6' : 'udp4';
  }

  /** Open sessions (for tests and counts). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  listen(): Promise<void> {
    const sock = createSocket({ type: this.type, ipv6Only: this.type === 'udp6' });
    this.sock = sock;
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => {
        this.sock = null;
        sock.close();
        reject(err);
      };
      sock.once('error', failed);
      sock.bind({ address: this.address, port: this.port, exclusive: true }, () => {
        sock.off('error', failed);
        sock.on('error', (err) => this.log.warn({ listener: this.key, err: String(err) }, 'userspace: UDP listener error'));
        sock.on('message', (msg, rinfo) => this.onClient(sock, msg, rinfo));
        resolve();
      });
    });
  }

  close(): void {
    for (const k of [...this.sessions.keys()]) this.end(k);
    this.sock?.close();
    this.sock = null;
  }

  endpointsChanged(): void {
    const b = this.route.balancer;
    for (const [k, s] of this.sessions) if (!b.has(targetKey(s.target))) this.end(k);
  }

  private onClient(sock: Socket, msg: Buffer, client: RemoteInfo): void {
    const k = `${client.address}|${client.port}`;
    let s = this.sessions.get(k);
    if (!s) {
      const route = this.route;
      // Outside the source ranges, or no endpoint: dropped, as the kernel modes drop it.
      if (route.allow && !route.allow(client.address)) return;
      const target = route.balancer.pick(client.address);
      if (!target) return;
      s = this.open(sock, k, client, target);
    }
    s.timer.refresh();
    s.upstream.send(msg, s.target.port, s.target.ip, ignore);
  }

  private open(sock: Socket, k: string, client: RemoteInfo, target: Target): Session {
    const upstream = createSocket(this.type);
    const timer = setTimeout(() => this.end(k), this.idleTimeoutMs);
    const session: Session = { target, upstream, timer };
    const want = ipaddr.parse(target.ip).toString();
    upstream.on('message', (reply, from) => {
      // The upstream socket is not connected: take replies only from the endpoint.
      if (from.port !== target.port || (from.address !== want && ipaddr.parse(from.address).toString() !== want)) return;
      timer.refresh();
      sock.send(reply, client.port, client.address, ignore);
    });
    upstream.on('error', (err) => {
      this.log.debug({ listener: this.key, endpoint: targetKey(target), err: String(err) }, 'userspace: UDP session error');
      this.end(k);
    });
    this.sessions.set(k, session);
    return session;
  }

  private end(k: string): void {
    const s = this.sessions.get(k);
    if (!s) return;
    this.sessions.delete(k);
    clearTimeout(s.timer);
    try {
      s.upstream.close();
    } catch {
      /* already closed after an error */
    }
  }
}
