// What a sync sends, as one Transaction (pure: no kernel here, the unit tests
// read the plans). A full sync converges whatever table the kernel holds to
// the state without deleting the table, so affinity entries survive it; a
// partial sync touches only the changed services, re-rendering each one's
// previous view to know what the kernel holds for it.
import { Transaction, type Element, type ElementStream, type Rule, type SetDef } from '../../netlink/nftables/index.js';
import type { ProxyState, ServiceView } from '../model.js';
import { SET, TABLE, type LayoutRenderer, type ServiceIds, type ServiceObjects } from './layout.js';
import { paramsOf, sameParams, type TableNames } from './readback.js';

const elKey = (e: Element) => e.key.toString('hex');
const sameData = (a: Element, b: Element) => JSON.stringify(a.data ?? null) === JSON.stringify(b.data ?? null);
const sameRules = (a: readonly Rule[], b: readonly Rule[]) => JSON.stringify(a) === JSON.stringify(b);

/**
 * A full sync's elements per set, encoded as each service adds them (one
 * stream a set, so each set's elements go in as few messages as fit).
 */
class ElementsBySet {
  private readonly bySet = new Map<string, ElementStream>();
  constructor(private readonly segment: Transaction) {}
  add(def: SetDef, els: readonly Element[]): void {
    if (els.length === 0) return;
    let stream = this.bySet.get(def.name);
    if (!stream) {
      stream = this.segment.elementStream(def);
      this.bySet.set(def.name, stream);
    }
    stream.add(els);
  }
  end(): void {
    for (const s of this.bySet.values()) s.end();
  }
}

/**
 * How many services hold each element of a set whose elements services share
 * (hairpin: one pod behind two services): an element goes when its last holder does.
 */
export class SharedElements {
  private readonly counts = new Map<string, number>();
  static has(set: string): boolean {
    return set === SET.hairpin;
  }
  clear(): void {
    this.counts.clear();
  }
  /** True when e was held by nobody (it must be added). */
  hold(set: string, e: Element): boolean {
    const k = `${set} ${elKey(e)}`;
    const n = this.counts.get(k) ?? 0;
    this.counts.set(k, n + 1);
    return n === 0;
  }
  /** True when this was the last holder (e must be deleted). */
  release(set: string, e: Element): boolean {
    const k = `${set} ${elKey(e)}`;
    const n = this.counts.get(k) ?? 0;
    if (n <= 1) this.counts.delete(k);
    else this.counts.set(k, n - 1);
    return n <= 1;
  }
}

function setDefOf(r: LayoutRenderer, name: string, svc: ServiceObjects | undefined): SetDef {
  const d = r.sets.get(name as never) ?? svc?.ownSets.find((x) => x.name === name);
  if (!d) throw new Error(`nftables layout: no set ${name}`);
  return d;
}

/**
 * The whole state in one batch, converging from `existing` (the names the kernel
 * holds; null: no table). Every existing chain is flushed and refilled, the shared
 * sets flushed and refilled, affinity sets whose parameters are unchanged kept with
 * their entries, and what is no longer wanted deleted. With `replace`, the table is
 * deleted and made again in the same batch instead (for a table this cannot converge).
 * One pass over the services, each rendered once and written into the segment of
 * the batch its objects belong to; without kept operations its objects are
 * garbage as soon as they are encoded, so a sync of 10k services never holds
 * them all.
 */
export function planFull(r: LayoutRenderer, ids: ServiceIds, shared: SharedElements, state: ProxyState, existing: TableNames | null, opts: { replace?: boolean; keepOperations?: boolean } = {}): Transaction {
  const fam = r.family;
  const tx = new Transaction({ keepOperations: opts.keepOperations });
  const have = opts.replace ? null : existing;
  if (opts.replace) tx.addTable({ family: fam, name: TABLE }).deleteTable(fam, TABLE);
  tx.addTable({ family: fam, name: TABLE, comment: 'podwire service proxy' });
  // In batch order: with every rule gone, nothing refers to a set or chain but the
  // maps' elements; rules before elements, as binding a rule to a map walks its elements.
  const converge = tx.segment();
  const sets = tx.segment();
  const chains = tx.segment();
  const rules = tx.segment();
  const els = new ElementsBySet(tx.segment());

  const base = r.baseChains();
  const wantSets = new Map<string, SetDef>();
  for (const s of r.sets.values()) wantSets.set(s.name, s);
  const wantChains = new Set<string>();
  for (const { chain } of base) {
    wantChains.add(chain.name);
    chains.addChain(chain);
  }
  for (const { rules: list } of base) for (const rule of list) rules.addRule(rule);
  for (const [name, list] of r.fixedElements()) els.add(setDefOf(r, name, undefined), list);
  shared.clear();
  for (const [name, v] of state.services) {
    const svc = r.service(v, ids.get(name));
    for (const s of svc.ownSets) wantSets.set(s.name, s);
    for (const { chain } of svc.chains) {
      wantChains.add(chain.name);
      chains.addChain(chain);
    }
    for (const { rules: list } of svc.chains) for (const rule of list) rules.addRule(rule);
    for (const [set, list] of svc.elements) els.add(setDefOf(r, set, svc), SharedElements.has(set) ? list.filter((e) => shared.hold(set, e)) : list);
  }
  els.end();

  if (have) {
    for (const c of have.chains) converge.flushChain(fam, TABLE, c);
    for (const [name, params] of have.sets) {
      const want = wantSets.get(name);
      if (!want || !sameParams(params, paramsOf(want))) converge.deleteSet(fam, TABLE, name);
      else if (!want.dynamic) converge.flushSet(want); // dynamic sets hold the packet path's entries (affinity): kept
    }
  }
  for (const s of wantSets.values()) sets.addSet(s);
  // Stale sets before stale chains: a stale verdict map's elements refer to stale chains.
  if (have) for (const c of have.chains) if (!wantChains.has(c)) tx.deleteChain(fam, TABLE, c);
  return tx;
}

/**
 * Only the changed services: their elements' deltas in the shared sets, their
 * chains flushed and refilled only when their rules differ (a one-endpoint change
 * that keeps the endpoint count rewrites two map elements and nothing else), new
 * and stale chains and sets. `committed` holds the views of the last sync.
 */
export function planDelta(r: LayoutRenderer, ids: ServiceIds, shared: SharedElements, committed: ReadonlyMap<string, ServiceView>, state: ProxyState, changed: ReadonlySet<string>): Transaction {
  const fam = r.family;
  const tx = new Transaction();
  const dels: Array<[SetDef, Element[]]> = [];
  const adds: Array<[SetDef, Element[]]> = [];
  const staleChains: string[] = [];
  const staleSets: string[] = [];
  for (const name of changed) {
    const was = committed.get(name);
    const now = state.services.get(name);
    if (!was && !now) continue;
    const id = ids.get(name);
    const before = was ? r.service(was, id) : undefined;
    const after = now ? r.service(now, id) : undefined;
    const beforeSets = new Map((before?.ownSets ?? []).map((s) => [s.name, s]));
    const afterSets = new Map((after?.ownSets ?? []).map((s) => [s.name, s]));
    // A set whose parameters changed (affinity timeout) is made again, after the rules that use it are gone.
    const remade = new Set([...afterSets.values()].filter((s) => beforeSets.has(s.name) && !sameParams(paramsOf(beforeSets.get(s.name)!), paramsOf(s))).map((s) => s.name));
    const beforeChains = new Map((before?.chains ?? []).map((c) => [c.chain.name, c.rules]));
    const afterChains = new Set((after?.chains ?? []).map((c) => c.chain.name));
    const refill = new Set<string>();
    for (const c of after?.chains ?? []) {
      const old = beforeChains.get(c.chain.name);
      if (old && (remade.size > 0 || !sameRules(old, c.rules))) refill.add(c.chain.name);
    }
    for (const c of refill) tx.flushChain(fam, TABLE, c);
    for (const c of beforeChains.keys()) {
      if (afterChains.has(c)) continue;
      tx.flushChain(fam, TABLE, c); // its rules' references go before elements and sets change
      staleChains.push(c);
    }
    for (const s of remade) tx.deleteSet(fam, TABLE, s);
    for (const s of afterSets.values()) if (!beforeSets.has(s.name) || remade.has(s.name)) tx.addSet(s);
    for (const s of beforeSets.keys()) if (!afterSets.has(s)) staleSets.push(s);
    for (const c of after?.chains ?? []) if (!beforeChains.has(c.chain.name)) tx.addChain(c.chain);
    for (const c of after?.chains ?? []) {
      if (beforeChains.has(c.chain.name) && !refill.has(c.chain.name)) continue;
      for (const rule of c.rules) tx.addRule(rule);
    }
    const setNames = new Set([...(before?.elements.keys() ?? []), ...(after?.elements.keys() ?? [])]);
    for (const s of setNames) {
      if (beforeSets.has(s) && !afterSets.has(s)) continue; // deleted with its elements
      const b = remade.has(s) ? [] : (before?.elements.get(s) ?? []);
      const a = after?.elements.get(s) ?? [];
      const aByKey = new Map(a.map((e) => [elKey(e), e]));
      const bByKey = new Map(b.map((e) => [elKey(e), e]));
      let gone = b.filter((e) => !aByKey.has(elKey(e)) || !sameData(e, aByKey.get(elKey(e))!));
      let come = a.filter((e) => !bByKey.has(elKey(e)) || !sameData(e, bByKey.get(elKey(e))!));
      if (SharedElements.has(s)) {
        gone = gone.filter((e) => shared.release(s, e));
        come = come.filter((e) => shared.hold(s, e));
      }
      if (gone.length > 0) dels.push([setDefOf(r, s, before), gone]);
      if (come.length > 0) adds.push([setDefOf(r, s, after), come]);
    }
  }
  for (const [s, els] of dels) tx.deleteElements(s, els);
  for (const [s, els] of adds) tx.addElements(s, els);
  // Stale sets before stale chains: a stale verdict map's elements refer to stale chains.
  for (const s of staleSets) tx.deleteSet(fam, TABLE, s);
  for (const c of staleChains) tx.deleteChain(fam, TABLE, c);
  return tx;
}
