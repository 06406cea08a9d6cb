// NftablesProxier: plans each sync as one Transaction (plan.ts) and commits it
// through its transport as one atomic batch. It keeps no rendered objects:
// only the service views of its last sync (the core's immutable objects),
// which it re-renders for the services that change. A full sync converges
// the table in place (affinity entries survive it); a refused batch leaves
// the previous rules in place and makes the next sync full.
import { NftConnection, Transaction } from '../../netlink/nftables/index.js';
import type { ProxyBackend, ProxyConfig, ServiceView, SyncRequest, SyncResult } from '../model.js';
import { LayoutRenderer, ServiceIds, TABLE } from './layout.js';
import { planDelta, planFull, SharedElements } from './plan.js';
import { readTableNames, type TableNames } from './readback.js';
import { createTransport, type NftTransport, type TransportKind } from './transport.js';

export interface NftablesOptions {
  netnsPath?: string;
  /** netlink (default): one nf_tables batch; nft: the same transaction as `nft -f -` text (transport.ts). */
  transport?: TransportKind | NftTransport;
}

export class NftablesProxier implements ProxyBackend {
  readonly mode = 'nftables' as const;
  readonly family;
  private readonly render: LayoutRenderer;
  private readonly ids = new ServiceIds();
  private readonly shared = new SharedElements();
  /** The views the kernel holds, by service port name (null: unknown, the next sync is full). */
  private committed: Map<string, ServiceView> | null = null;
  private readonly transport: NftTransport;

  constructor(
    private readonly config: ProxyConfig,
    private readonly opts: NftablesOptions = {},
  ) {
    this.family = config.family;
    this.render = new LayoutRenderer(config);
    this.transport = createTransport(opts.transport, opts.netnsPath);
  }

  async sync(req: SyncRequest): Promise<SyncResult> {
    const committed = this.committed;
    const full = req.changed === null || committed === null;
    const existing = full ? this.readBack() : null;
    // Only the text transports read the typed objects back; netlink needs just the encoding.
    const keepOperations = this.transport.kind !== 'netlink';
    let tx = full
      ? planFull(this.render, this.ids, this.shared, req.state, existing, { keepOperations })
      : planDelta(this.render, this.ids, this.shared, committed!, req.state, req.changed!);
    this.committed = null; // until the kernel took it: a failure makes the next sync full
    try {
      await this.commit(tx);
    } catch (e) {
      if (!existing) throw e;
      // A table this layout cannot converge (e.g. a base chain of another priority
      // left by another version): replace it, in one batch again.
      tx = planFull(this.render, this.ids, this.shared, req.state, null, { replace: true, keepOperations });
      await this.commit(tx);
    }
    if (full) {
      this.committed = new Map(req.state.services);
      this.ids.retain(req.state.services.keys());
    } else {
      for (const name of req.changed!) {
        const v = req.state.services.get(name);
        if (v) committed!.set(name, v);
        else {
          committed!.delete(name);
          this.ids.forget(name);
        }
      }
      this.committed = committed;
    }
    return { full, counts: { services: req.state.services.size, messages: tx.size } };
  }

  async cleanup(): Promise<void> {
    const fam = this.config.family === 4 ? 'ip' : 'ip6';
    await this.transport.commit(new Transaction().addTable({ family: fam, name: TABLE }).deleteTable(fam, TABLE));
    this.committed = null;
    this.transport.close?.();
  }

  private async commit(tx: Transaction): Promise<void> {
    await this.transport.commit(tx);
  }

  /** The names the kernel holds in podwire's table (one dump of chains, one of sets); a dry run reads nothing. */
  private readBack(): TableNames | null {
    if (this.transport.kind === 'record') return null;
    const c = NftConnection.open(this.opts.netnsPath);
    try {
      return readTableNames(c, this.render.family, TABLE);
    } finally {
      c.close();
    }
  }
}
