// npm run bench -- proxy-sync-nft [--sizes 1000,5000,10000] [--transports netlink,nft]
//
// The nftables backend through both transports, side by side in one run
// (issue 6): the netlink batch and `nft -f -` text. Synthetic clusters of N
// services x 10 endpoints (every tenth service with a node port), each run in
// a fresh namespace pw-b-nft-<N>-<transport>-<pid> that it removes: cold full sync,
// a one-endpoint change (partial sync), one service added (partial sync), and
// the process RSS. Each (size, transport) runs in a child process of its own,
// so its RSS is its own (the nft transport's nft processes are not counted).
// One JSON line per size and transport.
import { execFileSync, spawnSync } from 'node:child_process';
import { createNftablesBackend } from '../src/proxy/nftables/index.js';
import type { TransportKind } from '../src/proxy/nftables/transport.js';
import type { ProxyConfig } from '../src/proxy/model.js';
import { ENDPOINTS, stateOf, syntheticService as service, syntheticServices } from './lib/synthetic-state.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : def;
};
const config: ProxyConfig = { family: 4, clusterCIDRs: ['10.244.0.0/16'], masqueradeAll: false, masqueradeBit: 14, nodePortAddresses: [], localhostNodePorts: false };
const mib = (b: number) => Math.round(b / 1048576);

/** One size through one transport, in this process; prints its JSON line. */
async function one(n: number, transport: TransportKind): Promise<void> {
  // The pid: two runs at once (two people, or a helper script) must not share, and so delete, a namespace.
  const ns = `pw-b-nft-${n}-${transport}-${process.pid}`;
  try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* not there */ }
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const backend = createNftablesBackend(config, { netnsPath: `/run/netns/${ns}`, transport });
    const services = syntheticServices(n);
    let t = performance.now();
    await backend.sync({ state: stateOf(services), changed: null });
    const coldMs = performance.now() - t;

    const changed = service(7, 1);
    services.set(changed.info.name, changed);
    t = performance.now();
    const ep = await backend.sync({ state: stateOf(services), changed: new Set([changed.info.name]) });
    const epMs = performance.now() - t;

    const added = service(n);
    services.set(added.info.name, added);
    t = performance.now();
    const add = await backend.sync({ state: stateOf(services), changed: new Set([added.info.name]) });
    const addMs = performance.now() - t;
    const rss = mib(process.memoryUsage().rss);

    const counts = JSON.parse(execFileSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'ip', 'podwire'], { maxBuffer: 1 << 30 }).toString()) as { nftables: Array<Record<string, unknown>> };
    const kinds: Record<string, number> = {};
    for (const o of counts.nftables) for (const k of Object.keys(o)) kinds[k] = (kinds[k] ?? 0) + 1;
    console.log(JSON.stringify({
      services: n, endpoints: n * ENDPOINTS, transport, 'cold sync ms': Math.round(coldMs),
      'one endpoint ms': +epMs.toFixed(1), 'one endpoint full': ep.full, 'one service ms': +addMs.toFixed(1), 'one service full': add.full,
      'kernel objects': kinds, 'rss MiB': rss,
    }));
    await backend.cleanup();
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

if (args[0] === '--one') {
  await one(Number(args[1]), args[2] as TransportKind);
} else {
  const sizes = arg('--sizes', '1000,5000,10000').split(',').map(Number);
  const transports = arg('--transports', 'netlink,nft').split(',') as TransportKind[];
  for (const t of transports) if (t !== 'netlink' && t !== 'nft') throw new Error(`--transports: ${t} is not netlink or nft`);
  // Same V8 flags as this process (npm run bench passes the daemon's).
  for (const n of sizes) {
    for (const t of transports) {
      const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, '--one', String(n), t], { stdio: 'inherit' });
      if (r.status !== 0) throw new Error(`proxy-sync-nft ${n} ${t}: exit ${r.status ?? r.signal}`);
    }
  }
}
