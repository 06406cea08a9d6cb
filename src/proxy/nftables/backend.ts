// NftablesProxier: renders the layout, diffs it against the model committed
// last (held in memory, the kernel is never read back) and commits the delta
// as one netlink batch. A full sync replaces the table in the same batch, so
// a refused batch leaves the previous rules in place.
import { NftConnection, Transaction, type Element } from '../../netlink/nftables/index.js';
import type { ProxyBackend, ProxyConfig, SyncRequest, SyncResult } from '../model.js';
import { buildLayout, ServiceIds, TABLE, type Layout, type ServiceObjects, type SetName } from './layout.js';

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
    const layout = buildLayout(this.config, req.state, this.ids);
    const full = req.changed === null || this.committed === null;
    const tx = full ? this.fullTransaction(layout) : this.deltaTransaction(this.committed!, layout, req.changed!);
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
    // Service chains first: the dispatch maps' goto elements need them.
    for (const svc of l.services.values()) addServiceChains(tx, svc);
    for (const { chain } of l.chains) tx.addChain(chain);
    const perSet = new Map<SetName, Element[]>();
    const collect = (m: ReadonlyMap<SetName, Element[]>) => {
      for (const [s, els] of m) perSet.set(s, [...(perSet.get(s) ?? []), ...els]);
    };
    collect(l.fixedElements);
    for (const svc of l.services.values()) collect(svc.elements);
    for (const [s, els] of perSet) tx.addElements(l.sets.get(s)!, els);
    for (const { rules } of l.chains) for (const r of rules) tx.addRule(r);
    return tx;
  }

  /** Only the changed services: element deltas, chain flush/refill, stale chains deleted after their references. */
  private deltaTransaction(old: Layout, now: Layout, changed: ReadonlySet<string>): Transaction {
    const tx = new Transaction();
    const dels: Array<[SetName, Element[]]> = [];
    const adds: Array<[SetName, Element[]]> = [];
    const staleChains: string[] = [];
    for (const name of changed) {
      const before = old.services.get(name);
      const after = now.services.get(name);
      const sets = new Set<SetName>([...(before?.elements.keys() ?? []), ...(after?.elements.keys() ?? [])]);
      for (const s of sets) {
        const b = before?.elements.get(s) ?? [];
        const a = after?.elements.get(s) ?? [];
        const aByKey = new Map(a.map((e) => [elKey(e), e]));
        const bByKey = new Map(b.map((e) => [elKey(e), e]));
        dels.push([s, b.filter((e) => !aByKey.has(elKey(e)) || !elSame(e, aByKey.get(elKey(e))!))]);
        adds.push([s, a.filter((e) => !bByKey.has(elKey(e)) || !elSame(e, bByKey.get(elKey(e))!))]);
      }
      const afterChains = new Set(after?.chains.map((c) => c.chain.name) ?? []);
      for (const c of before?.chains ?? []) if (!afterChains.has(c.chain.name)) staleChains.push(c.chain.name);
      if (after) {
        const beforeChains = new Set(before?.chains.map((c) => c.chain.name) ?? []);
        for (const c of after.chains) {
          if (beforeChains.has(c.chain.name)) tx.flushChain(now.family, TABLE, c.chain.name);
          else tx.addChain(c.chain);
          for (const r of c.rules) tx.addRule(r);
        }
      }
    }
    for (const [s, els] of dels) tx.deleteElements(now.sets.get(s)!, els);
    for (const [s, els] of adds) tx.addElements(now.sets.get(s)!, els);
    for (const c of staleChains) tx.deleteChain(now.family, TABLE, c);
    return tx;
  }
}

function addServiceChains(tx: Transaction, svc: ServiceObjects): void {
  for (const { chain, rules } of svc.chains) {
    tx.addChain(chain);
    for (const r of rules) tx.addRule(r);
  }
}
