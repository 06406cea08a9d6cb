// The nftables backend's plans (plan.ts), without a kernel: what a change puts in
// the Transaction, and that it names only the changed service's objects.
import { describe, expect, it } from 'vitest';
import { ipToString, type Element, type Transaction, type TxOp } from '../../src/netlink/nftables/index.js';
import type { ServiceView } from '../../src/proxy/model.js';
import { GROUP_KIND, groupId, LayoutRenderer, ServiceIds, SLOTS_PER_GROUP } from '../../src/proxy/nftables/layout.js';
import { planDelta, planFull, SharedElements } from '../../src/proxy/nftables/plan.js';
import { paramsOf, type SetParams, type TableNames } from '../../src/proxy/nftables/readback.js';
import { config, ep, state, svcInfo, view } from '../helpers/model.js';

const WEB = 'default/web:p80';
const STICKY = 'default/sticky:p80';
const OTHER = 'default/other:p80';

const web = (eps = ['10.244.1.2', '10.244.1.3', '10.244.2.2'], over: Partial<Parameters<typeof svcInfo>[2]> = {}) =>
  view(svcInfo('default', 'web', { clusterIP: '10.96.0.10', nodePort: 30080, ...over }), eps.map((ip) => ep(ip, 8080, ip.startsWith('10.244.1.'))));
const sticky = (timeout = 600) => view(svcInfo('default', 'sticky', { clusterIP: '10.96.0.13', affinityTimeoutSeconds: timeout }), ['10.244.1.2', '10.244.2.3'].map((ip) => ep(ip, 8080, ip.startsWith('10.244.1.'))));
const other = () => view(svcInfo('default', 'other', { clusterIP: '10.96.0.20' }), [ep('10.244.2.9', 9090, false), ep('10.244.2.10', 9090, false)]);

/** A backend's planning state after a full sync of views. */
function synced(views: ServiceView[]) {
  const r = new LayoutRenderer(config());
  const ids = new ServiceIds();
  const shared = new SharedElements();
  const st = state(views);
  planFull(r, ids, shared, st, null);
  const committed = new Map(st.services);
  /** Plans the change to views (the names in changed) and commits it to the planning state. */
  const change = (next: ServiceView[], changed: string[]) => {
    const s = state(next);
    const tx = planDelta(r, ids, shared, committed, s, new Set(changed));
    for (const n of changed) {
      const v = s.services.get(n);
      if (v) committed.set(n, v);
      else committed.delete(n);
    }
    return tx;
  };
  return { r, ids, shared, change };
}

/** One line per operation: verb and object, elements with their count. */
function summary(tx: Transaction): string[] {
  return tx.operations().map((o: TxOp) => {
    switch (o.kind) {
      case 'add rule':
        return `add rule ${o.rule.chain}`;
      case 'add chain':
      case 'create chain':
        return `${o.kind} ${o.chain.name}`;
      case 'flush chain':
      case 'delete chain':
        return `${o.kind} ${o.chain}`;
      case 'add set':
      case 'create set':
      case 'flush set':
        return `${o.kind} ${o.set.name}`;
      case 'delete set':
        return `delete set ${o.name}`;
      case 'add element':
      case 'delete element':
        return `${o.kind} ${o.set.name} ${o.elements.length}`;
      case 'add table':
      case 'create table':
        return `${o.kind} ${o.table.name}`;
      case 'delete table':
        return `delete table ${o.name}`;
    }
  });
}

function elements(tx: Transaction, kind: 'add element' | 'delete element', set: string): Element[] {
  return tx.operations().flatMap((o) => (o.kind === kind && o.set.name === set ? [...o.elements] : []));
}

/** An endpoints-map element as group, slot and endpoint. */
function slot(e: Element): { group: number; slot: number; endpoint?: string } {
  const id = e.key.readUInt32LE(0);
  const data = Buffer.isBuffer(e.data) ? e.data : undefined;
  return { group: Math.floor(id / SLOTS_PER_GROUP), slot: id % SLOTS_PER_GROUP, endpoint: data ? `${ipToString(data.subarray(0, 4))}:${data.readUInt16BE(4)}` : undefined };
}

describe('nftables partial syncs (plan.ts)', () => {
  it('one endpoint replaced, same count: two endpoint-map elements per group, nothing else (no chain, no rule)', () => {
    const p = synced([web(), sticky(), other()]);
    const id = p.ids.get(WEB);
    const tx = p.change([web(['10.244.1.2', '10.244.1.3', '10.244.2.7']), sticky(), other()], [WEB]);
    expect(summary(tx)).toEqual(['delete element endpoints 2', 'add element endpoints 2']);
    // Slot 2 of the internal and the external group now hold the new endpoint.
    expect(elements(tx, 'add element', 'endpoints').map(slot)).toEqual([
      { group: groupId(id, GROUP_KIND.internal), slot: 2, endpoint: '10.244.2.7:8080' },
      { group: groupId(id, GROUP_KIND.external), slot: 2, endpoint: '10.244.2.7:8080' },
    ]);
    expect(elements(tx, 'delete element', 'endpoints').map((e) => slot(e).slot)).toEqual([2, 2]);
  });

  it("a local endpoint replaced: its hairpin element goes, the new one's comes", () => {
    const p = synced([web(), other()]);
    const tx = p.change([web(['10.244.1.2', '10.244.1.9', '10.244.2.2']), other()], [WEB]);
    expect(summary(tx)).toEqual(['delete element hairpin 1', 'delete element endpoints 2', 'add element hairpin 1', 'add element endpoints 2']);
    expect(elements(tx, 'delete element', 'hairpin').map((e) => ipToString(e.key.subarray(0, 4)))).toEqual(['10.244.1.3']);
    expect(elements(tx, 'add element', 'hairpin').map((e) => ipToString(e.key.subarray(0, 4)))).toEqual(['10.244.1.9']);
  });

  it('one endpoint added: the service chains are rewritten (numgen mod 4, no verdict), the new slot added', () => {
    const p = synced([web(), other()]);
    const id = p.ids.get(WEB);
    const tx = p.change([web(['10.244.1.2', '10.244.1.3', '10.244.2.2', '10.244.2.8']), other()], [WEB]);
    expect(summary(tx)).toEqual([`flush chain svc-${id}`, `flush chain ext-${id}`, `add rule svc-${id}`, `add rule ext-${id}`, 'add element endpoints 2']);
    const numgen = tx.operations().flatMap((o) => (o.kind === 'add rule' ? o.rule.exprs.filter((e) => e.op === 'numgen') : []));
    expect(numgen.map((e) => (e.op === 'numgen' ? e.mod : 0))).toEqual([4, 4]);
    // No verdict and no meta set in a service chain: the kernel need not validate the whole table.
    const exprs = tx.operations().flatMap((o) => (o.kind === 'add rule' ? o.rule.exprs.map((e) => e.op) : []));
    expect(exprs).toEqual(['numgen', 'ct-set', 'numgen', 'ct-set']);
  });

  it('a service added: its chain, its rules and its elements only', () => {
    const p = synced([web(), other()]);
    const extra = view(svcInfo('default', 'new', { clusterIP: '10.96.0.30' }), [ep('10.244.2.5', 80, false)]);
    const tx = p.change([web(), other(), extra], ['default/new:p80']);
    const id = p.ids.get('default/new:p80');
    expect(summary(tx)).toEqual([`add chain svc-${id}`, `add rule svc-${id}`, 'add element service-ips 1', 'add element endpoints 1']);
    expect(elements(tx, 'add element', 'endpoints').map(slot)).toEqual([{ group: groupId(id, GROUP_KIND.internal), slot: 0, endpoint: '10.244.2.5:80' }]);
    const [dispatch] = elements(tx, 'add element', 'service-ips');
    expect(ipToString(dispatch!.key.subarray(0, 4))).toBe('10.96.0.30');
    expect(dispatch!.data).toEqual({ kind: 'goto', chain: `svc-${id}` });
  });

  it('a service removed: its chains flushed, its elements deleted, then its chains deleted', () => {
    const p = synced([web(), sticky(), other()]);
    const id = p.ids.get(OTHER);
    const tx = p.change([web(), sticky()], [OTHER]);
    expect(summary(tx)).toEqual([`flush chain svc-${id}`, 'delete element service-ips 1', 'delete element endpoints 2', `delete chain svc-${id}`]);
    expect(elements(tx, 'delete element', 'endpoints').map((e) => slot(e).group)).toEqual([groupId(id, GROUP_KIND.internal), groupId(id, GROUP_KIND.internal)]);
  });

  it('a service losing every endpoint: rejected instead (no-endpoint element), its chains go', () => {
    const p = synced([web(), other()]);
    const id = p.ids.get(OTHER);
    const tx = p.change([web(), view(other().info, [])], [OTHER]);
    expect(summary(tx)).toEqual([`flush chain svc-${id}`, 'delete element service-ips 1', 'delete element endpoints 2', 'add element no-endpoint-services 1', `delete chain svc-${id}`]);
  });

  it('a node port change: the node-port map element only', () => {
    const p = synced([web(), other()]);
    const tx = p.change([web(undefined, { nodePort: 30099 }), other()], [WEB]);
    expect(summary(tx)).toEqual(['delete element service-nodeports 1', 'add element service-nodeports 1']);
    expect(elements(tx, 'add element', 'service-nodeports')[0]!.key.readUInt16BE(4)).toBe(30099);
  });

  it('an affinity timeout change: its sets made again after its rules are flushed, its rules back, nothing of other services', () => {
    const p = synced([web(), sticky(600), other()]);
    const id = p.ids.get(STICKY);
    const tx = p.change([web(), sticky(300), other()], [STICKY]);
    const s = summary(tx);
    const chains = [`ep-${id}-10.244.1.2-8080`, `ep-${id}-10.244.2.3-8080`, `svc-${id}`];
    const sets = [`affinity-${id}-10.244.1.2-8080`, `affinity-${id}-10.244.2.3-8080`];
    expect(s.filter((x) => x.startsWith('flush chain')).sort()).toEqual(chains.map((c) => `flush chain ${c}`));
    expect(s.filter((x) => x.startsWith('delete set')).sort()).toEqual(sets.map((c) => `delete set ${c}`));
    expect(s.filter((x) => x.startsWith('add set')).sort()).toEqual(sets.map((c) => `add set ${c}`));
    // Order: flush, delete set, add set, rules.
    expect(s.indexOf(`delete set ${sets[0]}`)).toBeGreaterThan(s.lastIndexOf(`flush chain svc-${id}`));
    expect(s.findIndex((x) => x.startsWith('add rule'))).toBeGreaterThan(s.lastIndexOf(`add set ${sets[1]}`));
    const added = tx.operations().flatMap((o) => (o.kind === 'add set' ? [o.set.timeoutMs] : []));
    expect(added).toEqual([300_000, 300_000]);
    // The slot map keeps its elements (same endpoints in the same slots).
    expect(s.filter((x) => x.includes('element'))).toEqual([]);
    const named = tx.operations().map((o) => JSON.stringify(o));
    expect(named.some((x) => x.includes(`svc-${p.ids.get(WEB)}"`) || x.includes(`svc-${p.ids.get(OTHER)}"`))).toBe(false);
  });

  it('affinity turned on: the slot map, one timed set and one endpoint chain per endpoint; the group elements go', () => {
    const p = synced([web(), other()]);
    const id = p.ids.get(OTHER);
    const on = view({ ...other().info, affinityTimeoutSeconds: 60 }, other().internalEndpoints as ReturnType<typeof ep>[]);
    const tx = p.change([web(), on], [OTHER]);
    const s = summary(tx);
    expect(s.filter((x) => x.startsWith('add set')).sort()).toEqual([`add set affinity-${id}-10.244.2.10-9090`, `add set affinity-${id}-10.244.2.9-9090`, `add set slots-${id}`]);
    expect(s.filter((x) => x.startsWith('add chain')).sort()).toEqual([`add chain ep-${id}-10.244.2.10-9090`, `add chain ep-${id}-10.244.2.9-9090`]);
    expect(s).toContain(`flush chain svc-${id}`);
    expect(s).toContain('delete element endpoints 2');
    expect(s).toContain(`add element slots-${id} 2`);
  });

  it('a pod behind two services keeps its hairpin element until the second one goes', () => {
    const shared = (name: string, cip: string) => view(svcInfo('default', name, { clusterIP: cip }), [ep('10.244.1.5', 8080, true)]);
    const p = synced([shared('one', '10.96.0.41'), shared('two', '10.96.0.42')]);
    const first = p.change([shared('two', '10.96.0.42')], ['default/one:p80']);
    expect(summary(first)).not.toContain('delete element hairpin 1');
    const second = p.change([], ['default/two:p80']);
    expect(summary(second)).toContain('delete element hairpin 1');
  });
});

describe('nftables full syncs (plan.ts)', () => {
  const names = (chains: string[], sets: Array<[string, SetParams]>): TableNames => ({ chains: new Set(chains), sets: new Map(sets) });

  it('from nothing: the table, sets, chains, rules, then elements; nothing flushed or deleted', () => {
    const r = new LayoutRenderer(config());
    const tx = planFull(r, new ServiceIds(), new SharedElements(), state([web(), sticky()]), null);
    const s = summary(tx);
    expect(s[0]).toBe('add table podwire');
    expect(s.filter((x) => /^(flush|delete)/.test(x))).toEqual([]);
    expect(s.findIndex((x) => x.startsWith('add element'))).toBeGreaterThan(s.lastIndexOf(s.filter((x) => x.startsWith('add rule')).pop()!));
  });

  it('over an existing table: chains flushed, shared sets flushed, affinity sets kept, stale and changed objects deleted', () => {
    const r = new LayoutRenderer(config());
    const ids = new ServiceIds();
    const st = state([web(), sticky(600)]);
    const sid = ids.get(STICKY);
    ids.get(WEB);
    const keptAffinity = `affinity-${sid}-10.244.1.2-8080`;
    const changedAffinity = `affinity-${sid}-10.244.2.3-8080`;
    const affinityDef = { family: 'ip' as const, table: 'podwire', name: keptAffinity, key: ['ipv4_addr' as const], dynamic: true, timeout: true, timeoutMs: 600_000 };
    const existing = names(
      ['services', 'nat-prerouting', `svc-${sid}`, 'svc-77', 'ep-77-10.0.0.1-80'],
      [
        [keptAffinity, paramsOf(affinityDef)],
        [changedAffinity, paramsOf({ ...affinityDef, name: changedAffinity, timeoutMs: 5_000 })],
        ['endpoints', paramsOf(r.sets.get('endpoints')!)],
        ['slots-77', paramsOf({ family: 'ip', table: 'podwire', name: 'slots-77', key: ['mark'], data: 'verdict' })],
      ],
    );
    const s = summary(planFull(r, ids, new SharedElements(), st, existing));
    expect(s.filter((x) => x.startsWith('flush chain'))).toEqual(['services', 'nat-prerouting', `svc-${sid}`, 'svc-77', 'ep-77-10.0.0.1-80'].map((c) => `flush chain ${c}`));
    expect(s).toContain('flush set endpoints');
    expect(s).not.toContain(`flush set ${keptAffinity}`);
    expect(s).not.toContain(`delete set ${keptAffinity}`);
    expect(s).toContain(`delete set ${changedAffinity}`);
    expect(s).toContain('delete set slots-77');
    expect(s.slice(-2)).toEqual(['delete chain svc-77', 'delete chain ep-77-10.0.0.1-80']);
    // Every wanted set is added (a no-op for the ones kept), the changed one after its deletion.
    expect(s.indexOf(`add set ${changedAffinity}`)).toBeGreaterThan(s.indexOf(`delete set ${changedAffinity}`));
  });

  it('replace: the table deleted and made again in the same batch', () => {
    const r = new LayoutRenderer(config());
    const s = summary(planFull(r, new ServiceIds(), new SharedElements(), state([web()]), names(['svc-1'], []), { replace: true }));
    expect(s.slice(0, 3)).toEqual(['add table podwire', 'delete table podwire', 'add table podwire']);
    expect(s).not.toContain('flush chain svc-1');
  });

  it('without kept operations (the netlink transport): the same messages, in the same order', () => {
    const r = new LayoutRenderer(config());
    const st = state([web(), sticky(), other()]);
    const existing = names(['services', 'svc-9'], [['endpoints', paramsOf(r.sets.get('endpoints')!)]]);
    const plan = (keepOperations: boolean) => planFull(r, new ServiceIds(), new SharedElements(), st, existing, { keepOperations }).messages();
    const kept = plan(true);
    const bare = plan(false);
    // Set ids differ per encoding (a counter): compare what each message does and its size.
    expect(bare.owner).toEqual(kept.owner);
    expect(bare.parts.map((p) => [p.type, p.payload.length])).toEqual(kept.parts.map((p) => [p.type, p.payload.length]));
  });
});
