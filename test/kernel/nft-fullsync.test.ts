// Full syncs converge podwire's nftables table in place: affinity entries survive
// them, what an earlier run left is removed, a restarted backend converges, and a
// table it cannot converge is replaced. Real namespaces and connections.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftConnection } from '../../src/netlink/nftables/index.js';
import { createNftablesBackend } from '../../src/proxy/nftables/index.js';
import { LayoutRenderer } from '../../src/proxy/nftables/layout.js';
import { paramsOf, readTableNames, sameParams } from '../../src/proxy/nftables/readback.js';
import type { ServiceView } from '../../src/proxy/model.js';
import { Cluster, tally, type Pod } from '../helpers/cluster.js';
import { netnsPath, nsMust } from '../helpers/netns.js';
import { config, ep, state, svcInfo, view } from '../helpers/model.js';

let c: Cluster;
let a: Pod, b: Pod, r: Pod;
const cfg = config({ clusterCIDRs: ['10.244.0.0/16'] });

interface Listed {
  chain?: { name: string };
  set?: { name: string; timeout?: number; elem?: Array<string | { elem: { val: string } }> };
  map?: { name: string };
  rule?: { chain: string };
}

const podEp = (p: Pod) => ep(p.ip4, 8080, p.node.index === 1);

function services(over: { stickyTimeout?: number; extra?: ServiceView[]; without?: string } = {}): ServiceView[] {
  const all = [
    view(svcInfo('default', 'web', { clusterIP: '10.96.0.10', nodePort: 30080 }), [a, b, r].map(podEp)),
    view(svcInfo('default', 'sticky', { clusterIP: '10.96.0.13', affinityTimeoutSeconds: over.stickyTimeout ?? 600 }), [a, b, r].map(podEp)),
    view(svcInfo('default', 'empty', { clusterIP: '10.96.0.12' }), []),
    ...(over.extra ?? []),
  ];
  return all.filter((v) => v.info.service !== over.without);
}

async function list(ns = c.node(1).ns): Promise<Listed[]> {
  return (JSON.parse(await nsMust(ns, 'nft', ['-j', 'list', 'table', 'ip', 'podwire'])) as { nftables: Listed[] }).nftables;
}

/** Client addresses in each affinity set. */
async function affinityClients(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const o of await list()) {
    if (!o.set?.name.startsWith('affinity-')) continue;
    out.set(o.set.name, (o.set.elem ?? []).map((e) => (typeof e === 'string' ? e : e.elem.val)));
  }
  return out;
}

/** Chain and set names, and rules per chain: what must match a table made fresh. */
function shape(objs: Listed[]): { chains: string[]; sets: string[]; rules: Record<string, number> } {
  const rules: Record<string, number> = {};
  for (const o of objs) if (o.rule) rules[o.rule.chain] = (rules[o.rule.chain] ?? 0) + 1;
  return {
    chains: objs.flatMap((o) => (o.chain ? [o.chain.name] : [])).sort(),
    sets: objs.flatMap((o) => (o.set ? [o.set.name] : o.map ? [o.map.name] : [])).sort(),
    rules,
  };
}

beforeAll(async () => {
  c = await Cluster.create('nftperf');
  a = await c.addPod('a', 1);
  b = await c.addPod('b', 1);
  r = await c.addPod('r', 2);
}, 120_000);
afterAll(() => c?.destroy());

describe('nftables full syncs converge in place', () => {
  it('affinity entries survive a full sync: each client stays on its endpoint', async () => {
    const be = createNftablesBackend(cfg, { netnsPath: netnsPath(c.node(1).ns) });
    await be.sync({ state: state(services()), changed: null });
    const chosen = new Map<Pod, string>();
    for (const p of [a, b]) {
      const t = tally(await c.probe(p.ns, '10.96.0.13', 80, { count: 5 }));
      expect(Object.keys(t)).toHaveLength(1);
      chosen.set(p, Object.keys(t)[0]!);
    }
    const before = await affinityClients();
    expect([...before.values()].flat().sort()).toEqual([a.ip4, b.ip4].sort());
    for (let i = 0; i < 2; i++) {
      const res = await be.sync({ state: state(services()), changed: null });
      expect(res.full).toBe(true);
    }
    expect(await affinityClients()).toEqual(before);
    for (const p of [a, b]) expect(tally(await c.probe(p.ns, '10.96.0.13', 80, { count: 5 }))).toEqual({ [chosen.get(p)!]: 5 });
    await be.cleanup();
  });

  it('the read-back parameters of every set the layout makes equal what it asks for (so a full sync keeps them)', async () => {
    for (const family of [4, 6] as const) {
      const cfgF = config({ family, clusterCIDRs: [family === 4 ? '10.244.0.0/16' : 'fd00:244::/48'] });
      const be = createNftablesBackend(cfgF, { netnsPath: netnsPath(c.node(1).ns) });
      const sticky = svcInfo('default', 'sticky', { clusterIP: family === 4 ? '10.96.0.13' : 'fd00:96::13', affinityTimeoutSeconds: 600 });
      await be.sync({ state: state([view(sticky, [ep(family === 4 ? a.ip4 : a.ip6)])], family), changed: null });
      const conn = NftConnection.open(netnsPath(c.node(1).ns));
      try {
        const names = readTableNames(conn, family === 4 ? 'ip' : 'ip6', 'podwire');
        const r = new LayoutRenderer(cfgF);
        const wanted = [...r.sets.values(), ...r.service(view(sticky, [ep(family === 4 ? a.ip4 : a.ip6)]), 1).ownSets];
        expect(wanted.length).toBeGreaterThan(11);
        for (const s of wanted) {
          const got = names?.sets.get(s.name);
          expect(got && { ...got, dataLen: s.data === 'verdict' ? 0 : got.dataLen }).toEqual(paramsOf(s));
          expect(got && sameParams(got, paramsOf(s))).toBe(true);
        }
        expect(readTableNames(conn, family === 4 ? 'ip' : 'ip6', 'no-such-table')).toBeNull();
      } finally {
        conn.close();
      }
      await be.cleanup();
    }
  });

  it('a restarted backend removes what an earlier run left and ends with the table a fresh namespace gets', async () => {
    const ns = c.node(1).ns;
    const first = createNftablesBackend(cfg, { netnsPath: netnsPath(ns) });
    const gone = view(svcInfo('default', 'gone', { clusterIP: '10.96.0.20' }), [podEp(r)]);
    await first.sync({ state: state(services({ extra: [gone] })), changed: null });
    // Objects a crashed older run left behind, referenced the way podwire's own are.
    await nsMust(ns, 'nft', ['-f', '-'], {
      input: [
        'add chain ip podwire svc-999',
        'add rule ip podwire svc-999 ip saddr 10.244.9.9 drop',
        'add set ip podwire affinity-999-x { type ipv4_addr; flags dynamic,timeout; timeout 5s; }',
        'add map ip podwire slots-999 { type mark : verdict; }',
        'add element ip podwire slots-999 { 0 : goto svc-999 }',
        'add element ip podwire service-ips { 10.96.0.99 . tcp . 80 : goto svc-999 }',
        '',
      ].join('\n'),
    });
    const restarted = createNftablesBackend(cfg, { netnsPath: netnsPath(ns) });
    const res = await restarted.sync({ state: state(services()), changed: null });
    expect(res.full).toBe(true);
    const names = shape(await list());
    expect(names.chains).not.toContain('svc-999');
    expect(names.sets).not.toContain('slots-999');
    expect(names.sets).not.toContain('affinity-999-x');
    // The same state in a namespace that never had a table.
    const fresh = await c.scope.create('fresh');
    const other = createNftablesBackend(cfg, { netnsPath: netnsPath(fresh) });
    await other.sync({ state: state(services()), changed: null });
    expect(names).toEqual(shape(await list(fresh)));
    // The removed service is gone, the others served.
    const [x] = await c.probe(a.ns, '10.96.0.20', 80, { timeoutMs: 1000 });
    expect(x?.result).not.toBe('ok');
    expect(Object.keys(tally(await c.probe(a.ns, '10.96.0.10', 80, { count: 20 }))).sort()).toEqual(['a', 'b', 'r']);
    await restarted.cleanup();
  });

  it('a table it cannot converge (a base chain at another priority) is replaced in one batch', async () => {
    const ns = c.node(1).ns;
    await nsMust(ns, 'nft', ['-f', '-'], { input: 'add table ip podwire\nadd chain ip podwire nat-prerouting { type nat hook prerouting priority -50; }\n' });
    const be = createNftablesBackend(cfg, { netnsPath: netnsPath(ns) });
    await be.sync({ state: state(services()), changed: null });
    const pre = (JSON.parse(await nsMust(ns, 'nft', ['-j', 'list', 'chain', 'ip', 'podwire', 'nat-prerouting'])) as { nftables: Array<{ chain?: { prio: number } }> }).nftables.find((o) => o.chain)?.chain;
    expect(pre?.prio).toBe(-100);
    expect(tally(await c.probe(b.ns, '10.96.0.10', 80, { count: 6 }))).not.toEqual({});
    await be.cleanup();
  });

  it('an affinity timeout change makes its sets again, in a partial and in a full sync', async () => {
    const be = createNftablesBackend(cfg, { netnsPath: netnsPath(c.node(1).ns) });
    await be.sync({ state: state(services()), changed: null });
    const timeouts = async () => (await list()).flatMap((o) => (o.set?.name.startsWith('affinity-') ? [o.set.timeout] : []));
    expect(await timeouts()).toEqual([600, 600, 600]);
    const partial = await be.sync({ state: state(services({ stickyTimeout: 300 })), changed: new Set(['default/sticky:p80']) });
    expect(partial.full).toBe(false);
    expect(await timeouts()).toEqual([300, 300, 300]);
    expect(Object.keys(tally(await c.probe(a.ns, '10.96.0.13', 80, { count: 5 })))).toHaveLength(1);
    await be.sync({ state: state(services({ stickyTimeout: 200 })), changed: null });
    expect(await timeouts()).toEqual([200, 200, 200]);
    expect(Object.keys(tally(await c.probe(b.ns, '10.96.0.13', 80, { count: 5 })))).toHaveLength(1);
    // A service removed in a partial sync takes its affinity sets, slot map and endpoint chains along.
    await be.sync({ state: state(services({ without: 'sticky', stickyTimeout: 200 })), changed: new Set(['default/sticky:p80']) });
    const left = shape(await list());
    expect(left.sets.filter((s) => s.startsWith('affinity-') || s.startsWith('slots-'))).toEqual([]);
    expect(left.chains.filter((s) => s.startsWith('ep-'))).toEqual([]);
    await be.cleanup();
  });
});
