// An in-test Kubernetes API server speaking the real wire protocol over HTTPS
// on 127.0.0.1: paginated list JSON (limit/continue), chunked watch streams
// (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR), 410 Expired for compacted history,
// label and field selectors, bearer-token or client-certificate auth, and
// faults on demand (failing requests, dropped or silent connections, delays).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const execFileP = promisify(execFile);

export const SERVICES = '/api/v1/services';
export const ENDPOINTSLICES = '/apis/discovery.k8s.io/v1/endpointslices';
export const NODES = '/api/v1/nodes';
const RESOURCES = [SERVICES, ENDPOINTSLICES, NODES] as const;
export type ResourcePath = (typeof RESOURCES)[number];

export interface FakeObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

export interface TestCerts {
  dir: string;
  caFile: string;
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCertFile: string;
  clientKeyFile: string;
  clientCert: Buffer;
  clientKey: Buffer;
  cleanup(): void;
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl in /tmp/pw-t-kapi-*. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-t-kapi-'));
  const f = (n: string) => join(dir, n);
  const ossl = (args: string[]) => execFileP('openssl', args);
  await ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=pw-test-ca']);
  for (const [name, subj, ext] of [
    ['server', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'],
    ['client', '/CN=system:podwire/O=system:node-proxier', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    await ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subj]);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(f(`${name}.ext`), ext);
    await ossl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '2', '-extfile', f(`${name}.ext`)]);
  }
  return loadTestCerts(dir);
}

/** The certificates makeTestCerts wrote to dir (for a fake server run in another process). */
export function loadTestCerts(dir: string): TestCerts {
  const f = (n: string) => join(dir, n);
  return {
    dir,
    caFile: f('ca.crt'),
    ca: readFileSync(f('ca.crt')),
    serverCert: readFileSync(f('server.crt')),
    serverKey: readFileSync(f('server.key')),
    clientCertFile: f('client.crt'),
    clientKeyFile: f('client.key'),
    clientCert: readFileSync(f('client.crt')),
    clientKey: readFileSync(f('client.key')),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface RequestRecord {
  path: string;
  query: URLSearchParams;
  watch: boolean;
  at: number;
  userAgent: string;
  accept: string;
  acceptEncoding: string;
  /** Whether the answer was gzipped. */
  gzipped?: boolean;
}

interface Event {
  rv: number;
  resource: ResourcePath;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: FakeObject;
  /** The object before the change (to tell selector transitions). */
  before?: FakeObject;
}

interface Watcher {
  resource: ResourcePath;
  query: URLSearchParams;
  res: ServerResponse;
  socket: Socket;
  bookmarks: boolean;
}

interface Fault {
  match: (r: RequestRecord) => boolean;
  status: number;
  remaining: number;
  retryAfterSeconds: number;
}

export class FakeApiServer {
  readonly requests: RequestRecord[] = [];
  /** Milliseconds to wait before answering any request. */
  delayMs = 0;
  /** Watch requests get their headers and then never a byte. */
  silentWatches = false;
  /** Every new watch request has its connection destroyed at once. */
  dropNewWatches = false;
  token: string | undefined;
  private rv = 100;
  private compactedRv = 0;
  private readonly objects = new Map<ResourcePath, Map<string, FakeObject>>(RESOURCES.map((r) => [r, new Map()]));
  private history: Event[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly snapshots = new Map<number, { items: FakeObject[]; rv: number }>();
  private nextSnapshot = 1;
  private faults: Fault[] = [];
  private readonly sockets = new Set<Socket>();
  private server!: https.Server;
  private readonly unixServers: NetServer[] = [];
  port = 0;

  private constructor(
    private readonly certs: TestCerts,
    opts: { token?: string },
  ) {
    this.token = opts.token;
  }

  static async start(certs: TestCerts, opts: { token?: string } = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(certs, opts);
    s.server = https.createServer(
      { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true, rejectUnauthorized: false },
      (req, res) => s.handle(req, res),
    );
    s.server.on('connection', (sock: Socket) => {
      s.sockets.add(sock);
      sock.on('close', () => s.sockets.delete(sock));
    });
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  /**
   * Also accepts connections on a unix socket, so a client in another network namespace can reach this server
   * through a forwarder there (socat TCP-LISTEN:…,bind=127.0.0.1 UNIX-CONNECT:path): the TLS is end to end.
   */
  async listenUnix(path: string): Promise<void> {
    const srv = createNetServer((sock) => this.server.emit('connection', sock));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(path, resolve);
    });
    this.unixServers.push(srv);
  }

  async close(): Promise<void> {
    for (const u of this.unixServers) u.close();
    for (const w of this.watchers) w.socket.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- the data ----

  upsert(resource: ResourcePath, obj: FakeObject): FakeObject {
    const store = this.objects.get(resource)!;
    const key = keyOf(obj);
    const before = store.get(key);
    const stored: FakeObject = JSON.parse(JSON.stringify(obj)) as FakeObject;
    stored.metadata.resourceVersion = String(++this.rv);
    store.set(key, stored);
    this.publish({ rv: this.rv, resource, type: before ? 'MODIFIED' : 'ADDED', object: stored, before });
    return stored;
  }

  /** Adds many objects without history (for benchmarks: a list is all they need). */
  bulkLoad(resource: ResourcePath, objs: FakeObject[]): void {
    const store = this.objects.get(resource)!;
    for (const o of objs) {
      o.metadata.resourceVersion = String(++this.rv);
      store.set(keyOf(o), o);
    }
  }

  remove(resource: ResourcePath, name: string, namespace?: string): void {
    const store = this.objects.get(resource)!;
    const key = namespace ? `${namespace}/${name}` : name;
    const before = store.get(key);
    if (!before) throw new Error(`fake apiserver: no ${resource} ${key}`);
    store.delete(key);
    const gone: FakeObject = { ...before, metadata: { ...before.metadata, resourceVersion: String(++this.rv) } };
    this.publish({ rv: this.rv, resource, type: 'DELETED', object: gone, before });
  }

  /** Changes without telling watchers, then forgets history: watchers that reconnect must relist (410). */
  silently(fn: () => void): void {
    const ws = [...this.watchers];
    for (const w of ws) this.watchers.delete(w);
    fn();
    for (const w of ws) this.watchers.add(w);
    this.compact();
  }

  /** Forgets all history up to now: older resourceVersions and continue tokens get 410 Expired. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  // ---- faults ----

  /** The next `count` requests matching `match` are answered with `status`. */
  failNext(count: number, status = 500, match: (r: RequestRecord) => boolean = () => true, retryAfterSeconds = 0): void {
    this.faults.push({ match, status, remaining: count, retryAfterSeconds });
  }

  /** Sends a BOOKMARK with the current resourceVersion to every watcher that allowed bookmarks. */
  bookmark(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      const kind = w.resource === SERVICES ? 'Service' : w.resource === NODES ? 'Node' : 'EndpointSlice';
      write(w, { type: 'BOOKMARK', object: { kind, metadata: { resourceVersion: String(this.rv) } } });
    }
  }

  /** Sends every watcher an ERROR 410 event, ends the streams and compacts history. */
  expireWatches(): void {
    this.compact();
    for (const w of [...this.watchers]) {
      write(w, { type: 'ERROR', object: status(410, 'Expired', 'too old resource version') });
      w.res.end();
      this.watchers.delete(w);
    }
  }

  /** Cuts every open watch connection (no clean end of the chunked stream). */
  dropWatches(): void {
    for (const w of [...this.watchers]) {
      w.socket.destroy();
      this.watchers.delete(w);
    }
  }

  /** Ends every watch cleanly, as the server does at timeoutSeconds. */
  endWatches(): void {
    for (const w of [...this.watchers]) {
      w.res.end();
      this.watchers.delete(w);
    }
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  count(pred: (r: RequestRecord) => boolean = () => true): number {
    return this.requests.filter(pred).length;
  }

  // ---- the protocol ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://x');
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const rec: RequestRecord = { path: url.pathname, query: url.searchParams, watch, at: Date.now(), userAgent: req.headers['user-agent'] ?? '', accept: req.headers.accept ?? '', acceptEncoding: String(req.headers['accept-encoding'] ?? '') };
    this.requests.push(rec);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (!this.authorized(req)) return sendStatus(res, status(401, 'Unauthorized', 'Unauthorized'));
    const fault = this.faults.find((f) => f.remaining > 0 && f.match(rec));
    if (fault) {
      fault.remaining--;
      const reason = fault.status === 500 ? 'InternalError' : fault.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable';
      return sendStatus(res, status(fault.status, reason, 'injected failure'), fault.retryAfterSeconds);
    }
    const resource = RESOURCES.find((r) => r === url.pathname);
    if (req.method !== 'GET' || !resource) return sendStatus(res, status(404, 'NotFound', `no ${url.pathname}`));
    if (watch) return this.serveWatch(resource, url.searchParams, req, res);
    return this.serveList(resource, url.searchParams, res, rec);
  }

  private authorized(req: IncomingMessage): boolean {
    const sock = req.socket as TLSSocket;
    if (sock.authorized && sock.getPeerCertificate()?.subject) return true;
    if (this.token === undefined) return true;
    return req.headers.authorization === `Bearer ${this.token}`;
  }

  private matching(resource: ResourcePath, q: URLSearchParams): FakeObject[] {
    const items = [...this.objects.get(resource)!.values()].filter((o) => matches(o, q));
    return items.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
  }

  private serveList(resource: ResourcePath, q: URLSearchParams, res: ServerResponse, rec: RequestRecord): void {
    const limit = Number(q.get('limit') ?? 0);
    const cont = q.get('continue');
    let snap: { items: FakeObject[]; rv: number };
    let id: number;
    let offset = 0;
    if (cont) {
      const tok = JSON.parse(Buffer.from(cont, 'base64').toString()) as { id: number; rv: number; offset: number };
      const s = this.snapshots.get(tok.id);
      if (!s || tok.rv < this.compactedRv) {
        return sendStatus(res, status(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.'));
      }
      snap = s;
      id = tok.id;
      offset = tok.offset;
    } else {
      snap = { items: this.matching(resource, q), rv: this.rv };
      id = this.nextSnapshot++;
      if (limit > 0) this.snapshots.set(id, snap);
    }
    const end = limit > 0 ? Math.min(snap.items.length, offset + limit) : snap.items.length;
    const meta: Record<string, unknown> = { resourceVersion: String(snap.rv) };
    if (end < snap.items.length) {
      meta.continue = Buffer.from(JSON.stringify({ id, rv: snap.rv, offset: end })).toString('base64');
      meta.remainingItemCount = snap.items.length - end;
    } else {
      this.snapshots.delete(id);
    }
    const body = JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: meta, items: snap.items.slice(offset, end) });
    // Like the API server: gzip answers over 128 KiB for clients that accept it.
    if (body.length > 128 * 1024 && /\bgzip\b/.test(rec.acceptEncoding)) {
      rec.gzipped = true;
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
      res.end(gzipSync(body, { level: 1 }));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(body);
  }

  private serveWatch(resource: ResourcePath, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    if (this.dropNewWatches) {
      req.socket.destroy();
      return;
    }
    const from = Number(q.get('resourceVersion') ?? 0);
    if (from && from < this.compactedRv) {
      return sendStatus(res, status(410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`));
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    if (this.silentWatches) return;
    const w: Watcher = { resource, query: q, res, socket: req.socket, bookmarks: q.get('allowWatchBookmarks') === 'true' };
    // Replay what happened after `from`, then follow live.
    for (const ev of this.history) if (ev.rv > from && ev.resource === resource) this.deliver(w, ev);
    this.watchers.add(w);
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    const t = timeout > 0 ? setTimeout(() => {
      this.watchers.delete(w);
      res.end();
    }, timeout * 1000) : undefined;
    res.on('close', () => {
      clearTimeout(t);
      this.watchers.delete(w);
    });
  }

  private publish(ev: Event): void {
    this.history.push(ev);
    for (const w of this.watchers) if (w.resource === ev.resource) this.deliver(w, ev);
  }

  /** What a filtered watch shows: an object leaving the selector is DELETED, one entering it ADDED. */
  private deliver(w: Watcher, ev: Event): void {
    const now = ev.type !== 'DELETED' && matches(ev.object, w.query);
    const was = ev.before !== undefined && matches(ev.before, w.query);
    if (ev.type === 'DELETED') {
      if (was) write(w, { type: 'DELETED', object: ev.object });
    } else if (now && was) write(w, { type: 'MODIFIED', object: ev.object });
    else if (now) write(w, { type: 'ADDED', object: ev.object });
    else if (was) write(w, { type: 'DELETED', object: ev.object });
  }
}

function write(w: Watcher, ev: unknown): void {
  w.res.write(`${JSON.stringify(ev)}\n`);
}

function keyOf(o: FakeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function sendStatus(res: ServerResponse, st: ReturnType<typeof status>, retryAfterSeconds = 0): void {
  res.writeHead(st.code, { 'Content-Type': 'application/json', ...(retryAfterSeconds > 0 ? { 'Retry-After': String(retryAfterSeconds) } : {}) });
  res.end(JSON.stringify(st));
}

/** Label selector terms: `k`, `!k`, `k=v`, `k==v`, `k!=v`; field selector: metadata.name / metadata.namespace. */
export function matches(o: FakeObject, q: URLSearchParams): boolean {
  const labels = o.metadata.labels ?? {};
  for (const term of (q.get('labelSelector') ?? '').split(',').filter(Boolean)) {
    let m: RegExpMatchArray | null;
    if ((m = term.match(/^!(.+)$/))) {
      if (m[1]! in labels) return false;
    } else if ((m = term.match(/^(.+?)!=(.*)$/))) {
      if (labels[m[1]!] === m[2]) return false;
    } else if ((m = term.match(/^(.+?)==?(.*)$/))) {
      if (labels[m[1]!] !== m[2]) return false;
    } else if (!(term in labels)) return false;
  }
  for (const term of (q.get('fieldSelector') ?? '').split(',').filter(Boolean)) {
    const [field, value] = term.split('=');
    const actual = field === 'metadata.name' ? o.metadata.name : field === 'metadata.namespace' ? o.metadata.namespace : undefined;
    if (actual !== value) return false;
  }
  return true;
}
