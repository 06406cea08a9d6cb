// The nftables backend programming a node namespace of the fake cluster, checked by real connections.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNftablesBackend } from '../../src/proxy/nftables/index.js';
import type { ProxyBackend, ServiceView } from '../../src/proxy/model.js';
import { CLIENT_IP4, CLIENT_IP4_ALT, Cluster, tally, type Pod } from '../helpers/cluster.js';
import { sharedBackendTraffic } from '../helpers/backend-traffic.js';
import { NetnsScope, netnsPath, nsMust, nsRun } from '../helpers/netns.js';
import { config, ep, state, svcInfo, view } from '../helpers/model.js';

let c: Cluster;
let backend: ProxyBackend;
let backend6: ProxyBackend;
let a: Pod, b: Pod, r: Pod;
const CIDR = '10.244.0.0/16';

const podEp = (p: Pod, port = 8080) => ep(p.ip4, port, p.node.index === 1);

function services(over: { webEndpoints?: Pod[]; extra?: ServiceView[] } = {}): ServiceView[] {
  const web = svcInfo('default', 'web', { clusterIP: '10.96.0.10', nodePort: 30080 });
  const udp = svcInfo('default', 'dns', { clusterIP: '10.96.0.11', port: 53, protocol: 'UDP', portName: 'dns' });
  const empty = svcInfo('default', 'empty', { clusterIP: '10.96.0.12', nodePort: 30081 });
  const local = svcInfo('default', 'local', { clusterIP: '10.96.0.14', nodePort: 30082, externalPolicyLocal: true });
  const self = svcInfo('default', 'self', { clusterIP: '10.96.0.16' });
  const ext = svcInfo('default', 'ext', { clusterIP: '10.96.0.17', externalIPs: ['203.0.113.5'] });
  const itp = svcInfo('default', 'itp', { clusterIP: '10.96.0.18', internalPolicyLocal: true });
  const sticky = svcInfo('default', 'sticky', { clusterIP: '10.96.0.13', affinityTimeoutSeconds: 600 });
  const lb = svcInfo('default', 'lb', { clusterIP: '10.96.0.15', loadBalancerVIPs: ['203.0.113.9'], loadBalancerSourceRanges: [`${CLIENT_IP4}/32`] });
  return [
    view(web, (over.webEndpoints ?? [a, b, r]).map((p) => podEp(p))),
    view(udp, [a, r].map((p) => podEp(p, 8081))),
    view(empty, []),
    view(local, [a, r].map((p) => podEp(p))),
    view(self, [podEp(a)]),
    view(ext, [podEp(b)]),
    view(itp, [a, r].map((p) => podEp(p))),
    view(sticky, [a, b, r].map((p) => podEp(p))),
    view(lb, [podEp(r)]),
    ...(over.extra ?? []),
  ];
}

const cfg = config({ clusterCIDRs: [CIDR] });
const list = async () => JSON.parse(await nsMust(c.node(1).ns, 'nft', ['-j', 'list', 'table', 'ip', 'podwire'])) as { nftables: Array<Record<string, { name?: string; chain?: string; flags?: string[]; timeout?: number }>> };

beforeAll(async () => {
  c = await Cluster.create('nftp');
  a = await c.addPod('a', 1);
  b = await c.addPod('b', 1);
  r = await c.addPod('r', 2);
  backend = createNftablesBackend(cfg, { netnsPath: netnsPath(c.node(1).ns) });
  const res = await backend.sync({ state: state(services()), changed: null });
  expect(res.full).toBe(true);
}, 120_000);
afterAll(() => c?.destroy());

describe('nftables backend, real traffic', () => {
  sharedBackendTraffic(() => ({ c, a, b }));

  it('from the node itself (off-cluster source): served and masqueraded', async () => {
    const res = await c.probe(c.node(1).ns, '10.96.0.10', 80, { count: 10 });
    expect(res.every((x) => x.result === 'ok')).toBe(true);
  });

  it('localhost node ports are not served', async () => {
    const [x] = await c.probe(c.node(1).ns, '127.0.0.1', 30080, { timeoutMs: 1000 });
    expect(x?.result).not.toBe('ok');
  });

  it('externalTrafficPolicy Local: only the local endpoint, client source preserved', async () => {
    const res = await c.probe(c.client, c.node(1).ip4, 30082, { count: 10 });
    expect(tally(res)).toEqual({ a: 10 });
    expect(res.every((x) => x.sourceIP === CLIENT_IP4)).toBe(true);
  });

  it("internalTrafficPolicy Local: the cluster IP reaches only this node's endpoint", async () => {
    expect(tally(await c.probe(b.ns, '10.96.0.18', 80, { count: 12 }))).toEqual({ a: 12 });
  });

  it('externalIPs reach the service from outside', async () => {
    expect(tally(await c.probe(c.client, '203.0.113.5', 80, { count: 3 }))).toEqual({ b: 3 });
  });

  it('sessionAffinity ClientIP keeps each client on one endpoint (timed sets per endpoint)', async () => {
    for (const p of [a, b]) {
      const res = await c.probe(p.ns, '10.96.0.13', 80, { count: 15 });
      expect(Object.keys(tally(res))).toHaveLength(1);
    }
    const j = await list();
    const aff = j.nftables.find((o) => o.set?.name?.startsWith('affinity-'))?.set as { flags?: string[]; timeout?: number } | undefined;
    expect(aff?.flags).toContain('timeout');
    expect(aff?.timeout).toBe(600);
  });

  it('loadBalancerSourceRanges: allowed client served, other source dropped', async () => {
    expect(tally(await c.probe(c.client, '203.0.113.9', 80, { count: 3, source: CLIENT_IP4 }))).toEqual({ r: 3 });
    const [no] = await c.probe(c.client, '203.0.113.9', 80, { source: CLIENT_IP4_ALT, timeoutMs: 1000 });
    expect(no?.result).toBe('timeout');
  });

  it('hairpin: a pod reaches itself through its service (masqueraded to the node)', async () => {
    const res = await c.probe(a.ns, '10.96.0.16', 80, { count: 3 });
    expect(tally(res)).toEqual({ a: 3 });
    expect(res.every((x) => x.sourceIP !== a.ip4)).toBe(true);
  });

  it('partial sync: one endpoint change touches only that service, stale chains go', async () => {
    const before = await list();
    const chains = (j: typeof before) => j.nftables.filter((o) => o.chain).map((o) => o.chain!.name);
    const res = await backend.sync({ state: state(services({ webEndpoints: [r] })), changed: new Set(['default/web:p80']) });
    expect(res.full).toBe(false);
    expect(res.counts?.messages).toBeLessThan(10);
    expect(tally(await c.probe(a.ns, '10.96.0.10', 80, { count: 8 }))).toEqual({ r: 8 });
    // web loses every endpoint: its chains go, it is rejected.
    const gone = await backend.sync({ state: state(services({ webEndpoints: [] })), changed: new Set(['default/web:p80']) });
    expect(gone.full).toBe(false);
    const after = await list();
    expect(chains(after).length).toBe(chains(before).length - 2);
    const [x] = await c.probe(a.ns, '10.96.0.10', 80, { timeoutMs: 3000 });
    expect(x?.result).toBe('refused');
    // Other services untouched.
    expect(tally(await c.probe(b.ns, '10.96.0.16', 80, { count: 2 }))).toEqual({ a: 2 });
    // Back, and a new service added alone.
    const extra = view(svcInfo('default', 'new', { clusterIP: '10.96.0.30' }), [podEp(b)]);
    await backend.sync({ state: state(services({ extra: [extra] })), changed: new Set(['default/web:p80', 'default/new:p80']) });
    expect(tally(await c.probe(a.ns, '10.96.0.30', 80, { count: 3 }))).toEqual({ b: 3 });
    expect(Object.keys(tally(await c.probe(a.ns, '10.96.0.10', 80, { count: 30 }))).sort()).toEqual(['a', 'b', 'r']);
    // The new service removed again: its chain and elements go, nothing else changes.
    const withNew = chains(await list()).length;
    const rm = await backend.sync({ state: state(services()), changed: new Set(['default/new:p80']) });
    expect(rm.full).toBe(false);
    expect(chains(await list()).length).toBe(withNew - 1);
    const [y] = await c.probe(a.ns, '10.96.0.30', 80, { timeoutMs: 1000 });
    expect(y?.result).not.toBe('ok');
  });

  it('a refused batch changes nothing and the next sync is full', async () => {
    // An endpoint of the wrong family: the kernel refuses its map element, so the whole batch.
    const wrong = view(svcInfo('default', 'wrong', { clusterIP: '10.96.0.32' }), [ep('fd00::1', 80)]);
    await expect(backend.sync({ state: state(services({ extra: [wrong] })), changed: new Set(['default/wrong:p80']) })).rejects.toThrow(/podwire/);
    expect(tally(await c.probe(a.ns, '10.96.0.16', 80, { count: 2 }))).toEqual({ a: 2 });
    const res = await backend.sync({ state: state(services()), changed: new Set(['default/web:p80']) });
    expect(res.full).toBe(true);
  });

  it('nodePortAddresses and masqueradeAll (a backend with that config replaces the table)', async () => {
    const other = createNftablesBackend(config({ clusterCIDRs: [CIDR], masqueradeAll: true, nodePortAddresses: [`${c.node(1).ip4}/32`] }), { netnsPath: netnsPath(c.node(1).ns) });
    await other.sync({ state: state(services()), changed: null });
    const res = await c.probe(c.client, c.node(1).ip4, 30080, { count: 5 });
    expect(res.every((x) => x.result === 'ok')).toBe(true);
    // The bridge address is local but not a node port address.
    const [x] = await c.probe(a.ns, c.node(1).bridgeIP4, 30080, { timeoutMs: 1000 });
    expect(x?.result).not.toBe('ok');
    // masqueradeAll: even a pod source is rewritten for a remote endpoint.
    const fromPod = await c.probe(a.ns, '10.96.0.10', 80, { count: 20 });
    const remote = fromPod.filter((p) => p.server === 'r');
    expect(remote.length).toBeGreaterThan(0);
    expect(remote.every((p) => p.sourceIP !== a.ip4)).toBe(true);
    await backend.sync({ state: state(services()), changed: null });
  });

  it('IPv6: table ip6 podwire serves a cluster IP', async () => {
    backend6 = createNftablesBackend(config({ family: 6, clusterCIDRs: ['fd00:244::/48'] }), { netnsPath: netnsPath(c.node(1).ns) });
    const web6 = svcInfo('default', 'web6', { clusterIP: 'fd00:96::10' });
    const empty6 = svcInfo('default', 'empty6', { clusterIP: 'fd00:96::12' });
    await backend6.sync({ state: state([view(web6, [a, r].map((p) => ep(p.ip6, 8080, p.node.index === 1))), view(empty6, [])], 6, [c.node(1).ip6]), changed: null });
    const res = await c.probe(b.ns, 'fd00:96::10', 80, { count: 20 });
    expect(Object.keys(tally(res)).sort()).toEqual(['a', 'r']);
    const [x] = await c.probe(b.ns, 'fd00:96::12', 80, { timeoutMs: 3000 });
    expect(x?.result).toBe('refused');
  });

  it('oracle: the table netlink made is exactly what nft -f makes from its own listing', async () => {
    const scope = new NetnsScope('nftp-orc');
    await scope.cleanup();
    try {
      const viaNetlink = await scope.create('nl');
      const viaText = await scope.create('txt');
      const be = createNftablesBackend(cfg, { netnsPath: netnsPath(viaNetlink) });
      await be.sync({ state: state(services()), changed: null });
      const text = await nsMust(viaNetlink, 'nft', ['list', 'table', 'ip', 'podwire']);
      const r = await nsRun(viaText, 'nft', ['-f', '-'], { input: text });
      expect(r.stderr).toBe('');
      const norm = async (ns: string) =>
        (JSON.parse(await nsMust(ns, 'nft', ['-j', 'list', 'table', 'ip', 'podwire'])) as { nftables: Array<Record<string, Record<string, unknown>>> }).nftables
          .filter((o) => !o.metainfo)
          .map((o) => JSON.stringify(o, (k, v: unknown) => (k === 'handle' ? undefined : v)));
      const [a1, b1] = [await norm(viaNetlink), await norm(viaText)];
      expect(a1.length).toBeGreaterThan(30);
      expect(a1).toEqual(b1);
    } finally {
      await scope.cleanup();
    }
  });

  it('cleanup deletes the tables', async () => {
    await backend.cleanup();
    await backend6.cleanup();
    const out = await nsRun(c.node(1).ns, 'nft', ['list', 'tables']);
    expect(out.stdout).not.toMatch(/podwire/);
    await backend.cleanup(); // idempotent
  });
});
