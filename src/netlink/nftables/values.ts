// Values in the byte layout nf_tables compares: addresses and ports in network
// order, protocols as one byte, concatenations with each field padded to a
// 32-bit register. Also CIDR arithmetic for interval elements.
import { formatIp, isIP, parseIPv4, parseIPv6, type IpFamily } from '../ip.js';

export type { IpFamily };

/**
 * A zeroed buffer carved from Node's shared pool. Buffer.alloc gives every
 * value its own ArrayBuffer (~85 bytes of heap each beside the view), and a
 * full sync at 10k services holds ~230k of these values at once.
 */
function zeroed(n: number): Buffer {
  return Buffer.allocUnsafe(n).fill(0);
}

// Addresses follow netlink/ip.ts's rules (Go's: no leading zeros, no zones);
// "::ffff:a.b.c.d" stays a 16-byte IPv6 value, as nf_tables compares it.

export function ipv4(s: string): Buffer {
  const v = parseIPv4(s);
  if (v < 0) throw new Error(`not an IPv4 address: ${s}`);
  const b = zeroed(4);
  b.writeUInt32BE(v);
  return b;
}

export function ipv6(s: string): Buffer {
  // parseIPv6 writes every byte, so the pooled buffer needs no zeroing first.
  const b = Buffer.allocUnsafe(16);
  if (!parseIPv6(s, b)) throw new Error(`not an IPv6 address: ${s}`);
  return b;
}

export function ip(s: string): Buffer {
  const v = parseIPv4(s);
  if (v < 0) return ipv6(s);
  const b = zeroed(4);
  b.writeUInt32BE(v);
  return b;
}

export function ipFamily(s: string): IpFamily {
  const f = isIP(s);
  if (f === 0) throw new Error(`not an IP address: ${s}`);
  return f;
}

export function ipToString(b: Buffer): string {
  return formatIp(b);
}

export interface Cidr {
  family: IpFamily;
  /** The address as written (a pod's own address in "10.1.0.5/24"). */
  address: Buffer;
  prefix: number;
  /** First and last address of the network. */
  first: Buffer;
  last: Buffer;
}

export function toBig(b: Buffer): bigint {
  return BigInt(`0x${b.toString('hex') || '0'}`);
}

export function fromBig(v: bigint, bytes: number): Buffer {
  return Buffer.from(v.toString(16).padStart(bytes * 2, '0'), 'hex');
}

export function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  const family = ipFamily(addrText);
  const bits = family === 4 ? 32 : 128;
  const prefix = slash < 0 ? bits : Number(s.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits || (slash >= 0 && !/^\d+$/.test(s.slice(slash + 1)))) {
    throw new Error(`bad prefix length in ${s}`);
  }
  const address = ip(addrText);
  const v = toBig(address);
  const hostBits = BigInt(bits - prefix);
  const hostMask = (1n << hostBits) - 1n;
  return { family, address, prefix, first: fromBig(v & ~hostMask, bits / 8), last: fromBig(v | hostMask, bits / 8) };
}

/** Inclusive ranges [first, last] of `bits`-bit numbers not covered by any of `holes`. */
export function complementRanges(holes: Array<[bigint, bigint]>, bits: number): Array<[bigint, bigint]> {
  const max = (1n << BigInt(bits)) - 1n;
  const sorted = [...holes].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Array<[bigint, bigint]> = [];
  let next = 0n;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1n]);
    if (hi + 1n > next) next = hi + 1n;
  }
  if (next <= max) out.push([next, max]);
  return out;
}

export function port(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`bad port ${n}`);
  const b = zeroed(2);
  b.writeUInt16BE(n);
  return b;
}

export const IPPROTO = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 } as const;

export function proto(p: keyof typeof IPPROTO | number): Buffer {
  const b = zeroed(1);
  b[0] = typeof p === 'number' ? p : IPPROTO[p];
  return b;
}

/** Integers nf_tables keeps in host order (meta mark, ct mark, numgen results). */
export function u32host(n: number): Buffer {
  const b = zeroed(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** Joins concatenation fields, each padded to a multiple of 4 bytes as the registers hold them. */
export function concat(...fields: Buffer[]): Buffer {
  let len = 0;
  for (const f of fields) len += (f.length + 3) & ~3;
  const out = zeroed(len);
  let off = 0;
  for (const f of fields) {
    f.copy(out, off);
    off += (f.length + 3) & ~3;
  }
  return out;
}

/** NUL-terminated string value (interface names). */
export function ifname(name: string): Buffer {
  const b = zeroed(16);
  b.write(name, 'utf8');
  return b;
}
