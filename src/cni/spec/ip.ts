// IP addresses as bigints: enough to parse, print (Go's canonical form, so file names match
// host-local's), compare and step through ranges without a dependency. The text codec is
// netlink/ip.ts's (Go's rules); on top of it, "::ffff:a.b.c.d" is IPv4 here, as in Go's net.ParseIP.
import { formatIp, isV4Mapped, parseIPv4, parseIPv6, type IpFamily } from '../../netlink/ip.js';

export type { IpFamily };
export interface IP {
  family: IpFamily;
  value: bigint;
}
export interface IPNet {
  /** The address as written (host bits may be set, as in "10.1.0.5/24"). */
  ip: IP;
  prefix: number;
}

const v6 = new Uint8Array(16);
const v6Words = new DataView(v6.buffer);

/** Parses an IPv4 or IPv6 address; "::ffff:a.b.c.d" counts as IPv4, as in Go. */
export function parseIP(s: string): IP | null {
  const v4 = parseIPv4(s);
  if (v4 >= 0) return { family: 4, value: BigInt(v4) };
  if (!parseIPv6(s, v6)) return null;
  if (isV4Mapped(v6)) return { family: 4, value: BigInt(v6Words.getUint32(12)) };
  let value = 0n;
  for (let i = 0; i < 16; i += 4) value = (value << 32n) | BigInt(v6Words.getUint32(i));
  return { family: 6, value };
}

export function formatIP(ip: IP): string {
  const n = ip.family === 4 ? 4 : 16;
  const b = new Uint8Array(n);
  const words = new DataView(b.buffer);
  for (let i = 0; i < n; i += 4) words.setUint32(i, Number((ip.value >> BigInt((n - 4 - i) * 8)) & 0xffffffffn));
  return formatIp(b);
}

export function bits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

export function parseCIDR(s: string): IPNet | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIP(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(p)) return null;
  let prefix = Number(p);
  // "::ffff:10.0.0.1/120" style: an IPv4 address written in v6 keeps a v6 prefix length.
  if (ip.family === 4 && s.slice(0, slash).includes(':')) prefix -= 96;
  if (prefix < 0 || prefix > bits(ip.family)) return null;
  return { ip, prefix };
}

export function formatCIDR(n: IPNet): string {
  return `${formatIP(n.ip)}/${n.prefix}`;
}

export function hostMask(family: IpFamily, prefix: number): bigint {
  return (1n << BigInt(bits(family) - prefix)) - 1n;
}

/** The network address of n (host bits cleared). */
export function networkOf(n: IPNet): IP {
  return { family: n.ip.family, value: n.ip.value & ~hostMask(n.ip.family, n.prefix) };
}

export function lastOf(n: IPNet): IP {
  return { family: n.ip.family, value: networkOf(n).value | hostMask(n.ip.family, n.prefix) };
}

export function contains(n: IPNet, ip: IP): boolean {
  return ip.family === n.ip.family && networkOf({ ip, prefix: n.prefix }).value === networkOf(n).value;
}

export function ipEqual(a: IP, b: IP): boolean {
  return a.family === b.family && a.value === b.value;
}

