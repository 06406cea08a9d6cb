// The iptables ProxyBackend: one iptables-restore --noflush per sync. A full
// sync reads the tables back once (to find stale chains and missing jumps);
// a partial sync writes KUBE-SERVICES/KUBE-NODEPORTS, the filter chains and the
// own chains of the services that changed, and deletes chains they dropped.
import { writeFileSync } from 'node:fs';
import { metrics } from '../metrics.js';
import type { ProxyBackend, ProxyConfig, SyncRequest, SyncResult } from '../model.js';
import { native } from '../../netlink/native.js';
import { detectFlavour, iptablesTool, type Flavour, type IptablesTool } from './exec.js';
import { isPerServiceChain } from './names.js';
import { CANARY_CHAIN, FILTER_CHAINS, IptablesRenderer, NAT_CHAINS } from './render.js';
import { iptablesTemplates } from './templates.js';

export interface IptablesBackendOptions {
  /** Program the namespace at this path instead of the process's own. */
  netnsPath?: string;
  /** Skip detection (benchmarks compare both). */
  flavour?: Flavour;
  /** Run restores through this instead of the iptables programs (unit tests record the text). */
  tool?: IptablesTool;
  /**
   * How often a partial sync first checks the canary chains (ms, default 10 s; kube-proxy checks once a
   * minute). Each check reads the tables back, which the legacy flavour does whole.
   */
  canaryIntervalMs?: number;
  /** nft flavour: write the own chains of at most this many services per restore (default 200; 0: one restore). */
  nftBatchServices?: number;
}

interface Owned {
  chains: string[];
  lines: number;
}

interface Jump {
  table: 'nat' | 'filter';
  chain: string;
  rest: string;
  comment: string;
  target: string;
}

/** The jumps from built-in chains, from the [jump.*] template sections. */
function jumps(): Jump[] {
  const out: Jump[] = [];
  for (const table of ['nat', 'filter'] as const) {
    const lines: string[] = [];
    iptablesTemplates().render(`jump.${table}`, {}, lines);
    for (const l of lines) {
      const m = /^-A (\S+) (.*)$/.exec(l)!;
      out.push({ table, chain: m[1]!, rest: m[2]!, comment: /--comment "([^"]*)"/.exec(l)?.[1] ?? '', target: /-j (\S+)$/.exec(l)?.[1] ?? '' });
    }
  }
  return out;
}

/** Chain names declared in one table of iptables-save output, and that table's rules. */
function parseTable(save: string, table: string): { chains: Set<string>; rules: string[] } {
  const chains = new Set<string>();
  const rules: string[] = [];
  let inside = false;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) inside = line === `*${table}`;
    else if (!inside) continue;
    else if (line.startsWith(':')) chains.add(line.slice(1).split(' ')[0]!);
    else if (line.startsWith('-A ')) rules.push(line);
  }
  return { chains, rules };
}

function hasJump(rules: readonly string[], j: Jump): boolean {
  return rules.some((r) => r.startsWith(`-A ${j.chain} `) && r.includes(`"${j.comment}"`) && r.endsWith(`-j ${j.target}`));
}

/** Where the last sync's time went (ms), for logs and the benchmark. */
export interface SyncTimings {
  canaryMs: number;
  renderMs: number;
  readbackMs: number;
  restoreMs: number;
}

export class IptablesBackend implements ProxyBackend {
  lastTimings: SyncTimings = { canaryMs: 0, renderMs: 0, readbackMs: 0, restoreMs: 0 };
  readonly mode = 'iptables' as const;
  readonly family;
  private tool: IptablesTool | null = null;
  private readonly renderer: IptablesRenderer;
  /** Per service port: the chains it owns in nat and how many rule lines they hold. */
  private owned = new Map<string, Owned>();
  /** false after a failure or before the first sync: the kernel's state is unknown. */
  private known = false;
  private lastCanaryCheck = 0;

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

  /** Someone flushed our tables if a canary chain is gone. */
  private async canaryAlive(tool: IptablesTool): Promise<boolean> {
    const codes = await Promise.all(['mangle', 'nat', 'filter'].map((t) => tool.check(['-t', t, '-S', CANARY_CHAIN])));
    return codes.every((c) => c === 0);
  }

  async sync(req: SyncRequest): Promise<SyncResult> {
    const tool = await this.iptables();
    const tm: SyncTimings = { canaryMs: 0, renderMs: 0, readbackMs: 0, restoreMs: 0 };
    this.lastTimings = tm;
    let t0 = performance.now();
    let full = req.changed === null || !this.known;
    const interval = this.opts.canaryIntervalMs ?? 10_000;
    if (!full && Date.now() - this.lastCanaryCheck >= interval) {
      this.lastCanaryCheck = Date.now();
      if (!(await this.canaryAlive(tool))) full = true;
    }
    tm.canaryMs = performance.now() - t0;
    const rewrite = full ? null : req.changed;
    const services = req.state.services;

    t0 = performance.now();
    const rendered = this.renderer.render(services, rewrite);
    const natDecl: string[] = ['*nat', ...NAT_CHAINS.map((c) => `:${c} - [0:0]`)];
    const filterDecl: string[] = ['*filter', ...FILTER_CHAINS.map((c) => `:${c} - [0:0]`)];
    const natJumps: string[] = [];
    const filterJumps: string[] = [];
    const deletes: string[] = [];
    const nextOwned = full ? new Map<string, Owned>() : new Map(this.owned);

    // Fixed chains the kernel does not have yet (batches below jump to KUBE-MARK-MASQ before the last restore).
    let missingFixed: string[] = [];
    const wanted = new Set<string>();
    for (const [name, r] of rendered.services) {
      for (const c of r.chains) wanted.add(c);
      nextOwned.set(name, { chains: r.chains, lines: r.lines.length });
    }
    if (full) {
      // Read back once: chains left by an earlier run, and jumps already in place.
      const r0 = performance.now();
      const save = (await tool.save('nat')) + (await tool.save('filter'));
      tm.readbackMs = performance.now() - r0;
      const nat = parseTable(save, 'nat');
      const filter = parseTable(save, 'filter');
      for (const c of nat.chains) if (isPerServiceChain(c) && !wanted.has(c)) deletes.push(c);
      missingFixed = NAT_CHAINS.filter((c) => !nat.chains.has(c));
      for (const j of jumps().reverse()) {
        const have = j.table === 'nat' ? nat.rules : filter.rules;
        if (!hasJump(have, j)) (j.table === 'nat' ? natJumps : filterJumps).push(`-I ${j.chain} 1 ${j.rest}`);
      }
      natDecl.push(`:${CANARY_CHAIN} - [0:0]`);
      filterDecl.push(`:${CANARY_CHAIN} - [0:0]`);
    } else {
      for (const name of req.changed ?? []) {
        const before = this.owned.get(name);
        if (!services.has(name)) nextOwned.delete(name);
        for (const c of before?.chains ?? []) if (!wanted.has(c)) deletes.push(c);
      }
    }
    for (const c of deletes) natDecl.push(`:${c} - [0:0]`);

    // iptables-nft-restore --noflush costs grow much faster than linearly with the chains of one
    // transaction (1k services 3.3 s, 2k 23 s here), so big syncs on nft write the services' own chains
    // in batches first; the last restore switches KUBE-SERVICES over and deletes what is stale. Each
    // service's chains change within one transaction, and nothing jumps to a new chain before it is filled.
    const batchSize = this.opts.nftBatchServices ?? 200;
    const batched = tool.flavour === 'nft' && batchSize > 0 && rendered.services.size > batchSize;
    const block = (lines: readonly string[]) => (lines.length > 0 ? lines.join('\n') + '\n' : '');
    const batches: string[][] = [];
    const batchHead = block(['*nat', ...missingFixed.map((c) => `:${c} - [0:0]`)]);
    let current: string[] = [];
    let inBatch = 0;
    const text: string[] = [];
    let lineCount = 0;
    for (const [name, r] of rendered.services) {
      const decl = r.chains.map((c) => `:${c} - [0:0]`);
      if (batched) {
        current.push(block(decl), block(r.lines));
        if (++inBatch === batchSize) {
          batches.push([batchHead, ...current, 'COMMIT\n']);
          current = [];
          inBatch = 0;
        }
      } else {
        natDecl.push(...decl);
        text.push(block(r.lines));
      }
      lineCount += decl.length + r.lines.length;
      // The joined block is all the restore needs: let the per-line strings go now (peak memory at 10k services).
      rendered.services.delete(name);
    }
    if (inBatch > 0) batches.push([batchHead, ...current, 'COMMIT\n']);
    text.unshift(block(natDecl), block(natJumps), block(rendered.natShared));
    lineCount += natDecl.length + natJumps.length + rendered.natShared.length;
    const tail = [...deletes.map((c) => `-X ${c}`), 'COMMIT', ...filterDecl, ...filterJumps, ...rendered.filter, 'COMMIT'];
    if (full) tail.push('*mangle', `:${CANARY_CHAIN} - [0:0]`, 'COMMIT');
    text.push(block(tail));
    lineCount += tail.length;
    tm.renderMs = performance.now() - t0 - tm.readbackMs;

    try {
      if (this.renderer.localhostNodePorts()) this.enableRouteLocalnet();
      t0 = performance.now();
      for (const b of batches) await tool.restore(b);
      await tool.restore(text);
      tm.restoreMs = performance.now() - t0;
    } catch (err) {
      this.known = false;
      metrics.iptablesRestoreFailuresTotal.inc();
      if (!full) metrics.iptablesPartialRestoreFailuresTotal.inc();
      throw err;
    }
    this.known = true;
    if (full) this.lastCanaryCheck = Date.now();
    this.owned = nextOwned;
    let natRules = rendered.natShared.length;
    let natChains = NAT_CHAINS.length;
    for (const o of nextOwned.values()) {
      natRules += o.lines;
      natChains += o.chains.length;
    }
    const filterRules = rendered.filter.length + jumps().filter((j) => j.table === 'filter').length;
    natRules += jumps().filter((j) => j.table === 'nat').length;
    metrics.iptablesTotal.set({ table: 'nat' }, natRules);
    metrics.iptablesTotal.set({ table: 'filter' }, filterRules);
    return { full, counts: { 'nat rules': natRules, 'nat chains': natChains, 'filter rules': filterRules, 'restore lines': lineCount } };
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
    this.owned.clear();
    this.known = false;
    if (errors.length === 2) throw new Error(`iptables cleanup failed for both flavours: ${errors.join('; ')}`);
  }
}

const OWN_FIXED = new Set<string>([...NAT_CHAINS, ...FILTER_CHAINS, CANARY_CHAIN]);

function ownsChain(name: string): boolean {
  return OWN_FIXED.has(name) || isPerServiceChain(name);
}

/** Deletes every jump to our chains from the built-in chains, then flushes and deletes our chains. */
async function cleanupFlavour(tool: IptablesTool): Promise<void> {
  const save = await tool.save();
  const parts: string[] = [];
  for (const table of ['nat', 'filter', 'mangle']) {
    const { chains, rules } = parseTable(save, table);
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
