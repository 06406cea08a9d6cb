// The Kubernetes source against the in-test API server over real HTTPS:
// sync, events, relists, reconnects with backoff, pagination, filtering, auth.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointSlice, Node, Service } from '../../src/api/types.js';
import type { ConfigSource, SourceHandler } from '../../src/sources/source.js';
import { createKubernetesSource } from '../../src/sources/kubernetes/index.js';
import type { ReflectorTuning } from '../../src/sources/kubernetes/reflector.js';
import { ENDPOINTSLICES, FakeApiServer, makeTestCerts, NODES, SERVICES, type FakeObject, type TestCerts } from '../helpers/fake-apiserver.js';

const TOKEN = 'sekret-token';
let certs: TestCerts;
let otherCerts: TestCerts;
let api: FakeApiServer;
const sources: ConfigSource[] = [];

beforeAll(async () => {
  certs = await makeTestCerts();
  otherCerts = await makeTestCerts(); // a CA that did not sign the fake server's certificate
});
afterAll(() => {
  certs?.cleanup();
  otherCerts?.cleanup();
});
afterEach(async () => {
  for (const s of sources.splice(0)) await s.stop();
  await api?.close();
});

const quiet = { info() {}, warn() {}, error() {} };
const fast: ReflectorTuning = {
  backoff: { initialMs: 100, maxMs: 800, factor: 2, jitter: 0 },
  watchTimeoutSeconds: () => 30,
  idleTimeoutMs: 5_000,
  minWatchMs: 200,
  requestTimeoutMs: 5_000,
};

function svc(name: string, labels: Record<string, string> = {}, port = 80): FakeObject {
  return { metadata: { name, namespace: 'default', labels }, spec: { clusterIP: '10.96.0.10', ports: [{ port, protocol: 'TCP' }] } };
}
function slice(name: string, service: string, ips: string[], labels: Record<string, string> = {}): FakeObject {
  return {
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service, ...labels } },
    addressType: 'IPv4',
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
    ports: [{ port: 8080, protocol: 'TCP' }],
  };
}
function node(name: string): FakeObject {
  return { metadata: { name, labels: { 'topology.kubernetes.io/zone': 'z1' } }, spec: { podCIDR: '10.244.1.0/24' } };
}

type Ev = [string, string];
class Recorder implements SourceHandler {
  events: Ev[] = [];
  synced = 0;
  last = new Map<string, unknown>();
  private key(o: { metadata: { name: string; namespace?: string } }) {
    return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
  }
  private rec(kind: string, o: Service | EndpointSlice | Node) {
    this.events.push([kind, this.key(o)]);
    this.last.set(`${kind}:${this.key(o)}`, o);
  }
  onServiceUpsert(s: Service) { this.rec('svc+', s); }
  onServiceDelete(s: Service) { this.rec('svc-', s); }
  onEndpointSliceUpsert(s: EndpointSlice) { this.rec('eps+', s); }
  onEndpointSliceDelete(s: EndpointSlice) { this.rec('eps-', s); }
  onNodeUpsert(n: Node) { this.rec('node+', n); }
  onNodeDelete(n: Node) { this.rec('node-', n); }
  onSynced() {
    this.synced++;
    this.events.push(['synced', '']);
  }
  has(kind: string, key: string) {
    return this.events.some(([k, n]) => k === kind && n === key);
  }
}

async function waitFor(what: string, pred: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dirCount = { n: 0 };
function writeKubeconfig(user: string, cluster = `certificate-authority: ${certs.caFile}`): string {
  const dir = join(certs.dir, `kc${dirCount.n++}`);
  mkdirSync(dir, { recursive: true });
  const p = join(dir, 'kubeconfig');
  writeFileSync(
    p,
    `apiVersion: v1
kind: Config
current-context: test
clusters:
- name: fake
  cluster:
    server: ${api.url}
    ${cluster}
users:
- name: me
  user:
    ${user}
contexts:
- name: test
  context: { cluster: fake, user: me }
`,
  );
  return p;
}

async function startSource(opts: { kubeconfig?: string; tuning?: ReflectorTuning; nodeName?: string; inCluster?: Parameters<typeof createKubernetesSource>[0]['inCluster'] } = {}) {
  const rec = new Recorder();
  const src = createKubernetesSource({
    kubeconfig: opts.kubeconfig ?? writeKubeconfig(`token: ${TOKEN}`),
    nodeName: opts.nodeName ?? 'n1',
    log: quiet,
    tuning: opts.tuning ?? fast,
    inCluster: opts.inCluster,
  });
  sources.push(src);
  await src.start(rec);
  return rec;
}

const lists = (path: string) => (r: { path: string; watch: boolean }) => r.path === path && !r.watch;
const watches = (path?: string) => (r: { path: string; watch: boolean }) => r.watch && (!path || r.path === path);

describe('Kubernetes source', () => {
  it('delivers the filtered initial lists, then onSynced once; watches with bookmarks from the list resourceVersion', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    api.upsert(SERVICES, svc('web'));
    api.upsert(SERVICES, svc('other-proxy', { 'service.kubernetes.io/service-proxy-name': 'foo' }));
    api.upsert(SERVICES, svc('headless', { 'service.kubernetes.io/headless': '' }));
    api.upsert(ENDPOINTSLICES, slice('web-abc', 'web', ['10.244.1.5', '10.244.2.7']));
    api.upsert(ENDPOINTSLICES, slice('headless-x', 'headless', ['10.244.1.9'], { 'service.kubernetes.io/headless': '' }));
    api.upsert(NODES, node('n1'));
    api.upsert(NODES, node('n2'));
    const rv = api.resourceVersion;
    const rec = await startSource();
    await waitFor('sync', () => rec.synced === 1);
    const syncedAt = rec.events.findIndex(([k]) => k === 'synced');
    expect(rec.events.slice(0, syncedAt).sort()).toEqual([['eps+', 'default/web-abc'], ['node+', 'n1'], ['svc+', 'default/web']]);
    const l = api.requests.find(lists(SERVICES))!;
    expect(l.query.get('labelSelector')).toBe('!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless');
    expect(api.requests.find(lists(ENDPOINTSLICES))!.query.get('labelSelector')).toBe('!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name');
    expect(api.requests.find(lists(NODES))!.query.get('fieldSelector')).toBe('metadata.name=n1');
    expect(l.userAgent).toMatch(/^podwire\/\d+\.\d+\.\d+/);
    expect(l.accept).toBe('application/json');
    await waitFor('three watches', () => api.openWatches === 3);
    const w = api.requests.find(watches(SERVICES))!;
    expect(w.query.get('resourceVersion')).toBe(rv);
    expect(w.query.get('allowWatchBookmarks')).toBe('true');
    expect(Number(w.query.get('timeoutSeconds'))).toBe(30);
    expect(rec.synced).toBe(1);
  });

  it('delivers every event kind, and an object leaving the selector as a delete', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    api.upsert(NODES, node('n1'));
    const rec = await startSource();
    await waitFor('sync', () => rec.synced === 1);
    await waitFor('watches', () => api.openWatches === 3);
    api.upsert(SERVICES, svc('a'));
    api.upsert(ENDPOINTSLICES, slice('a-1', 'a', ['10.0.0.1']));
    await waitFor('adds', () => rec.has('svc+', 'default/a') && rec.has('eps+', 'default/a-1'));
    api.upsert(SERVICES, svc('a', {}, 81));
    await waitFor('modify', () => (rec.last.get('svc+:default/a') as Service).spec.ports?.[0]?.port === 81);
    api.upsert(ENDPOINTSLICES, slice('a-1', 'a', ['10.0.0.1', '10.0.0.2']));
    await waitFor('slice modify', () => (rec.last.get('eps+:default/a-1') as EndpointSlice).endpoints.length === 2);
    api.remove(ENDPOINTSLICES, 'a-1', 'default');
    await waitFor('slice delete', () => rec.has('eps-', 'default/a-1'));
    api.upsert(SERVICES, svc('a', { 'service.kubernetes.io/service-proxy-name': 'other' }));
    await waitFor('leaves selector', () => rec.has('svc-', 'default/a'));
    api.upsert(NODES, { ...node('n1'), spec: { podCIDR: '10.244.9.0/24' } });
    await waitFor('node modify', () => (rec.last.get('node+:n1') as Node).spec?.podCIDR === '10.244.9.0/24');
    api.upsert(NODES, node('n2'));
    api.remove(NODES, 'n1');
    await waitFor('node delete', () => rec.has('node-', 'n1'));
    expect(rec.has('node+', 'n2')).toBe(false);
    expect(rec.synced).toBe(1);
  });

  it('bookmarks advance the resourceVersion the watch resumes from', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    const rec = await startSource();
    await waitFor('sync', () => rec.synced === 1);
    await waitFor('watches', () => api.openWatches === 3);
    const before = api.count(watches(SERVICES));
    // Changes to nodes move the server's resourceVersion; the services watch only learns of it by a bookmark.
    api.upsert(NODES, node('elsewhere'));
    api.upsert(NODES, node('elsewhere2'));
    api.bookmark();
    const rv = api.resourceVersion;
    await sleep(100);
    api.endWatches();
    await waitFor('re-watch', () => api.count(watches(SERVICES)) > before);
    const again = api.requests.filter(watches(SERVICES)).at(-1)!;
    expect(again.query.get('resourceVersion')).toBe(rv);
    expect(api.count(lists(SERVICES))).toBe(1);
  });

  it('pages through lists with limit/continue, and restarts the list when a continue token expires', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    for (let i = 0; i < 7; i++) api.upsert(SERVICES, svc(`s${i}`));
    api.failNext(1, 410, (r) => r.path === SERVICES && r.query.has('continue'));
    const rec = await startSource({ tuning: { ...fast, pageSize: 3 } });
    await waitFor('sync', () => rec.synced === 1);
    const svcLists = api.requests.filter(lists(SERVICES));
    expect(svcLists.every((r) => r.acceptEncoding === 'gzip')).toBe(true);
    // first page, expired continue (410), then 3 pages from the start
    expect(svcLists.map((r) => r.query.has('continue'))).toEqual([false, true, false, true, true]);
    expect(svcLists.every((r) => r.query.get('limit') === '3')).toBe(true);
    const names = rec.events.filter(([k]) => k === 'svc+').map(([, n]) => n);
    expect(names.sort()).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `default/s${i}`));
  });

  it('relists after a 410 ERROR event and after a 410 answer, synthesising deletes for what vanished', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    api.upsert(SERVICES, svc('keep'));
    api.upsert(SERVICES, svc('gone'));
    api.upsert(ENDPOINTSLICES, slice('gone-1', 'gone', ['10.0.0.9']));
    const rec = await startSource();
    await waitFor('sync', () => rec.synced === 1);
    await waitFor('watches', () => api.openWatches === 3);
    api.silently(() => {
      api.remove(SERVICES, 'gone', 'default');
      api.upsert(SERVICES, svc('new'));
    });
    api.expireWatches(); // ERROR 410 inside the streams
    await waitFor('relist deltas', () => rec.has('svc-', 'default/gone') && rec.has('svc+', 'default/new'));
    expect(rec.events.filter(([k, n]) => k === 'svc+' && n === 'default/keep')).toHaveLength(1); // unchanged: not re-sent
    expect(api.count(lists(SERVICES))).toBe(2);
    // Now history expires while disconnected: the re-watch is answered 410 and must relist too.
    await waitFor('watches', () => api.openWatches === 3);
    api.silently(() => api.remove(ENDPOINTSLICES, 'gone-1', 'default'));
    api.dropWatches();
    await waitFor('slice delete via relist', () => rec.has('eps-', 'default/gone-1'));
    expect(rec.synced).toBe(1);
  });

  it('reconnects after dropped connections with exponential backoff, resuming without a relist', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    const rec = await startSource();
    await waitFor('sync', () => rec.synced === 1);
    await waitFor('watches', () => api.openWatches === 3);
    api.dropNewWatches = true;
    const before = api.count(watches(SERVICES));
    api.dropWatches();
    await sleep(2500);
    const attempts = api.requests.filter(watches(SERVICES)).slice(before);
    // 100, 200, 400, 800, 800 ms apart: about 5 attempts in 2.5 s, not hundreds.
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(attempts.length).toBeLessThanOrEqual(7);
    const gaps = attempts.slice(1).map((r, i) => r.at - attempts[i]!.at);
    expect(gaps[1]!).toBeGreaterThan(gaps[0]! * 1.5);
    api.dropNewWatches = false;
    await waitFor('watches back', () => api.openWatches === 3);
    api.upsert(SERVICES, svc('after'));
    await waitFor('event after reconnect', () => rec.has('svc+', 'default/after'));
    expect(api.count(lists(SERVICES))).toBe(1);
    expect(rec.events.some(([k]) => k.endsWith('-'))).toBe(false); // nothing was withdrawn during the outage
  });

  it('backs off on 500s (no hot loop, nothing delivered) and syncs when the server recovers', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    api.upsert(SERVICES, svc('web'));
    api.failNext(5, 500, lists(SERVICES));
    const rec = await startSource();
    await waitFor('sync', () => rec.synced === 1, 10_000);
    const svcLists = api.requests.filter(lists(SERVICES));
    expect(svcLists).toHaveLength(6);
    const gaps = svcLists.slice(1).map((r, i) => r.at - svcLists[i]!.at);
    expect(gaps[0]!).toBeGreaterThanOrEqual(90);
    expect(gaps[3]!).toBeGreaterThanOrEqual(700);
    expect(rec.has('svc+', 'default/web')).toBe(true);
    // A 500 on a watch: backoff, and the state stays.
    await waitFor('watches', () => api.openWatches === 3);
    api.failNext(3, 500, watches(SERVICES));
    const n = api.count(watches(SERVICES));
    api.dropWatches();
    await sleep(1200);
    expect(api.count(watches(SERVICES)) - n).toBeLessThanOrEqual(5);
    expect(rec.has('svc-', 'default/web')).toBe(false);
  });

  it('waits as long as a 429 Retry-After asks, longer than its own backoff', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    api.failNext(1, 429, lists(SERVICES), 1);
    const rec = await startSource();
    await waitFor('sync', () => rec.synced === 1);
    const [first, second] = api.requests.filter(lists(SERVICES));
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
  });

  it('treats a silent watch as dead and reconnects; tolerates slow answers, retries ones past the timeout', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    api.silentWatches = true;
    const rec = await startSource({ tuning: { ...fast, idleTimeoutMs: 300 } });
    await waitFor('sync', () => rec.synced === 1);
    await waitFor('several silent watch attempts', () => api.count(watches(SERVICES)) >= 3, 5000);
    api.silentWatches = false;
    await waitFor('watches', () => api.openWatches === 3, 5000);
    api.upsert(SERVICES, svc('late'));
    await waitFor('event', () => rec.has('svc+', 'default/late'));
    await sources.splice(0)[0]!.stop();

    api.delayMs = 1200;
    const rec2 = await startSource({ tuning: { ...fast, requestTimeoutMs: 500 } });
    await waitFor('a retried list', () => api.count(lists(SERVICES)) >= 4, 5000);
    expect(rec2.synced).toBe(0);
    api.delayMs = 200;
    await waitFor('sync once answers are in time', () => rec2.synced === 1, 8000);
  });

  it('authenticates with a client certificate, and refuses a server it cannot verify', async () => {
    api = await FakeApiServer.start(certs, { token: 'nobody-knows-this' });
    api.upsert(SERVICES, svc('web'));
    const rec = await startSource({ kubeconfig: writeKubeconfig(`client-certificate: ${certs.clientCertFile}\n    client-key: ${certs.clientKeyFile}`) });
    await waitFor('sync with client cert', () => rec.synced === 1);
    await sources.splice(0)[0]!.stop();
    // Without credentials: 401, no sync.
    const noAuth = await startSource({ kubeconfig: writeKubeconfig('token: wrong') });
    await sleep(600);
    expect(noAuth.synced).toBe(0);
    await sources.splice(0)[0]!.stop();
    // Another CA: TLS fails, no sync; insecure-skip-tls-verify connects.
    const other = await startSource({ kubeconfig: writeKubeconfig('token: nobody-knows-this', `certificate-authority-data: ${otherCerts.ca.toString('base64')}`) });
    await sleep(600);
    expect(other.synced).toBe(0);
    await sources.splice(0)[0]!.stop();
    const insecure = await startSource({ kubeconfig: writeKubeconfig('token: nobody-knows-this', 'insecure-skip-tls-verify: true') });
    await waitFor('sync insecure', () => insecure.synced === 1);
  });

  it('uses a token file, and in-cluster config with a rotating service-account token', async () => {
    api = await FakeApiServer.start(certs, { token: 'file-token' });
    writeFileSync(join(certs.dir, 'tokenfile'), 'file-token\n');
    const rec = await startSource({ kubeconfig: writeKubeconfig(`tokenFile: ${join(certs.dir, 'tokenfile')}`) });
    await waitFor('sync with token file', () => rec.synced === 1);
    await sources.splice(0)[0]!.stop();

    const sa = join(certs.dir, 'serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'sa-1');
    writeFileSync(join(sa, 'ca.crt'), certs.ca);
    api.token = 'sa-1';
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) };
    const rec2 = new Recorder();
    const src = createKubernetesSource({ nodeName: 'n1', log: quiet, tuning: fast, inCluster: { serviceAccountDir: sa, env, tokenRefreshMs: 60_000 } });
    sources.push(src);
    await src.start(rec2);
    await waitFor('in-cluster sync', () => rec2.synced === 1);
    await waitFor('watches', () => api.openWatches === 3);
    // Rotation: the server now wants the new token; a 401 makes the source re-read the file.
    writeFileSync(join(sa, 'token'), 'sa-2');
    api.token = 'sa-2';
    api.dropWatches();
    await waitFor('watches again with the new token', () => api.openWatches === 3, 8000);
    api.upsert(SERVICES, svc('rotated'));
    await waitFor('event', () => rec2.has('svc+', 'default/rotated'));
  });

  it('sees an event again after the handler failed on it (the resourceVersion had not moved past it)', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    const rec = await startSource();
    await waitFor('sync', () => rec.synced === 1);
    await waitFor('watches', () => api.openWatches === 3);
    let failures = 1;
    const orig = rec.onServiceUpsert.bind(rec);
    rec.onServiceUpsert = (s: Service) => {
      if (s.metadata.name === 'flaky' && failures-- > 0) throw new Error('core hiccup');
      orig(s);
    };
    api.upsert(SERVICES, svc('flaky'));
    await waitFor('redelivered', () => rec.has('svc+', 'default/flaky'));
    expect(api.count(lists(SERVICES))).toBe(1);
  });
});

describe('large lists', () => {
  it('are fetched gzip-compressed and decoded', async () => {
    api = await FakeApiServer.start(certs, { token: TOKEN });
    for (let i = 0; i < 600; i++) api.upsert(ENDPOINTSLICES, slice(`big-${i}`, `svc-${i}`, Array.from({ length: 10 }, (_, j) => `10.1.${i % 250}.${j}`)));
    const rec = await startSource();
    await waitFor('sync', () => rec.synced === 1);
    expect(api.requests.filter(lists(ENDPOINTSLICES)).some((r) => r.gzipped)).toBe(true);
    expect(rec.events.filter(([k]) => k === 'eps+')).toHaveLength(600);
    expect((rec.last.get('eps+:default/big-599') as EndpointSlice).endpoints).toHaveLength(10);
  });
});

describe('choosing the connection', () => {
  it('prefers --kubeconfig, then in-cluster, then a bare --master', async () => {
    const { resolveConnection } = await import('../../src/sources/kubernetes/index.js');
    const sa = join(certs.dir, 'sa-choose');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 't');
    writeFileSync(join(sa, 'ca.crt'), certs.ca);
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    const kc = join(certs.dir, 'choose.kubeconfig');
    writeFileSync(kc, 'current-context: x\nclusters: [{name: c, cluster: {server: "https://kc.example:6443"}}]\ncontexts: [{name: x, context: {cluster: c}}]\n');
    expect(resolveConnection({ kubeconfig: kc, inCluster: { serviceAccountDir: sa, env } }).server.host).toBe('kc.example:6443');
    expect(resolveConnection({ kubeconfig: kc, master: 'https://m:1' }).server.host).toBe('m:1');
    expect(resolveConnection({ inCluster: { serviceAccountDir: sa, env } }).server.host).toBe('10.96.0.1');
    expect(resolveConnection({ master: 'https://m:1', inCluster: { serviceAccountDir: sa, env } }).origin).toBe('in-cluster service account');
    expect(resolveConnection({ master: 'http://127.0.0.1:8080', inCluster: { serviceAccountDir: join(sa, 'none'), env: {} } }).server.href).toBe('http://127.0.0.1:8080/');
    expect(() => resolveConnection({ inCluster: { serviceAccountDir: join(sa, 'none'), env: {} } })).toThrow(/KUBERNETES_SERVICE_HOST/);
  });
});
