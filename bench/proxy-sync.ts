// npm run bench -- proxy-sync [--mode iptables|nftables|ipvs] [--sizes 1000,5000,10000] [--flavours nft,legacy]
//
// --mode nftables runs bench/proxy-sync-nft.ts's benchmark and --mode ipvs
// bench/proxy-sync-ipvs.ts's (which boots the IPVS VM), as child processes
// with the same --sizes; the rest of this file is the iptables benchmark.
//
// Synthetic clusters of N services x 10 endpoints (one endpoint of ten on this
// node, every tenth service with a node port), programmed into a fresh
// namespace pw-b-ipt-<flavour>-<N>-<pid>: cold full sync (podwire's own work vs
// iptables-restore), rule lines (and kube-proxy's for the same cluster), a
// one-endpoint change, one service added, and the RSS of a process running
// just that case (each flavour and size runs in a child of its own).
// One function per mode (benchIptables), so other backends add theirs beside it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IptablesBackend } from '../src/proxy/iptables/index.js';
import { iptablesTool } from '../src/proxy/iptables/exec.js';
import { CANARY_CHAIN } from '../src/proxy/iptables/render.js';
import type { Flavour } from '../src/proxy/iptables/index.js';
import type { ProxyConfig, ServiceView } from '../src/proxy/model.js';
import { stateOf, syntheticService, syntheticServices } from './lib/synthetic-state.js';

const args = process.argv.slice(2);
function opt(name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
}

/** kube-proxy writes the same lines plus a hairpin rule in every KUBE-SEP- chain; podwire only where it can matter. */
function kubeProxyExtraLines(services: Map<string, ServiceView>): number {
  let n = 0;
  for (const v of services.values()) if (!v.info.externalPolicyLocal) n += v.allEndpoints.filter((e) => !e.isLocal).length;
  return n;
}

const mib = (b: number) => (b / 1048576).toFixed(0);
const s = (ms: number) => (ms / 1000).toFixed(2);


async function benchIptables(size: number, flavour: Flavour): Promise<Record<string, string | number>> {
  // The pid: two runs at once must not share, and so delete, a namespace.
  const ns = `pw-b-ipt-${flavour}-${size}-${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    /* not there */
  }
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const config: ProxyConfig = { family: 4, clusterCIDRs: ['11.0.0.0/8'], masqueradeAll: false, masqueradeBit: 14, nodePortAddresses: [], localhostNodePorts: false };
    const backend = new IptablesBackend(config, { netnsPath: `/run/netns/${ns}`, flavour });
    const services = syntheticServices(size);
    const stateRss = process.memoryUsage().rss;
    let t = performance.now();
    const cpu0 = process.cpuUsage();
    const cold = await backend.sync({ state: stateOf(services), changed: null });
    const coldCpu = process.cpuUsage(cpu0);
    const coldMs = performance.now() - t;
    const coldT = backend.lastTimings;
    const lines = cold.counts?.['restore lines'] ?? 0;
    const kubeProxyLines = lines + kubeProxyExtraLines(services);

    // One endpoint of one service replaced.
    const changed = syntheticService(7, 1);
    services.set(changed.info.name, changed);
    t = performance.now();
    const ep = await backend.sync({ state: stateOf(services), changed: new Set([changed.info.name]) });
    const epMs = performance.now() - t;
    const epRestoreMs = backend.lastTimings.restoreMs;
    const epRenderMs = backend.lastTimings.renderMs;
    if (ep.full) throw new Error('the one-endpoint change ran as a full sync');

    const added = syntheticService(size);
    services.set(added.info.name, added);
    t = performance.now();
    await backend.sync({ state: stateOf(services), changed: new Set([added.info.name]) });
    const addMs = performance.now() - t;

    // The floor of any change: a restore that creates and deletes one chain in the nat table (nft: that
    // makes iptables-nft-restore read the table's chains; legacy gets and replaces the whole table anyway).
    const tool = iptablesTool(flavour, 4, `/run/netns/${ns}`);
    t = performance.now();
    await tool.restore(`*nat\n:KUBE-SEP-BENCHFLOORBENCHF - [0:0]\n-X KUBE-SEP-BENCHFLOORBENCHF\n-F ${CANARY_CHAIN}\nCOMMIT\n`);
    const floorMs = performance.now() - t;
    const own = coldMs - coldT.restoreMs - coldT.readbackMs;
    return {
      flavour,
      services: size,
      'cold s': s(coldMs),
      'podwire s': s(own),
      // CPU of this process during the cold sync (iptables-restore runs in a child): robust on a loaded machine.
      'podwire cpu s': s((coldCpu.user + coldCpu.system) / 1000),
      'restore s': s(coldT.restoreMs),
      'readback s': s(coldT.readbackMs),
      'own %': ((100 * own) / coldMs).toFixed(1),
      'rule lines': lines,
      'kube-proxy lines': kubeProxyLines,
      'ep change s': s(epMs),
      'ep restore s': s(epRestoreMs),
      'ep render ms': epRenderMs.toFixed(1),
      'add svc s': s(addMs),
      'nat floor s': s(floorMs),
      'change % of cold': ((100 * Math.max(epMs, addMs)) / coldMs).toFixed(1),
      'floor % of cold': ((100 * floorMs) / coldMs).toFixed(1),
      'state rss MiB': mib(stateRss),
      'rss MiB': mib(process.memoryUsage().rss),
      'max rss MiB': mib(process.resourceUsage().maxRSS * 1024),
      'heap MiB': mib(process.memoryUsage().heapUsed),
    };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

/** The other modes' benchmarks, built beside this one (dist/bench/NAME.mjs), and how they take the sizes. */
const OTHER_MODES: Record<string, { bench: string; sizeArgs: (sizes: string | null) => string[] }> = {
  nftables: { bench: 'proxy-sync-nft', sizeArgs: (sizes) => (sizes ? ['--sizes', sizes] : []) },
  ipvs: { bench: 'proxy-sync-ipvs', sizeArgs: (sizes) => (sizes ? sizes.split(',') : []) },
};

/** Runs another mode's benchmark as a child with this terminal; returns its exit code. */
function runOtherMode(mode: string): number {
  const other = OTHER_MODES[mode]!;
  const file = join(dirname(fileURLToPath(import.meta.url)), `${other.bench}.mjs`);
  if (!existsSync(file)) throw new Error(`proxy-sync --mode ${mode}: ${file} is missing (run npm run build)`);
  const sizes = args.includes('--sizes') ? opt('sizes', '') : null;
  // With this process's V8 flags (npm run bench passes the daemon's), so memory figures are the daemon's.
  const r = spawnSync(process.execPath, [...process.execArgv, file, ...other.sizeArgs(sizes)], { stdio: 'inherit' });
  if (r.error) throw new Error(`proxy-sync --mode ${mode}: cannot run ${file}: ${r.error.message}`);
  return r.status ?? 1;
}

async function main(): Promise<void> {
  const mode = opt('mode', 'iptables');
  if (mode in OTHER_MODES) {
    process.exitCode = runOtherMode(mode);
    return;
  }
  if (mode !== 'iptables') throw new Error(`proxy-sync: unknown --mode ${mode} (iptables, ${Object.keys(OTHER_MODES).join(', ')})`);
  const one = opt('case', '');
  if (one) {
    // A child measuring one flavour and size: its RSS is that case's alone.
    const [flavour, size] = one.split(':');
    console.log(JSON.stringify(await benchIptables(Number(size), flavour as Flavour)));
    return;
  }
  const sizes = opt('sizes', '1000,5000,10000').split(',').map(Number);
  const flavours = opt('flavours', 'nft,legacy').split(',') as Flavour[];
  const rows: Record<string, string | number>[] = [];
  for (const flavour of flavours) for (const size of sizes) {
    const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--case', `${flavour}:${size}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    if (r.status !== 0 || !line) throw new Error(`proxy-sync: the ${flavour} ${size} case failed (exit ${r.status})`);
    const row = JSON.parse(line) as Record<string, string | number>;
    rows.push(row);
    console.log(line);
  }
  console.table(rows);
}

await main();
