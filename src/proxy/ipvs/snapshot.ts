// The whole IPVS table in two reads, for full syncs: the virtual servers from
// one GET_SERVICE dump (every attribute, flags included), their real servers
// from one read of /proc/net/ip_vs. Netlink can only list the real servers of
// one virtual server per dump, and 10k dumps cost 26 s in the VM; the /proc
// text holds, per real server, everything a sync compares (address, port,
// forwarding method, weight, active and inactive connections). It does not
// show thresholds or persistent-connection counts, which podwire never sets.
// Each virtual server's lines are kept as text: the backend parses only the
// ones that differ from the text it saw when that server last matched.
import { readFileSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import { serviceKeyString, type ForwardMethod, type Ipvs, type IpvsProtocol, type RealServerStatus, type VirtualServer } from '../../netlink/ipvs.js';
import { native } from '../../netlink/native.js';

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

/** The real servers in the lines a virtual server's block holds in /proc/net/ip_vs. */
export function parseDestLines(block: string): RealServerStatus[] {
  const out: RealServerStatus[] = [];
  for (const line of block.split('\n')) {
    if (!line.startsWith('  -> ')) continue;
    const f = fields(line, 5);
    const at = f.length >= 5 ? parseHexEndpoint(f[0]!) : null;
    if (!at) continue;
    out.push({
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
  }
  return out;
}

/**
 * Every protocol/address/port virtual server in a /proc/net/ip_vs text, by
 * serviceKeyString, with the text of its real-server lines (unparsed: an
 * unchanged block is compared as text, so an idle sync parses nothing).
 * Firewall-mark services are skipped (podwire never makes them).
 */
export function splitProcIpvs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let key: string | null = null;
  let blockStart = 0;
  let pos = 0;
  const close = (end: number) => {
    if (key !== null) out.set(key, text.slice(blockStart, end));
    key = null;
  };
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    if (!text.startsWith('  -> ', pos)) {
      close(pos);
      const f = fields(text.slice(pos, end), 0);
      const protocol = f[0] as IpvsProtocol;
      const at = PROTOCOLS.has(protocol) ? parseHexEndpoint(f[1] ?? '') : null; // null: header lines, FWM services
      if (at) {
        key = serviceKeyString({ family: at.family, protocol, address: at.address, port: at.port });
        blockStart = end + 1;
      }
    }
    pos = end + 1;
  }
  close(text.length);
  return out;
}

/** The real servers of every virtual server in a /proc/net/ip_vs text, by serviceKeyString. */
export function parseProcIpvs(text: string): Map<string, RealServerStatus[]> {
  return new Map([...splitProcIpvs(text)].map(([k, block]) => [k, parseDestLines(block)]));
}

/** /proc/net/ip_vs of the namespace (read on this thread, inside it, by the addon). */
export function readProcIpvs(netnsPath: string | undefined): string {
  const path = '/proc/thread-self/net/ip_vs';
  return netnsPath ? native().readFileInNetns(netnsPath, path) : readFileSync(path, 'utf8');
}

/** One virtual server as the kernel has it; its real servers as /proc text (null: ask netlink). */
export interface KernelEntry {
  readonly service: VirtualServer;
  readonly destText: string | null;
}

/** Every virtual server of one family, by serviceKeyString. */
export function readKernelTable(ipvs: Ipvs, netnsPath: string | undefined, family: 4 | 6, skip: (address: string) => boolean): Map<string, KernelEntry> {
  const services = ipvs.listServices();
  const blocks = splitProcIpvs(readProcIpvs(netnsPath));
  const out = new Map<string, KernelEntry>();
  for (const s of services) {
    if (s.family !== family || skip(s.address)) continue;
    const k = serviceKeyString(s);
    // null: a virtual server added between the two reads.
    out.set(k, { service: s, destText: blocks.get(k) ?? null });
  }
  return out;
}

/** The real servers of an entry: parsed from its /proc text, or listed over netlink when it has none. */
export function entryDests(ipvs: Ipvs, e: KernelEntry): RealServerStatus[] {
  return e.destText === null ? ipvs.listDestinations(e.service) : parseDestLines(e.destText);
}
