// bin/podwire proxy --manifests DIR inside a node namespace, with the iptables backend, checked by traffic.
import { mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, tally, type Pod } from '../helpers/cluster.js';
import { PODWIRE, ProxyDaemon } from '../helpers/daemon.js';
import { nsMust, nsRun } from '../helpers/netns.js';

let c: Cluster;
let a: Pod, b: Pod, r: Pod;
let dir = '';
const daemon = new ProxyDaemon();

function service(name: string, ip: string): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
    spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ipFamilies: ['IPv4'], ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], selector: { app: name } } });
}

function slice(name: string, pods: Pod[]): string {
  return JSON.stringify({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: pods.map((p) => ({ addresses: [p.ip4], conditions: { ready: true, serving: true, terminating: false }, nodeName: p.node.name })) });
}

function list(...items: string[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: items.map((i) => JSON.parse(i)) });
}

function startDaemon(extra: string[] = []): void {
  daemon.start(c.node(1).ns, ['--manifests', dir, '--hostname-override', 'node-1',
    '--cluster-cidr', '10.244.0.0/16', '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249', ...extra]);
}

async function http(path: string, port: number): Promise<{ status: number; body: string }> {
  const code = `fetch('http://127.0.0.1:${port}${path}').then(async r => console.log(JSON.stringify({status: r.status, body: await r.text()})), e => { console.error(String(e)); process.exit(1); })`;
  const res = await nsRun(c.node(1).ns, process.execPath, ['-e', code]);
  if (res.code !== 0) throw new Error(`GET ${path}: ${res.stderr}`);
  return JSON.parse(res.stdout) as { status: number; body: string };
}

beforeAll(async () => {
  c = await Cluster.create('iptd');
  a = await c.addPod('a', 1);
  b = await c.addPod('b', 1);
  r = await c.addPod('r', 2);
  dir = mkdtempSync(join(tmpdir(), 'pw-iptd-'));
  writeFileSync(join(dir, 'web.json'), list(service('web', '10.96.0.10'), slice('web', [a, r])));
  writeFileSync(join(dir, 'node.json'), JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' }, status: { addresses: [{ type: 'InternalIP', address: c.node(1).ip4 }] } }));
  startDaemon();
}, 120_000);

afterAll(async () => {
  await daemon.stop();
  await c?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const probeWeb = () => c.probe(b.ns, '10.96.0.10', 80, { count: 12, timeoutMs: 800 });

describe('podwire proxy (iptables) from a manifests directory', () => {
  it('programs the services it reads: traffic reaches local and remote endpoints', async () => {
    await daemon.eventually(async () => expect(Object.keys(tally(await probeWeb())).sort()).toEqual(['a', 'r']));
  });

  it('an endpoint removed from the slice stops getting traffic', async () => {
    writeFileSync(join(dir, 'web.json'), list(service('web', '10.96.0.10'), slice('web', [a])));
    await daemon.eventually(async () => expect(tally(await probeWeb())).toEqual({ a: 12 }));
  });

  it('a service added and removed at run time; a bad manifest does not stop the rest', async () => {
    writeFileSync(join(dir, 'broken.yaml'), 'kind: Service\nmetadata: [unclosed\n');
    writeFileSync(join(dir, 'api.json'), list(service('api', '10.96.0.20'), slice('api', [r])));
    await daemon.eventually(async () => expect(tally(await c.probe(b.ns, '10.96.0.20', 80, { count: 3, timeoutMs: 800 }))).toEqual({ r: 3 }));
    expect(tally(await probeWeb())).toEqual({ a: 12 });
    expect(daemon.log).toContain('broken.yaml');
    unlinkSync(join(dir, 'api.json'));
    await daemon.eventually(async () => expect((await c.probe(b.ns, '10.96.0.20', 80, { timeoutMs: 800 }))[0]?.result).not.toBe('ok'));
  });

  it('serves /healthz, /livez and /metrics with kube-proxy names', async () => {
    await daemon.eventually(async () => expect((await http('/healthz', 10256)).status).toBe(200));
    expect(JSON.parse((await http('/healthz', 10256)).body)).toHaveProperty('lastUpdated');
    expect((await http('/livez', 10256)).status).toBe(200);
    const m = (await http('/metrics', 10249)).body;
    expect(m).toMatch(/kubeproxy_sync_proxy_rules_iptables_total\{table="nat"\} [1-9]/);
    expect(m).toContain('kubeproxy_sync_proxy_rules_duration_seconds');
  });

  it('SIGTERM leaves the rules (traffic keeps flowing); a restart does not duplicate rules', async () => {
    const before = await nsMust(c.node(1).ns, 'iptables-save', []);
    expect(await daemon.stop()).toBe(0);
    expect(tally(await probeWeb())).toEqual({ a: 12 });
    startDaemon();
    await daemon.eventually(async () => expect((await http('/healthz', 10256)).status).toBe(200));
    await new Promise((res) => setTimeout(res, 1500));
    const after = await nsMust(c.node(1).ns, 'iptables-save', []);
    const rules = (t: string) => t.split('\n').filter((l) => l.startsWith('-A ')).sort();
    expect(rules(after)).toEqual(rules(before));
    expect(tally(await probeWeb())).toEqual({ a: 12 });
  });

  it('--cleanup removes every KUBE- chain and exits 0', async () => {
    await daemon.stop();
    const res = await nsRun(c.node(1).ns, process.execPath, [PODWIRE, 'proxy', '--cleanup']);
    expect(res.code, res.stderr).toBe(0);
    expect(await nsMust(c.node(1).ns, 'iptables-save', [])).not.toMatch(/KUBE-/);
  });
});
