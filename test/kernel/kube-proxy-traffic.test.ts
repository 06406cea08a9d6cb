// bin/podwire proxy --kubeconfig inside a node namespace, following the in-test
// API server (reached through a forwarder on the node's 127.0.0.1), with the
// iptables backend, checked by traffic: services created through the API
// answer within seconds, and an unreachable API server withdraws nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, tally, type Pod } from '../helpers/cluster.js';
import { ProxyDaemon } from '../helpers/daemon.js';
import { ENDPOINTSLICES, FakeApiServer, makeTestCerts, NODES, SERVICES, type FakeObject, type TestCerts } from '../helpers/fake-apiserver.js';


let c: Cluster;
let a: Pod, r: Pod, client: Pod;
let certs: TestCerts;
let api: FakeApiServer;
let forwarder: ChildProcess | undefined;
const daemon = new ProxyDaemon();

function service(name: string, ip: string): FakeObject {
  return { metadata: { name, namespace: 'default' }, spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ipFamilies: ['IPv4'], ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] } };
}
function slice(name: string, pods: Pod[]): FakeObject {
  return {
    metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: pods.map((p) => ({ addresses: [p.ip4], conditions: { ready: true, serving: true, terminating: false }, nodeName: p.node.name })),
  };
}

function startForwarder(): void {
  forwarder = spawn('ip', ['netns', 'exec', c.node(1).ns, 'socat', 'TCP-LISTEN:6443,bind=127.0.0.1,reuseaddr,fork', `UNIX-CONNECT:${join(certs.dir, 'api.sock')}`], { stdio: 'ignore' });
}
async function stopForwarder(): Promise<void> {
  const f = forwarder;
  forwarder = undefined;
  if (!f || f.exitCode !== null) return;
  const gone = new Promise((res) => f.once('exit', res));
  f.kill('SIGTERM');
  await gone;
}

const probe = (ip: string, count = 8) => c.probe(client.ns, ip, 80, { count, timeoutMs: 800 });

beforeAll(async () => {
  c = await Cluster.create('kapipx');
  a = await c.addPod('a', 1);
  r = await c.addPod('r', 2);
  client = await c.addPod('client', 1);
  certs = await makeTestCerts();
  api = await FakeApiServer.start(certs, { token: 'proxy-token' });
  await api.listenUnix(join(certs.dir, 'api.sock'));
  startForwarder();
  const kubeconfig = join(certs.dir, 'kubeconfig');
  writeFileSync(kubeconfig, `apiVersion: v1\nkind: Config\ncurrent-context: node\nclusters: [{name: fake, cluster: {server: "https://127.0.0.1:6443", certificate-authority: ${certs.caFile}}}]\nusers: [{name: proxy, user: {token: proxy-token}}]\ncontexts: [{name: node, context: {cluster: fake, user: proxy}}]\n`);
  api.upsert(NODES, { metadata: { name: 'node-1' }, status: { addresses: [{ type: 'InternalIP', address: c.node(1).ip4 }] } });
  api.upsert(SERVICES, service('web', '10.96.0.10'));
  api.upsert(ENDPOINTSLICES, slice('web', [a, r]));
  daemon.start(c.node(1).ns, ['--kubeconfig', kubeconfig, '--hostname-override', 'node-1',
    '--cluster-cidr', '10.244.0.0/16', '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249']);
}, 120_000);

afterAll(async () => {
  await daemon.stop();
  // The rules the daemon leaves live in the cluster's namespaces, which go with it.
  await stopForwarder();
  await api?.close();
  await c?.destroy();
  certs?.cleanup();
});

describe('podwire proxy (iptables) following the Kubernetes API', () => {
  it('programs what it lists: traffic to the cluster IP reaches both endpoints', async () => {
    await daemon.eventually(async () => expect(Object.keys(tally(await probe('10.96.0.10'))).sort()).toEqual(['a', 'r']), 20_000);
    const watches = api.requests.filter((q) => q.watch);
    expect(watches.some((q) => q.path === SERVICES && q.query.get('allowWatchBookmarks') === 'true')).toBe(true);
  });

  it('a service created through the API answers within seconds', async () => {
    const t0 = Date.now();
    api.upsert(SERVICES, service('api', '10.96.0.20'));
    api.upsert(ENDPOINTSLICES, slice('api', [r]));
    await daemon.eventually(async () => expect(tally(await probe('10.96.0.20', 3))).toEqual({ r: 3 }), 10_000);
    const took = Date.now() - t0;
    expect(took).toBeLessThan(5000);
  });

  it('keeps serving on the last known state while the API server is unreachable, and follows again after', async () => {
    await stopForwarder();
    api.dropWatches();
    await new Promise((res) => setTimeout(res, 2500));
    expect(Object.keys(tally(await probe('10.96.0.10'))).sort()).toEqual(['a', 'r']);
    expect(tally(await probe('10.96.0.20', 3))).toEqual({ r: 3 });
    startForwarder();
    api.upsert(ENDPOINTSLICES, slice('web', [a]));
    await daemon.eventually(async () => expect(tally(await probe('10.96.0.10'))).toEqual({ a: 8 }), 20_000);
    api.remove(SERVICES, 'api', 'default');
    await daemon.eventually(async () => expect((await probe('10.96.0.20', 1))[0]?.result).not.toBe('ok'), 20_000);
    expect(daemon.running).toBe(true);
  });
});

