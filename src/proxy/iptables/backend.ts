// The iptables ProxyBackend: one iptables-restore --noflush per sync. A full
// sync reads the tables back once (stale chains, missing jumps) and rewrites
// every chain. A partial sync writes only what the changed services changed:
// their own chains whole, and -D/-I/-A of their lines in the shared chains
// (KUBE-SERVICES, KUBE-NODEPORTS, the filter chains), so its cost does not grow
// with the number of services podwire writes (the kernel side still may).
import { writeFileSync } from 'node:fs';
import { metrics } from '../metrics.js';
import type { ProxyBackend, ProxyConfig, ServiceView, SyncRequest, SyncResult } from '../model.js';
import { native } from '../../netlink/native.js';
import { detectFlavour, iptablesTool, type Flavour, type IptablesTool } from './exec.js';
import { isPerServiceChain } from './names.js';
import { CANARY_CHAIN, FILTER_CHAINS, IptablesRenderer, NAT_CHAINS, OFF_CLUSTER_CHAIN, type FixedRules, type ServiceRules } from './render.js';
import { iptablesTemplates } from './templates.js';

export interface IptablesBackendOptions {
  /** Program the namespace at this path instead of the process's own. */
  netnsPath?: string;
  /** Skip detection (benchmarks compare both). */
  flavour?: Flavour;
  /** Run restores through this instead of the iptables programs (unit tests record the text). */
  tool?: IptablesTool;
  /** nft flavour: write the own chains of at most this many services per restore (default 200; 0: one restore). */
  nftBatchServices?: number;
}

/** What the kernel holds for one service since the last successful sync: what a partial sync needs, compact. */
interface Committed {
  /** Its own nat chains, space-separated. */
  readonly chains: string;
  readonly chainCount: number;
  /** Its lines in the shared nat / filter chains, as rendered ('-A …\n' each). */
  readonly natEntries: string;
  readonly filterEntries: string;
  /** Rules it holds in nat (own chains + entries) and filter, for the iptables_total metric. */
  readonly natRules: number;
  readonly filterRules: number;
}

function committed(r: ServiceRules): Committed {
  return {
    chains: r.chains.join(' '),
    chainCount: r.chains.length,
    natEntries: r.natEntries,
    filterEntries: r.filterEntries,
    natRules: r.ownLines + r.natEntryLines,
    filterRules: r.filterEntryLines,
  };
}

interface Jump {
  table: 'nat' | 'filter';
  chain: string;
  rest: string;
  comment: string;
  target: string;
}

let jumpCache: Jump[] | null = null;

/** The jumps from built-in chains, from the [jump.*] template sections. */
function jumps(): Jump[] {
  if (jumpCache) return jumpCache;
  const out: Jump[] = [];
  for (const table of ['nat', 'filter'] as const) {
    const lines: string[] = [];
    iptablesTemplates().render(`jump.${table}`, {}, lines);
    for (const l of lines) {
      const m = /^-A (\S+) (.*)$/.exec(l)!;
      out.push({ table, chain: m[1]!, rest: m[2]!, comment: /--comment "([^"]*)"/.exec(l)?.[1] ?? '', target: /-j (\S+)$/.exec(l)?.[1] ?? '' });
    }
  }
  jumpCache = out;
  return out;
}

/** What a full sync needs of one table: the chains it declares, and the rules of chains podwire does not own (its jumps). */
interface TableHave {
  chains: Set<string>;
  rules: string[];
}

/**
 * Reads one table back a line at a time: at 10k services the nat table is ~40 MB of iptables-save text,
 * of which only the chain names and the few rules of other chains are kept.
 */
async function readTable(tool: IptablesTool, table: 'nat' | 'filter' | 'mangle'): Promise<TableHave> {
  const have: TableHave = { chains: new Set(), rules: [] };
  let inside = false;
  await tool.saveLines(table, (line) => {
    const c = line.charCodeAt(0);
    if (c === 42 /* '*' */) inside = line.slice(1) === table;
    else if (!inside) return;
    else if (c === 58 /* ':' */) {
      const space = line.indexOf(' ');
      have.chains.add(line.slice(1, space > 0 ? space : line.length));
    } else if (line.startsWith('-A ')) {
      const space = line.indexOf(' ', 3);
      if (!ownsChain(line.slice(3, space > 0 ? space : line.length))) have.rules.push(line);
    }
  });
  return have;
}

function hasJump(rules: readonly string[], j: Jump): boolean {
  return rules.some((r) => r.startsWith(`-A ${j.chain} `) && r.includes(`"${j.comment}"`) && r.endsWith(`-j ${j.target}`));
}

const declare = (chain: string) => `:${chain} - [0:0]\n`;

/** Passes chunks through, adding the time spent producing them (rendering) to acc.ms. */
function* timed(chunks: Iterable<string>, acc: { ms: number }): Generator<string> {
  const it = chunks[Symbol.iterator]();
  for (;;) {
    const t0 = performance.now();
    const r = it.next();
    acc.ms += performance.now() - t0;
    if (r.done) return;
    if (r.value !== '') yield r.value;
  }
}

/**
 * The restore lines turning one service's shared-chain lines from `before` into `after`: -D for lines it lost,
 * -I KUBE-SERVICES 1 (the node-port jump stays last) or -A for lines it gained; unchanged lines stay (and keep
 * their counters). Service lines match disjoint destinations, so their order does not matter.
 */
function entryDelta(before: string, after: string, out: string[], table: 'nat' | 'filter'): number {
  if (before === after) return 0;
  const old = before === '' ? [] : before.slice(0, -1).split('\n');
  const now = after === '' ? [] : after.slice(0, -1).split('\n');
  const keep = new Set(now);
  const had = new Set(old);
  let n = 0;
  for (const l of old)
    if (!keep.has(l)) {
      out.push(`-D${l.slice(2)}\n`);
      n++;
    }
  for (const l of now)
    if (!had.has(l)) {
      out.push(table === 'nat' && l.startsWith('-A KUBE-SERVICES ') ? `-I KUBE-SERVICES 1${l.slice(16)}\n` : `${l}\n`);
      n++;
    }
  return n;
}

/** Where the last sync's time went (ms), for logs and the benchmark. */
export interface SyncTimings {
  /** podwire's own work: rendering and assembling the restore text. */
  renderMs: number;
  /** Full syncs: reading nat and filter back. */
  readbackMs: number;
  /** iptables-restore runs (all batches). */
  restoreMs: number;
  /** A partial sync that failed (e.g. the canary was gone) before this full one; 0 otherwise. */
  failedPartialMs: number;
}

export class IptablesBackend implements ProxyBackend {
  lastTimings: SyncTimings = { renderMs: 0, readbackMs: 0, restoreMs: 0, failedPartialMs: 0 };
  /** Why the last partial sync that fell back to a full one failed (for logs and tests). */
  lastPartialFailure = '';
  readonly mode = 'iptables' as const;
  readonly family;
  private tool: IptablesTool | null = null;
  private readonly renderer: IptablesRenderer;
  private fixedRules: FixedRules | null = null;
  /** Per service port, what the kernel holds for it (valid while `known`). */
  private committed = new Map<string, Committed>();
  /** false after a failure or before the first sync: the kernel's state is unknown. */
  private known = false;

  constructor(
    private readonly config: ProxyConfig,
    private readonly opts: IptablesBackendOptions = {},
  ) {
    this.family = config.family;
    this.renderer = new IptablesRenderer(config);
  }

  private async iptables(): Promise<IptablesTool> {
    this.tool ??= this.opts.tool ?? iptablesTool(this.opts.flavour ?? (await detectFlavour(this.family, this.opts.netnsPath)), this.family, this.opts.netnsPath);
    return this.tool;
  }

  /** The flavour in use (detected on first use). */
  async flavour(): Promise<Flavour> {
    return (await this.iptables()).flavour;
  }

  private fixed(): FixedRules {
    this.fixedRules ??= this.renderer.fixed();
    return this.fixedRules;
  }

  async sync(req: SyncRequest): Promise<SyncResult> {
    const tool = await this.iptables();
    if (this.renderer.localhostNodePorts()) this.enableRouteLocalnet();
    const services = req.state.services;
    if (req.changed !== null && this.known) {
      const t0 = performance.now();
      try {
        return await this.partialSync(tool, services, req.changed);
      } catch (err) {
        // The kernel no longer holds what we wrote (canary gone, a rule deleted by hand) or the restore
        // failed: rewrite everything now rather than leave the change unapplied until the next sync.
        metrics.iptablesPartialRestoreFailuresTotal.inc();
        this.lastPartialFailure = (err as Error).message;
        this.known = false;
        const failedMs = performance.now() - t0;
        const res = await this.fullSync(tool, services);
        this.lastTimings.failedPartialMs = failedMs;
        return res;
      }
    }
    return this.fullSync(tool, services);
  }

  private async restore(tool: IptablesTool, text: Iterable<string>): Promise<void> {
    try {
      await tool.restore(text);
    } catch (err) {
      this.known = false;
      metrics.iptablesRestoreFailuresTotal.inc();
      throw err;
    }
  }

  private async fullSync(tool: IptablesTool, services: ReadonlyMap<string, ServiceView>): Promise<SyncResult> {
    const tm: SyncTimings = { renderMs: 0, readbackMs: 0, restoreMs: 0, failedPartialMs: 0 };
    this.lastTimings = tm;
    this.known = false;
    // Read back once: chains left by an earlier run, and jumps already in place.
    let t0 = performance.now();
    const natHave = await readTable(tool, 'nat');
    const filterHave = await readTable(tool, 'filter');
    tm.readbackMs = performance.now() - t0;

    t0 = performance.now();
    const renderer = this.renderer;
    const fixed = this.fixed();
    // Sorted so two syncs of the same state write the same text.
    const names = [...services.keys()].sort();
    const next = new Map<string, Committed>();
    // Per-service chains the kernel has that no service has claimed yet: what is left at the end is stale.
    const leftover = new Set([...natHave.chains].filter(isPerServiceChain));
    const natJumps: string[] = [];
    const filterJumps: string[] = [];
    for (const j of [...jumps()].reverse()) {
      const have = j.table === 'nat' ? natHave.rules : filterHave.rules;
      if (!hasJump(have, j)) (j.table === 'nat' ? natJumps : filterJumps).push(`-I ${j.chain} 1 ${j.rest}\n`);
    }
    const count = { lines: 0, natRules: fixed.natLines, filterRules: fixed.filterLines };
    const render = { ms: performance.now() - t0 };

    // Services are rendered while the restore reads them: their own chains (declared, then filled) go out
    // at once; their lines in the shared chains are kept (they are what later partial syncs diff against).
    function* ownChains(from: number, to: number): Generator<string> {
      for (let i = from; i < to; i++) {
        const name = names[i]!;
        const r = renderer.service(services.get(name)!);
        const c = committed(r);
        next.set(name, c);
        count.natRules += c.natRules;
        count.filterRules += c.filterRules;
        count.lines += r.chains.length + r.ownLines + r.natEntryLines + r.filterEntryLines;
        let decl = '';
        for (const ch of r.chains) {
          leftover.delete(ch);
          decl += declare(ch);
        }
        yield decl;
        yield r.own;
      }
    }

    // iptables-nft-restore --noflush costs grow much faster than linearly with the chains of one
    // transaction (1k services 3.3 s, 2k 23 s here), so big syncs on nft write the services' own chains
    // in batches first; the last restore switches KUBE-SERVICES over and deletes what is stale. Each
    // service's chains change within one transaction, and nothing jumps to a new chain before it is filled.
    const batchSize = this.opts.nftBatchServices ?? 200;
    const batched = tool.flavour === 'nft' && batchSize > 0 && services.size > batchSize;
    // Batches jump to fixed chains (KUBE-MARK-MASQ) the kernel may not have yet.
    const batchHead = '*nat\n' + fixed.natChains.filter((ch) => !natHave.chains.has(ch)).map(declare).join('');
    function* batch(from: number, to: number): Generator<string> {
      yield batchHead;
      yield* ownChains(from, to);
      yield 'COMMIT\n';
    }
    function* last(): Generator<string> {
      const natDecl = [...fixed.natChains, CANARY_CHAIN].map(declare);
      yield '*nat\n';
      yield* natDecl;
      yield* natJumps;
      yield fixed.nat;
      if (!batched) yield* ownChains(0, names.length);
      for (const name of names) yield next.get(name)!.natEntries;
      yield fixed.natTail;
      // Stale: per-service chains the kernel has and no service wants (all flushed before any is deleted).
      const stale = [...leftover];
      for (const ch of stale) yield declare(ch);
      for (const ch of stale) yield `-X ${ch}\n`;
      yield 'COMMIT\n';
      const filterDecl = [...FILTER_CHAINS, CANARY_CHAIN].map(declare);
      yield '*filter\n';
      yield* filterDecl;
      yield* filterJumps;
      yield fixed.filter;
      for (const name of names) yield next.get(name)!.filterEntries;
      yield 'COMMIT\n';
      yield `*mangle\n${declare(CANARY_CHAIN)}COMMIT\n`;
      count.lines += 2 + natDecl.length + natJumps.length + fixed.natLines + stale.length * 2 + 2 + filterDecl.length + filterJumps.length + fixed.filterLines + 3;
    }

    t0 = performance.now();
    const renderedBefore = render.ms;
    if (batched) for (let from = 0; from < names.length; from += batchSize) await this.restore(tool, timed(batch(from, Math.min(from + batchSize, names.length)), render));
    await this.restore(tool, timed(last(), render));
    tm.renderMs = render.ms;
    // What podwire waited for: the restores' time minus the rendering they pulled from us meanwhile.
    tm.restoreMs = performance.now() - t0 - (render.ms - renderedBefore);
    this.committed = next;
    this.known = true;
    return this.result(true, count.natRules, count.filterRules, count.lines);
  }

  private async partialSync(tool: IptablesTool, services: ReadonlyMap<string, ServiceView>, changed: ReadonlySet<string>): Promise<SyncResult> {
    const tm: SyncTimings = { renderMs: 0, readbackMs: 0, restoreMs: 0, failedPartialMs: 0 };
    this.lastTimings = tm;
    let t0 = performance.now();
    const batchSize = this.opts.nftBatchServices ?? 200;
    const batched = tool.flavour === 'nft' && batchSize > 0 && changed.size > batchSize;
    const updates = new Map<string, Committed | null>();
    const natDecl: string[] = [];
    const own: string[] = [];
    const natDelta: string[] = [];
    const filterDelta: string[] = [];
    const stale: string[] = [];
    const batches: string[][] = [];
    let batch: string[] = ['*nat\n'];
    let inBatch = 0;
    let lines = 0;

    for (const name of [...changed].sort()) {
      const before = this.committed.get(name);
      const v = services.get(name);
      const r = v ? this.renderer.service(v) : null;
      const after = r ? committed(r) : null;
      if (!before && !after) continue;
      updates.set(name, after);
      lines += entryDelta(before?.natEntries ?? '', after?.natEntries ?? '', natDelta, 'nat');
      lines += entryDelta(before?.filterEntries ?? '', after?.filterEntries ?? '', filterDelta, 'filter');
      if (before?.chains) {
        const keep = new Set(r?.chains ?? []);
        for (const ch of before.chains.split(' ')) if (!keep.has(ch)) stale.push(ch);
      }
      if (!r || r.chains.length === 0) continue;
      const decl = r.chains.map(declare).join('');
      lines += r.chains.length + r.ownLines;
      if (batched) {
        batch.push(decl, r.own);
        if (++inBatch === batchSize) {
          batches.push([...batch, 'COMMIT\n']);
          batch = ['*nat\n'];
          inBatch = 0;
        }
      } else {
        natDecl.push(decl);
        own.push(r.own);
      }
    }
    if (inBatch > 0) batches.push([...batch, 'COMMIT\n']);
    // -F on the canary fails the whole restore when someone flushed a table: then sync() rewrites everything.
    const canary = `-F ${CANARY_CHAIN}\n`;
    const text = [
      '*nat\n', ...natDecl, ...stale.map(declare), ...natDelta, ...own, ...stale.map((ch) => `-X ${ch}\n`), canary, 'COMMIT\n',
      '*filter\n', ...filterDelta, canary, 'COMMIT\n',
      '*mangle\n', canary, 'COMMIT\n',
    ];
    lines += stale.length * 2 + 3 * 3;
    tm.renderMs = performance.now() - t0;

    t0 = performance.now();
    for (const b of batches) await this.restore(tool, b);
    await this.restore(tool, text);
    tm.restoreMs = performance.now() - t0;

    let natRules = this.fixed().natLines;
    let filterRules = this.fixed().filterLines;
    for (const [name, c] of updates) {
      if (c) this.committed.set(name, c);
      else this.committed.delete(name);
    }
    for (const c of this.committed.values()) {
      natRules += c.natRules;
      filterRules += c.filterRules;
    }
    return this.result(false, natRules, filterRules, lines);
  }

  private result(full: boolean, natRules: number, filterRules: number, lines: number): SyncResult {
    let natJumps = 0;
    for (const j of jumps()) if (j.table === 'nat') natJumps++;
    const nat = natRules + natJumps;
    const filter = filterRules + jumps().length - natJumps;
    let natChains = this.fixed().natChains.length;
    for (const c of this.committed.values()) natChains += c.chainCount;
    metrics.iptablesTotal.set({ table: 'nat' }, nat);
    metrics.iptablesTotal.set({ table: 'filter' }, filter);
    return { full, counts: { 'nat rules': nat, 'nat chains': natChains, 'filter rules': filter, 'restore lines': lines } };
  }

  /** Localhost node ports need the kernel to route 127.0.0.0/8 off the loopback (CVE-2020-8558: opt-in only). */
  private enableRouteLocalnet(): void {
    const path = '/proc/sys/net/ipv4/conf/all/route_localnet';
    if (this.opts.netnsPath) native().writeFileInNetns(this.opts.netnsPath, path, '1');
    else writeFileSync(path, '1');
  }

  async cleanup(): Promise<void> {
    // Both flavours: a node may have switched between them.
    const errors: string[] = [];
    for (const flavour of ['nft', 'legacy'] as const) {
      try {
        await cleanupFlavour(iptablesTool(flavour, this.family, this.opts.netnsPath));
      } catch (err) {
        errors.push(`${flavour}: ${(err as Error).message}`);
      }
    }
    this.committed.clear();
    this.known = false;
    if (errors.length === 2) throw new Error(`iptables cleanup failed for both flavours: ${errors.join('; ')}`);
  }
}

const OWN_FIXED = new Set<string>([...NAT_CHAINS, OFF_CLUSTER_CHAIN, ...FILTER_CHAINS, CANARY_CHAIN]);

function ownsChain(name: string): boolean {
  return OWN_FIXED.has(name) || isPerServiceChain(name);
}

/** Deletes every jump to our chains from the built-in chains, then flushes and deletes our chains. */
async function cleanupFlavour(tool: IptablesTool): Promise<void> {
  const parts: string[] = [];
  for (const table of ['nat', 'filter', 'mangle'] as const) {
    const { chains, rules } = await readTable(tool, table);
    const mine = [...chains].filter(ownsChain);
    if (mine.length === 0) continue;
    parts.push(`*${table}`);
    const builtinJumps = rules.filter((r) => {
      const [, chain] = r.split(' ');
      const target = /-j (\S+)/.exec(r)?.[1] ?? '';
      return !ownsChain(chain!) && ownsChain(target);
    });
    for (const c of mine) parts.push(`:${c} - [0:0]`);
    for (const r of builtinJumps) parts.push(`-D${r.slice(2)}`);
    for (const c of mine) parts.push(`-X ${c}`);
    parts.push('COMMIT');
  }
  if (parts.length > 0) await tool.restore(parts.join('\n') + '\n');
}

export function createIptablesBackend(config: ProxyConfig, opts: IptablesBackendOptions = {}): ProxyBackend {
  return new IptablesBackend(config, opts);
}
