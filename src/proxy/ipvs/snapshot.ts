// The whole IPVS table in two reads, for full syncs: the virtual servers from
// one GET_SERVICE dump (every attribute, flags included), their real servers
// from one read of /proc/net/ip_vs. Netlink can only list the real servers of
// one virtual server per dump, and 10k dumps cost 26 s in the VM; the /proc
// text holds, per real server, everything a sync compares (address, port,
// forwarding method, weight, active and inactive connections). It does not
// show thresholds or persistent-connection counts, which podwire never sets.
import { readFileSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import { serviceKeyString, type ForwardMethod, type Ipvs, type IpvsProtocol, type RealServerStatus } from '../../netlink/ipvs.js';
import { native } from '../../netlink/native.js';
import type { KernelServer } from './reconcile.js';

const PROTOCOLS = new Set<IpvsProtocol>(['TCP', 'UDP', 'SCTP']);
const FORWARD: Record<string, ForwardMethod> = { Masq: 'masq', Local: 'local', Tunnel: 'tunnel', Route: 'route' };

/** "0A60000A:0050" or "[fd00:0096:…:000a]:01BB" → address and port. */
function parseHexEndpoint(text: string): { family: 4 | 6; address: string; port: number } | null {
  const colon = text.lastIndexOf(':');
  if (colon < 0) return null;
  const port = parseInt(text.slice(colon + 1), 16);
  if (text.startsWith('[')) return { family: 6, address: ipaddr.parse(text.slice(1, colon - 1)).toString(), port };
  if (colon !== 8) return null;
  const n = parseInt(text.slice(0, 8), 16);
  return { family: 4, address: `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`, port };
}

/** The whitespace-separated fields of a line (no regular expression: 100k lines are parsed per full sync). */
function fields(line: string, from: number): string[] {
  const out: string[] = [];
  let i = from;
  const n = line.length;
  while (i < n) {
    while (i < n && line.charCodeAt(i) === 32) i++;
    if (i >= n) break;
    const start = i;
    while (i < n && line.charCodeAt(i) !== 32) i++;
    out.push(line.slice(start, i));
  }
  return out;
}

/**
 * The real servers of every protocol/address/port virtual server in a
 * /proc/net/ip_vs text, by serviceKeyString. Firewall-mark services are
 * skipped (podwire never makes them).
 */
export function parseProcIpvs(text: string): Map<string, RealServerStatus[]> {
  const out = new Map<string, RealServerStatus[]>();
  let dests: RealServerStatus[] | null = null;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.startsWith('  -> ')) {
      if (!dests) continue;
      const f = fields(line, 5);
      const at = f.length >= 5 ? parseHexEndpoint(f[0]!) : null;
      if (!at) continue;
      dests.push({
        family: at.family,
        address: at.address,
        port: at.port,
        forward: FORWARD[f[1]!] ?? 'masq',
        weight: Number(f[2]),
        upperThreshold: 0,
        lowerThreshold: 0,
        activeConns: Number(f[3]),
        inactiveConns: Number(f[4]),
        persistConns: 0,
      });
      continue;
    }
    dests = null;
    const f = fields(line, 0);
    const protocol = f[0] as IpvsProtocol;
    if (!PROTOCOLS.has(protocol)) continue; // the header lines, FWM services
    const at = parseHexEndpoint(f[1] ?? '');
    if (!at) continue;
    dests = [];
    out.set(serviceKeyString({ family: at.family, protocol, address: at.address, port: at.port }), dests);
  }
  return out;
}

/** /proc/net/ip_vs of the namespace (read on this thread, inside it, by the addon). */
export function readProcIpvs(netnsPath: string | undefined): string {
  const path = '/proc/thread-self/net/ip_vs';
  return netnsPath ? native().readFileInNetns(netnsPath, path) : readFileSync(path, 'utf8');
}

/** Every virtual server of one family with its real servers, by serviceKeyString. */
export function readKernelTable(ipvs: Ipvs, netnsPath: string | undefined, family: 4 | 6, skip: (address: string) => boolean): Map<string, KernelServer> {
  const services = ipvs.listServices();
  const dests = parseProcIpvs(readProcIpvs(netnsPath));
  const out = new Map<string, KernelServer>();
  for (const s of services) {
    if (s.family !== family || skip(s.address)) continue;
    const k = serviceKeyString(s);
    // A virtual server added between the two reads: ask netlink for its real servers.
    out.set(k, { service: s, dests: dests.get(k) ?? ipvs.listDestinations(s) });
  }
  return out;
}
