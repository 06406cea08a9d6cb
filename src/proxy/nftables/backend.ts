// NftablesProxier: renders the layout, diffs it against the model committed
// last (held in memory, the kernel is never read back) and commits the delta
// as one netlink batch. A full sync replaces the table in the same batch, so
// a refused batch leaves the previous rules in place.
import { NftConnection, Transaction, type Element } from '../../netlink/nftables/index.js';
import type { ProxyBackend, ProxyConfig, SyncRequest, SyncResult } from '../model.js';
import type { SetDef } from '../../netlink/nftables/index.js';
import { buildLayout, ServiceIds, TABLE, type Layout, type ServiceObjects } from './layout.js';

export interface NftablesOptions {
  netnsPath?: string;
}

const elKey = (e: Element) => e.key.toString('hex');
const elSame = (a: Element, b: Element) => JSON.stringify(a.data ?? null) === JSON.stringify(b.data ?? null);

export class NftablesProxier implements ProxyBackend {
  readonly mode = 'nftables' as const;
  readonly family;
  private readonly ids = new ServiceIds();
  private committed: Layout | null = null;

  constructor(
    private readonly config: ProxyConfig,
    private readonly opts: NftablesOptions = {},
  ) {
    this.family = config.family;
  }

  async sync(req: SyncRequest): Promise<SyncResult> {
    const prev = this.committed;
    const layout = buildLayout(this.config, req.state, this.ids, prev && req.changed ? { from: prev, changed: req.changed } : undefined);
    let tx: Transaction;
    let full = req.changed === null || this.committed === null;
    try {
      tx = full ? this.fullTransaction(layout) : this.deltaTransaction(this.committed!, layout, req.changed!);
    } catch (e) {
      if (!(e instanceof ChangedSetError)) throw e;
      full = true; // a set's own parameters changed (affinity timeout): only a rewrite can change them
      tx = this.fullTransaction(layout);
    }
    this.committed = null; // until the kernel took it: a failure makes the next sync full
    this.withConnection((c) => c.commit(tx));
    this.committed = layout;
    this.ids.retain(req.state.services.keys());
    return { full, counts: { services: layout.services.size, messages: tx.size } };
  }

  async cleanup(): Promise<void> {
    const fam = this.config.family === 4 ? 'ip' : 'ip6';
    this.withConnection((c) => c.commit(new Transaction().addTable({ family: fam, name: TABLE }).deleteTable(fam, TABLE)));
    this.committed = null;
  }

  private withConnection(f: (c: NftConnection) => void): void {
    const c = NftConnection.open(this.opts.netnsPath);
    try {
      f(c);
    } finally {
      c.close();
    }
  }

  private fullTransaction(l: Layout): Transaction {
    const tx = new Transaction();
    // add+delete: works whether or not the table exists, all in the one batch.
    tx.addTable({ family: l.family, name: TABLE }).deleteTable(l.family, TABLE);
    tx.addTable({ family: l.family, name: TABLE, comment: 'podwire service proxy' });
    for (const s of l.sets.values()) tx.addSet(s);
    // Service sets and chains first: the dispatch maps' goto elements need them.
    for (const svc of l.services.values()) for (const s of svc.ownSets) tx.addSet(s);
    for (const { chain } of l.chains) tx.addChain(chain);
    for (const svc of l.services.values()) addServiceChains(tx, svc);
    // Rules before elements: binding a rule to a map walks the map's elements, so
    // with the elements already in, 10k rules x 100k endpoints went quadratic (24 s).
    for (const { rules } of l.chains) for (const r of rules) tx.addRule(r);
    const perSet = new Map<string, { def: SetDef; els: Element[] }>();
    const collect = (m: ReadonlyMap<string, Element[]>, svc?: ServiceObjects) => {
      for (const [s, els] of m) {
        const entry = perSet.get(s) ?? { def: setDef(l, s, svc), els: [] };
        entry.els.push(...els);
        perSet.set(s, entry);
      }
    };
    collect(l.fixedElements);
    for (const svc of l.services.values()) collect(svc.elements, svc);
    for (const { def, els } of perSet.values()) tx.addElements(def, els);
    return tx;
  }

  /** Only the changed services: element deltas, chain flush/refill, stale chains deleted after their references. */
  private deltaTransaction(old: Layout, now: Layout, changed: ReadonlySet<string>): Transaction {
    const tx = new Transaction();
    const dels: Array<[SetDef, Element[]]> = [];
    const adds: Array<[SetDef, Element[]]> = [];
    const staleChains: string[] = [];
    const staleSets: string[] = [];
    for (const name of changed) {
      const before = old.services.get(name);
      const after = now.services.get(name);
      const sets = new Set<string>([...(before?.elements.keys() ?? []), ...(after?.elements.keys() ?? [])]);
      for (const s of sets) {
        const b = before?.elements.get(s) ?? [];
        const a = after?.elements.get(s) ?? [];
        const aByKey = new Map(a.map((e) => [elKey(e), e]));
        const bByKey = new Map(b.map((e) => [elKey(e), e]));
        const gone = !after?.ownSets.some((x) => x.name === s) && before?.ownSets.some((x) => x.name === s);
        if (gone) continue; // the set is deleted with its elements
        dels.push([setDef(old, s, before), b.filter((e) => !aByKey.has(elKey(e)) || !elSame(e, aByKey.get(elKey(e))!))]);
        adds.push([setDef(now, s, after), a.filter((e) => !bByKey.has(elKey(e)) || !elSame(e, bByKey.get(elKey(e))!))]);
      }
      const afterChains = new Set(after?.chains.map((c) => c.chain.name) ?? []);
      for (const c of before?.chains ?? []) if (!afterChains.has(c.chain.name)) staleChains.push(c.chain.name);
      const afterSets = new Set(after?.ownSets.map((x) => x.name) ?? []);
      for (const x of before?.ownSets ?? []) if (!afterSets.has(x.name)) staleSets.push(x.name);
      const beforeSets = new Map(before?.ownSets.map((x) => [x.name, x]) ?? []);
      if (after) {
        const beforeChains = new Set(before?.chains.map((c) => c.chain.name) ?? []);
        // Rules go first, so a service's own sets (affinity: slots change meaning when
        // endpoints change) can be deleted and made again before the rules come back.
        for (const c of before?.chains ?? []) tx.flushChain(now.family, TABLE, c.chain.name);
        for (const x of after.ownSets) {
          const was = beforeSets.get(x.name);
          if (was && was.timeoutMs !== x.timeoutMs) throw new ChangedSetError(x.name);
          if (!was) tx.addSet(x);
        }
        for (const c of after.chains) if (!beforeChains.has(c.chain.name)) tx.addChain(c.chain);
        for (const c of after.chains) for (const r of c.rules) tx.addRule(r);
      }
    }
    for (const [s, els] of dels) tx.deleteElements(s, els);
    for (const [s, els] of adds) tx.addElements(s, els);
    for (const c of staleChains) tx.deleteChain(now.family, TABLE, c);
    for (const x of staleSets) tx.deleteSet(now.family, TABLE, x);
    return tx;
  }
}

function setDef(l: Layout, name: string, svc: ServiceObjects | undefined): SetDef {
  const d = l.sets.get(name as never) ?? svc?.ownSets.find((x) => x.name === name);
  if (!d) throw new Error(`nftables layout: no set ${name}`);
  return d;
}

class ChangedSetError extends Error {
  constructor(set: string) {
    super(`set ${set} changed its parameters`);
  }
}

function addServiceChains(tx: Transaction, svc: ServiceObjects): void {
  for (const { chain } of svc.chains) tx.addChain(chain);
  for (const { rules } of svc.chains) for (const r of rules) tx.addRule(r);
}
