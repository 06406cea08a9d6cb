// UDP has no connection to close: when an endpoint goes away, conntrack keeps
// sending a client's stream to the dead address until the entry times out
// (kubernetes#139628). After each sync, delete exactly the entries that point
// at removed UDP endpoints, and, for services that just got their first
// endpoint, the entries created while they had none. Never a blanket flush
// (kubernetes#122740: that breaks every other UDP stream on the node).
import { execFile } from 'node:child_process';
import type { IPFamily, ServiceView } from './model.js';
import { metrics } from './metrics.js';

export type ConntrackRunner = (args: string[]) => Promise<number>;

/** Runs `conntrack` with an argument array; resolves with the number of entries it deleted. */
export const runConntrack: ConntrackRunner = (args) =>
  new Promise((resolve) => {
    execFile('conntrack', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      // conntrack exits 1 when nothing matched; that is not a failure here.
      const m = /(\d+) flow entries have been deleted/.exec(String(stderr));
      resolve(m ? Number(m[1]) : err ? 0 : 0);
    });
  });

function serviceIPs(v: ServiceView): string[] {
  return [v.info.clusterIP, ...v.info.externalIPs, ...v.info.loadBalancerVIPs];
}

/** The conntrack deletions a sync calls for (pure, so it is unit-tested without a kernel). */
export function staleConntrackCommands(
  family: IPFamily,
  changed: Iterable<string>,
  previous: ReadonlyMap<string, ServiceView>,
  current: ReadonlyMap<string, ServiceView>,
): string[][] {
  const fam = family === 6 ? ['-f', 'ipv6'] : [];
  const cmds: string[][] = [];
  for (const name of changed) {
    const prev = previous.get(name);
    const cur = current.get(name);
    if (prev && prev.info.protocol === 'UDP') {
      const still = new Set((cur?.allEndpoints ?? []).map((e) => `${e.ip}:${e.port}`));
      for (const ep of prev.allEndpoints) {
        if (still.has(`${ep.ip}:${ep.port}`)) continue;
        // Matched by the reply's source, not --dst-nat: IPVS rewrites the reply tuple without setting the DNAT status bit.
        for (const ip of serviceIPs(prev)) cmds.push(['-D', ...fam, '-p', 'udp', '--orig-dst', ip, '--reply-src', ep.ip]);
        if (prev.info.nodePort) cmds.push(['-D', ...fam, '-p', 'udp', '--orig-port-dst', String(prev.info.nodePort), '--reply-src', ep.ip]);
      }
    }
    if (cur && cur.info.protocol === 'UDP' && cur.allEndpoints.length > 0 && (prev?.allEndpoints.length ?? 0) === 0) {
      for (const ip of serviceIPs(cur)) cmds.push(['-D', ...fam, '-p', 'udp', '--orig-dst', ip, '--orig-port-dst', String(cur.info.port)]);
      if (cur.info.nodePort) cmds.push(['-D', ...fam, '-p', 'udp', '--orig-port-dst', String(cur.info.nodePort)]);
    }
  }
  return cmds;
}

export async function cleanStaleConntrack(cmds: string[][], run: ConntrackRunner = runConntrack): Promise<number> {
  let deleted = 0;
  for (const c of cmds) deleted += await run(c);
  if (deleted) metrics.conntrackDeletedEntries.inc(deleted);
  return deleted;
}
