// The iptables backend programming a node namespace of the fake cluster, checked by real connections.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIptablesBackend, detectFlavour } from '../../src/proxy/iptables/index.js';
import { serviceChains } from '../../src/proxy/iptables/names.js';
import type { ProxyBackend, ServiceView } from '../../src/proxy/model.js';
import { CLIENT_IP4, CLIENT_IP4_ALT, Cluster, tally, type Pod } from '../helpers/cluster.js';
import { sharedBackendTraffic } from '../helpers/backend-traffic.js';
import { netnsPath, nsMust } from '../helpers/netns.js';
import { config, ep, state, svcInfo, view } from '../helpers/model.js';

let c: Cluster;
let backend: ProxyBackend;
let a: Pod, b: Pod, r: Pod;
const CIDR = '10.244.0.0/16';

function podEp(p: Pod, port = 8080) {
  return ep(p.ip4, port, p.node.index === 1);
}

// The services of the test cluster, by name.
function services(over: { webEndpoints?: Pod[]; extra?: ServiceView[] } = {}): ServiceView[] {
  const web = svcInfo('default', 'web', { clusterIP: '10.96.0.10', nodePort: 30080 });
  const udp = svcInfo('default', 'dns', { clusterIP: '10.96.0.11', port: 53, protocol: 'UDP', portName: 'dns' });
  const empty = svcInfo('default', 'empty', { clusterIP: '10.96.0.12', nodePort: 30081 });
  const sticky = svcInfo('default', 'sticky', { clusterIP: '10.96.0.13', affinityTimeoutSeconds: 600 });
  const local = svcInfo('default', 'local', { clusterIP: '10.96.0.14', nodePort: 30082, externalPolicyLocal: true });
  const lb = svcInfo('default', 'lb', { clusterIP: '10.96.0.15', loadBalancerVIPs: ['203.0.113.9'], loadBalancerSourceRanges: [`${CLIENT_IP4}/32`] });
  const self = svcInfo('default', 'self', { clusterIP: '10.96.0.16' });
  const ext = svcInfo('default', 'ext', { clusterIP: '10.96.0.17', externalIPs: ['203.0.113.5'] });
  const itp = svcInfo('default', 'itp', { clusterIP: '10.96.0.18', internalPolicyLocal: true });
  const etpNone = svcInfo('default', 'etpnone', { clusterIP: '10.96.0.19', nodePort: 30083, externalPolicyLocal: true });
  return [
    view(web, (over.webEndpoints ?? [a, b, r]).map((p) => podEp(p))),
    view(udp, [a, r].map((p) => podEp(p, 8081))),
    view(empty, []),
    view(sticky, [a, b, r].map((p) => podEp(p))),
    view(local, [a, r].map((p) => podEp(p))),
    view(lb, [r].map((p) => podEp(p))),
    view(self, [podEp(a)]),
    view(ext, [podEp(b)]),
    view(itp, [a, r].map((p) => podEp(p))),
    view(etpNone, [podEp(r)]),
    ...(over.extra ?? []),
  ];
}

const cfg = config({ clusterCIDRs: [CIDR], localhostNodePorts: true });

beforeAll(async () => {
  c = await Cluster.create('ipt-tr');
  a = await c.addPod('a', 1);
  b = await c.addPod('b', 1);
  r = await c.addPod('r', 2);
  // Small nft batches, so full syncs here go through the batched path too.
  backend = createIptablesBackend(cfg, { netnsPath: netnsPath(c.node(1).ns), nftBatchServices: 3 });
  const res = await backend.sync({ state: state(services()), changed: null });
  expect(res.full).toBe(true);
}, 120_000);
afterAll(() => c?.destroy());

const save = (table: string) => nsMust(c.node(1).ns, 'iptables-save', ['-c', '-t', table]);
const rulesOf = (text: string, chain: string) => text.split('\n').map((l) => l.replace(/^\[\d+:\d+\] /, '')).filter((l) => l.startsWith(`-A ${chain} `));

describe('iptables backend, real traffic', () => {
  sharedBackendTraffic(() => ({ c, a, b }));

  it('localhost node port works from the node itself (route_localnet)', async () => {
    const res = await c.probe(c.node(1).ns, '127.0.0.1', 30080, { count: 3 });
    expect(res.every((x) => x.result === 'ok')).toBe(true);
  });

  it('externalTrafficPolicy Local: only the local endpoint, client source preserved', async () => {
    const res = await c.probe(c.client, c.node(1).ip4, 30082, { count: 10 });
    expect(tally(res)).toEqual({ a: 10 });
    expect(res.every((x) => x.sourceIP === CLIENT_IP4)).toBe(true);
    // Pods still reach every endpoint through the node port.
    const fromPod = await c.probe(b.ns, c.node(1).ip4, 30082, { count: 20 });
    expect(Object.keys(tally(fromPod)).sort()).toEqual(['a', 'r']);
  });

  it('internalTrafficPolicy Local: the cluster IP reaches only this node\'s endpoint', async () => {
    expect(tally(await c.probe(b.ns, '10.96.0.18', 80, { count: 12 }))).toEqual({ a: 12 });
  });

  it('ETP Local without a local endpoint: external clients are dropped (timeout), pods still served', async () => {
    const [x] = await c.probe(c.client, c.node(1).ip4, 30083, { timeoutMs: 1000 });
    expect(x?.result).toBe('timeout');
    expect(tally(await c.probe(b.ns, c.node(1).ip4, 30083, { count: 3 }))).toEqual({ r: 3 });
  });

  it('sessionAffinity ClientIP keeps a client on one endpoint', async () => {
    const res = await c.probe(b.ns, '10.96.0.13', 80, { count: 15 });
    expect(Object.keys(tally(res))).toHaveLength(1);
  });

  it('loadBalancerSourceRanges: allowed client served, other source dropped', async () => {
    const ok = await c.probe(c.client, '203.0.113.9', 80, { count: 3, source: CLIENT_IP4 });
    expect(tally(ok)).toEqual({ r: 3 });
    const [no] = await c.probe(c.client, '203.0.113.9', 80, { source: CLIENT_IP4_ALT, timeoutMs: 1000 });
    expect(no?.result).toBe('timeout');
  });

  it('externalIPs reach the service from outside', async () => {
    const res = await c.probe(c.client, '203.0.113.5', 80, { count: 3 });
    expect(tally(res)).toEqual({ b: 3 });
  });

  it('hairpin: a pod reaches itself through its service (masqueraded to the node)', async () => {
    const res = await c.probe(a.ns, '10.96.0.16', 80, { count: 3 });
    expect(tally(res)).toEqual({ a: 3 });
    expect(res.every((x) => x.sourceIP !== a.ip4)).toBe(true);
  });

  it('partial sync rewrites only the changed service and deletes its stale chains', async () => {
    await c.probe(a.ns, '10.96.0.13', 80, { count: 3 });
    const sticky = serviceChains(svcInfo('default', 'sticky'));
    const counters = (text: string) => text.split('\n').filter((l) => l.includes(`-A ${sticky.svc} `)).join('\n');
    const before = await save('nat');
    const res = await backend.sync({ state: state(services({ webEndpoints: [b] })), changed: new Set(['default/web:p80']) });
    expect(res.full).toBe(false);
    const after = await save('nat');
    // Counters of the untouched service survive: its chain was not rewritten.
    expect(counters(after)).toBe(counters(before));
    expect(counters(after)).toMatch(/^\[[1-9]/m);
    const web = await c.probe(a.ns, '10.96.0.10', 80, { count: 10 });
    expect(tally(web)).toEqual({ b: 10 });
    const seps = (text: string) => text.split('\n').filter((l) => l.startsWith(':KUBE-SEP-')).length;
    expect(seps(before) - seps(after)).toBe(2);
  });

  it('a flushed table (canary gone) turns the next partial sync into a full one', async () => {
    await nsMust(c.node(1).ns, 'iptables', ['-t', 'mangle', '-X', 'KUBE-PROXY-CANARY']);
    const res = await backend.sync({ state: state(services()), changed: new Set(['default/web:p80']) });
    expect(res.full).toBe(true);
    expect(tally(await c.probe(a.ns, '10.96.0.10', 80, { count: 20 }))).toHaveProperty('r');
  });

  it('a restarted backend re-syncs without duplicating jumps and removes what is gone', async () => {
    const fresh = createIptablesBackend(cfg, { netnsPath: netnsPath(c.node(1).ns) });
    const fewer = services().filter((v) => v.info.service !== 'ext');
    await fresh.sync({ state: state(fewer), changed: null });
    const nat = await save('nat');
    expect(rulesOf(nat, 'PREROUTING').filter((l) => l.includes('-j KUBE-SERVICES'))).toHaveLength(1);
    expect(nat).not.toContain(serviceChains(svcInfo('default', 'ext')).svc);
    const filter = await save('filter');
    expect(rulesOf(filter, 'FORWARD').filter((l) => l.includes('-j KUBE-FORWARD'))).toHaveLength(1);
    backend = fresh;
  });

  it('IPv6 ClusterIP', async () => {
    const v6 = createIptablesBackend(config({ family: 6, clusterCIDRs: ['fd00:244::/32'] }), { netnsPath: netnsPath(c.node(1).ns) });
    const info = svcInfo('default', 'web6', { clusterIP: 'fd00:96::10' });
    await v6.sync({ state: state([view(info, [ep(b.ip6), ep(r.ip6, 8080, false)])], 6), changed: null });
    const res = await c.probe(a.ns, 'fd00:96::10', 80, { count: 12 });
    expect(Object.keys(tally(res)).sort()).toEqual(['b', 'r']);
    await v6.cleanup();
    expect(await nsMust(c.node(1).ns, 'ip6tables-save', [])).not.toMatch(/KUBE-/);
  });

  it('node ports answer on every local address by default (the bridge address too)', async () => {
    expect((await c.probe(c.node(2).ns, c.node(1).bridgeIP4, 30080, { count: 2 })).every((x) => x.result === 'ok')).toBe(true);
  });

  it('masqueradeAll: even pod traffic to a cluster IP is masqueraded', async () => {
    const all = createIptablesBackend(config({ clusterCIDRs: [CIDR], masqueradeAll: true }), { netnsPath: netnsPath(c.node(1).ns) });
    await all.sync({ state: state(services()), changed: null });
    // Pod a to pod b (not a hairpin): without masqueradeAll b sees a's address (first test).
    const res = await c.probe(a.ns, '10.96.0.17', 80, { count: 3 });
    expect(tally(res)).toEqual({ b: 3 });
    expect(res.every((x) => x.sourceIP === c.node(1).bridgeIP4)).toBe(true);
  });

  it('nodePortAddresses: node ports only on the listed address', async () => {
    const only = createIptablesBackend(config({ clusterCIDRs: [CIDR], nodePortAddresses: [c.node(1).ip4] }), { netnsPath: netnsPath(c.node(1).ns) });
    await only.sync({ state: state(services()), changed: null });
    expect((await c.probe(c.node(2).ns, c.node(1).ip4, 30080, { count: 3 })).every((x) => x.result === 'ok')).toBe(true);
    // The node's bridge address is local too, but not listed: nothing answers there.
    const [x] = await c.probe(c.node(2).ns, c.node(1).bridgeIP4, 30080, { timeoutMs: 800 });
    expect(x?.result).not.toBe('ok');
    backend = only;
  });

  it('cleanup removes every KUBE- chain and jump, and only those', async () => {
    await nsMust(c.node(1).ns, 'iptables', ['-t', 'nat', '-N', 'OTHER-CHAIN']);
    await nsMust(c.node(1).ns, 'iptables', ['-t', 'nat', '-A', 'PREROUTING', '-j', 'OTHER-CHAIN']);
    await backend.cleanup();
    const all = await nsMust(c.node(1).ns, 'iptables-save', []);
    expect(all).not.toMatch(/KUBE-/);
    expect(all).toContain('-A PREROUTING -j OTHER-CHAIN');
    const [x] = await c.probe(a.ns, '10.96.0.10', 80, { timeoutMs: 800 });
    expect(x?.result).not.toBe('ok');
  });

  it('detects the legacy flavour when it holds KUBE- chains', async () => {
    const ns = netnsPath(c.node(2).ns);
    expect(await detectFlavour(4, ns)).toBe('nft');
    await nsMust(c.node(2).ns, 'iptables-legacy', ['-t', 'nat', '-N', 'KUBE-SERVICES']);
    expect(await detectFlavour(4, ns)).toBe('legacy');
  });
});
