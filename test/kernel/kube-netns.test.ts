// The Kubernetes source running inside a "node" network namespace, as the
// daemon will: the fake API server (in this process) is reached through a
// forwarder on that namespace's 127.0.0.1, so the client sees a normal
// https://127.0.0.1:6443. Cutting the forwarder must not withdraw anything;
// restoring it resumes the watch.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeApiServer, makeTestCerts, NODES, SERVICES, type TestCerts } from '../helpers/fake-apiserver.js';
import { NetnsScope } from '../helpers/netns.js';

const scope = new NetnsScope('kapins');
let certs: TestCerts;
let api: FakeApiServer;
let ns: string;
let forwarder: ChildProcess | undefined;
let watcher: ChildProcess | undefined;
const lines: string[] = [];

// A tiny program that runs the source and prints each event as one line of JSON.
const PRINTER = `
import { createKubernetesSource } from './src/sources/kubernetes/index.ts';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const key = (o) => (o.metadata.namespace ? o.metadata.namespace + '/' : '') + o.metadata.name;
const src = createKubernetesSource({
  kubeconfig: process.argv[2], nodeName: 'node-a',
  log: { info() {}, warn: (m) => out({ ev: 'warn', m }), error: (m) => out({ ev: 'error', m }) },
  tuning: { backoff: { initialMs: 100, maxMs: 500, factor: 2, jitter: 0.2 }, idleTimeoutMs: 3000, minWatchMs: 200 },
});
await src.start({
  onServiceUpsert: (s) => out({ ev: 'svc+', k: key(s) }), onServiceDelete: (s) => out({ ev: 'svc-', k: key(s) }),
  onEndpointSliceUpsert: (s) => out({ ev: 'eps+', k: key(s) }), onEndpointSliceDelete: (s) => out({ ev: 'eps-', k: key(s) }),
  onNodeUpsert: (n) => out({ ev: 'node+', k: key(n) }), onNodeDelete: (n) => out({ ev: 'node-', k: key(n) }),
  onSynced: () => out({ ev: 'synced' }),
});
`;

function startForwarder(sock: string): void {
  forwarder = spawn('ip', ['netns', 'exec', ns, 'socat', 'TCP-LISTEN:6443,bind=127.0.0.1,reuseaddr,fork', `UNIX-CONNECT:${sock}`], { stdio: 'ignore' });
}

async function stopForwarder(): Promise<void> {
  if (!forwarder) return;
  const f = forwarder;
  forwarder = undefined;
  const gone = new Promise((r) => f.once('exit', r));
  f.kill('SIGTERM');
  await gone;
}

function events(): string[] {
  return lines.map((l) => {
    const o = JSON.parse(l) as { ev: string; k?: string };
    return o.k ? `${o.ev} ${o.k}` : o.ev;
  });
}

async function waitFor(what: string, pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; saw ${lines.join(' | ')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  await scope.cleanup();
  certs = await makeTestCerts();
  api = await FakeApiServer.start(certs, { token: 'node-token' });
  const sock = join(certs.dir, 'api.sock');
  await api.listenUnix(sock);
  ns = await scope.create('node');
  startForwarder(sock);
  const bundle = join(certs.dir, 'printer.mjs');
  await build({ stdin: { contents: PRINTER, resolveDir: process.cwd(), loader: 'ts' }, bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: bundle, logLevel: 'silent',
    // yaml is CommonJS: give the ESM bundle a require.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" } });
  const kubeconfig = join(certs.dir, 'kubeconfig');
  writeFileSync(kubeconfig, `current-context: n\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", certificate-authority: ${certs.caFile}}}]\nusers: [{name: u, user: {token: node-token}}]\ncontexts: [{name: n, context: {cluster: c, user: u}}]\n`);
  api.upsert(NODES, { metadata: { name: 'node-a' } });
  api.upsert(SERVICES, { metadata: { name: 'first', namespace: 'default' }, spec: { clusterIP: '10.96.0.5', ports: [{ port: 80 }] } });
  // Wait until the forwarder listens inside the namespace.
  const deadline = Date.now() + 5000;
  for (;;) {
    const probe = spawn('ip', ['netns', 'exec', ns, 'socat', '-u', 'OPEN:/dev/null', 'TCP:127.0.0.1:6443'], { stdio: 'ignore' });
    const code = await new Promise<number | null>((r) => probe.once('exit', r));
    if (code === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  watcher = spawn('ip', ['netns', 'exec', ns, process.execPath, bundle, kubeconfig], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
  createInterface({ input: watcher.stdout! }).on('line', (l) => lines.push(l));
});

afterAll(async () => {
  watcher?.kill('SIGKILL');
  await stopForwarder();
  await api?.close();
  await scope.cleanup();
  certs?.cleanup();
});

describe('Kubernetes source inside a node namespace', () => {
  it('syncs through the namespace loopback and sees a service created through the API within seconds', async () => {
    await waitFor('sync', () => events().includes('synced'));
    expect(events().slice(0, events().indexOf('synced')).sort()).toEqual(['node+ node-a', 'svc+ default/first']);
    await waitFor('watches', () => api.openWatches === 3);
    const t0 = Date.now();
    api.upsert(SERVICES, { metadata: { name: 'second', namespace: 'default' }, spec: { clusterIP: '10.96.0.6', ports: [{ port: 80 }] } });
    await waitFor('new service', () => events().includes('svc+ default/second'));
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('keeps its state while the API server is unreachable, and resumes when it is back', async () => {
    await stopForwarder();
    api.dropWatches();
    const n = lines.length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(events().slice(n).filter((e) => e.startsWith('svc-') || e.startsWith('eps-') || e.startsWith('node-'))).toEqual([]);
    expect(events().slice(n).some((e) => e === 'warn')).toBe(true); // it noticed, and retries
    startForwarder(join(certs.dir, 'api.sock'));
    await waitFor('watches back', () => api.openWatches === 3);
    api.remove(SERVICES, 'first', 'default');
    await waitFor('delete after reconnect', () => events().includes('svc- default/first'));
  });
});
