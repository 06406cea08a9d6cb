// The `ipam` section of a network config, parsed with host-local's rules and defaults.
import { CniError, ErrorCode } from '../cni/spec/errors.js';
import type { CniEnv } from '../cni/spec/env.js';
import { type IP, type IPNet, contains, formatCIDR, formatIP, lastOf, networkOf, parseCIDR, parseIP } from '../cni/spec/ip.js';
import type { Route } from '../cni/spec/result.js';
import { compareVersions } from '../cni/spec/version.js';

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';

/** One range of a range set: every address from start to end (inclusive) except the gateway. */
export interface IpRange {
  subnet: IPNet; // network address + prefix
  start: IP;
  end: IP;
  gateway: IP;
}
export type RangeSet = IpRange[];

export interface IpamConfig {
  /** The network name: the store's directory under dataDir. */
  name: string;
  dataDir: string;
  rangeSets: RangeSet[];
  routes: Route[];
  resolvConf?: string;
  /** Requested addresses (CNI_ARGS IP, args.cni.ips, runtimeConfig.ips), in order. */
  requested: IP[];
}

type Json = Record<string, unknown>;

function invalid(msg: string): CniError {
  return new CniError(ErrorCode.InvalidNetworkConfig, msg);
}
function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function rangeContains(r: IpRange, ip: IP): boolean {
  return ip.family === r.start.family && ip.value >= r.start.value && ip.value <= r.end.value;
}
export function rangeSetContains(s: RangeSet, ip: IP): boolean {
  return s.some((r) => rangeContains(r, ip));
}
export function rangeText(r: IpRange): string {
  return `${formatIP(r.start)}-${formatIP(r.end)}`;
}
export function rangeSetText(s: RangeSet): string {
  return s.map(rangeText).join(',');
}
function overlaps(a: IpRange, b: IpRange): boolean {
  return rangeContains(a, b.start) || rangeContains(a, b.end) || rangeContains(b, a.start) || rangeContains(b, a.end);
}

function optIp(o: Json, key: string, where: string): IP | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === '') return undefined;
  const ip = typeof v === 'string' ? parseIP(v) : null;
  if (!ip) throw invalid(`${where}.${key}: "${String(v)}" is not an IP address`);
  return ip;
}

export function parseRange(v: unknown, where: string): IpRange {
  if (!isObj(v)) throw invalid(`${where} must be an object with a "subnet"`);
  const s = v.subnet;
  const subnet = typeof s === 'string' ? parseCIDR(s) : null;
  if (!subnet) throw invalid(`${where}.subnet: ${JSON.stringify(s)} is not a subnet in CIDR notation`);
  const fam = subnet.ip.family;
  const bitsLen = fam === 4 ? 32 : 128;
  if (subnet.prefix > bitsLen - 2) throw invalid(`${where}.subnet: network ${s} is too small to allocate from`);
  const net = networkOf(subnet);
  if (net.value !== subnet.ip.value) {
    throw invalid(`${where}.subnet: ${s} has host bits set; for a /${subnet.prefix} the network address is ${formatIP(net)}`);
  }
  const inSubnet = (ip: IP | undefined, key: string): IP | undefined => {
    if (ip && !contains(subnet, ip)) throw invalid(`${where}.${key} ${formatIP(ip)} is not in network ${s}`);
    return ip;
  };
  const next: IP = { family: fam, value: net.value + 1n };
  const gateway = optIp(v, 'gateway', where) ?? next;
  if (gateway.family !== fam) throw invalid(`${where}.gateway ${formatIP(gateway)} is not of the subnet's family`);
  const start = inSubnet(optIp(v, 'rangeStart', where), 'rangeStart') ?? next;
  // host-local: an IPv4 range ends before the broadcast address by default; IPv6 has none.
  const last = lastOf(subnet);
  const end = inSubnet(optIp(v, 'rangeEnd', where), 'rangeEnd') ?? (fam === 4 ? { family: 4, value: last.value - 1n } : last);
  if (start.value > end.value) throw invalid(`${where}: rangeStart ${formatIP(start)} is after rangeEnd ${formatIP(end)}`);
  return { subnet: { ip: net, prefix: subnet.prefix }, start, end, gateway };
}

export function parseRangeSet(v: unknown, where: string): RangeSet {
  if (!Array.isArray(v) || v.length === 0) throw invalid(`${where} must be a non-empty list of ranges`);
  const set = v.map((r, i) => parseRange(r, `${where}[${i}]`));
  const fam = (set[0] as IpRange).start.family;
  if (set.some((r) => r.start.family !== fam)) throw invalid(`${where} mixes address families`);
  for (let i = 0; i < set.length; i++) {
    for (let j = i + 1; j < set.length; j++) {
      const a = set[i] as IpRange;
      const b = set[j] as IpRange;
      if (overlaps(a, b)) throw invalid(`${where}: ranges ${rangeText(a)} and ${rangeText(b)} overlap`);
    }
  }
  return set;
}

function parseRoutes(v: unknown): Route[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid('ipam.routes must be a list');
  return v.map((r, i) => {
    const w = `ipam.routes[${i}]`;
    if (!isObj(r) || typeof r.dst !== 'string' || !parseCIDR(r.dst)) throw invalid(`${w}.dst must be a destination in CIDR notation`);
    const out: Route = { dst: r.dst };
    const gw = optIp(r, 'gw', w);
    if (gw) out.gw = formatIP(gw);
    return out;
  });
}

/** "10.1.2.3" or "10.1.2.3/24" (host-local's ip.IP accepts both). */
function parseRequested(s: unknown, where: string): IP {
  const text = typeof s === 'string' ? s : '';
  const ip = text.includes('/') ? parseCIDR(text)?.ip : parseIP(text);
  if (!ip) throw invalid(`${where}: ${JSON.stringify(s)} is not an IP address`);
  return ip;
}

function requestedIps(netConf: Json, env: CniEnv): IP[] {
  const out: IP[] = [];
  const argIp = env.args.IP;
  if (argIp !== undefined && argIp !== '') {
    for (const part of argIp.split(',')) out.push(parseRequested(part.trim(), 'CNI_ARGS IP'));
  }
  const args = netConf.args;
  if (isObj(args) && isObj(args.cni) && args.cni.ips !== undefined) {
    if (!Array.isArray(args.cni.ips)) throw invalid('args.cni.ips must be a list');
    args.cni.ips.forEach((s, i) => out.push(parseRequested(s, `args.cni.ips[${i}]`)));
  }
  const rc = netConf.runtimeConfig;
  if (isObj(rc) && rc.ips !== undefined) {
    if (!Array.isArray(rc.ips)) throw invalid('runtimeConfig.ips must be a list');
    rc.ips.forEach((s, i) => out.push(parseRequested(s, `runtimeConfig.ips[${i}]`)));
  }
  return out;
}

/** Where the reservations live: enough for DEL and GC even when the ranges are broken. */
export function storeLocation(netConf: Json): { name: string; dataDir: string } {
  const name = netConf.name;
  if (typeof name !== 'string' || name === '') throw invalid('missing network name');
  const ipam = netConf.ipam;
  if (!isObj(ipam)) throw invalid("IPAM config missing 'ipam' key");
  const dataDir = ipam.dataDir;
  if (dataDir !== undefined && typeof dataDir !== 'string') throw invalid('ipam.dataDir must be a string');
  return { name, dataDir: dataDir || DEFAULT_DATA_DIR };
}

export function parseIpamConfig(netConf: Json, env: CniEnv): IpamConfig {
  const { name, dataDir } = storeLocation(netConf);
  const ipam = netConf.ipam as Json;
  const rangeSets: RangeSet[] = [];
  const rc = netConf.runtimeConfig;
  if (isObj(rc) && Array.isArray(rc.ipRanges) && rc.ipRanges.length > 0) {
    // The runtime's ranges replace the configured ones (CONVENTIONS.md ipRanges).
    rc.ipRanges.forEach((s, i) => rangeSets.push(parseRangeSet(s, `runtimeConfig.ipRanges[${i}]`)));
  } else {
    if (ipam.subnet !== undefined) rangeSets.push([parseRange(ipam, 'ipam')]);
    if (ipam.ranges !== undefined) {
      if (!Array.isArray(ipam.ranges)) throw invalid('ipam.ranges must be a list of range sets');
      ipam.ranges.forEach((s, i) => rangeSets.push(parseRangeSet(s, `ipam.ranges[${i}]`)));
    }
  }
  if (rangeSets.length === 0) throw invalid('no IP ranges specified (ipam.ranges or ipam.subnet)');
  for (let i = 0; i < rangeSets.length; i++) {
    for (let j = i + 1; j < rangeSets.length; j++) {
      if ((rangeSets[i] as RangeSet).some((a) => (rangeSets[j] as RangeSet).some((b) => overlaps(a, b)))) {
        throw invalid(`range set ${i} overlaps with range set ${j}`);
      }
    }
  }
  const v4 = rangeSets.filter((s) => (s[0] as IpRange).start.family === 4).length;
  const cniVersion = typeof netConf.cniVersion === 'string' && netConf.cniVersion ? netConf.cniVersion : '0.1.0';
  if ((v4 > 1 || rangeSets.length - v4 > 1) && compareVersions(cniVersion, '0.3.0') < 0) {
    throw invalid(`CNI version ${cniVersion} does not support more than 1 address per family`);
  }
  const resolvConf = ipam.resolvConf;
  if (resolvConf !== undefined && typeof resolvConf !== 'string') throw invalid('ipam.resolvConf must be a path');
  const cfg: IpamConfig = { name, dataDir, rangeSets, routes: parseRoutes(ipam.routes), requested: requestedIps(netConf, env) };
  if (resolvConf) cfg.resolvConf = resolvConf;
  return cfg;
}

/** The address in the range's subnet, as "ip/prefix". */
export function addressIn(r: IpRange, ip: IP): string {
  return formatCIDR({ ip, prefix: r.subnet.prefix });
}

/** How many addresses the range can hand out (the gateway excluded). */
export function rangeSize(r: IpRange): bigint {
  const n = r.end.value - r.start.value + 1n;
  return rangeContains(r, r.gateway) ? n - 1n : n;
}

