// Values in the byte layout nf_tables compares: addresses and ports in network
// order, protocols as one byte, concatenations with each field padded to a
// 32-bit register. Also CIDR arithmetic for interval elements.

export type IpFamily = 4 | 6;

/**
 * A zeroed buffer carved from Node's shared pool. Buffer.alloc gives every
 * value its own ArrayBuffer (~85 bytes of heap each beside the view), and a
 * full sync at 10k services holds ~230k of these values at once.
 */
function zeroed(n: number): Buffer {
  return Buffer.allocUnsafe(n).fill(0);
}

// Address syntax checks that accept exactly what node:net's isIPv4/isIPv6 do
// (test/unit/cni-bridge-startup.test.ts compares them): importing node:net
// would load Node's whole stream stack, ~2 ms of every CNI plugin start.
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;
const V6_ZONE = /^[0-9a-zA-Z.:-]+$/;

function isIPv4(s: string): boolean {
  return parseIPv4(s) >= 0;
}

/**
 * A dotted quad as a 32-bit number, or -1: four octets 0-255 without leading
 * zeros, in one pass over the characters (the proxy parses ~10^5 per sync).
 */
function parseIPv4(s: string): number {
  const n = s.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? s.charCodeAt(i) : 46; // a '.' after the end closes the last octet
    if (c === 46) {
      if (digits === 0 || octet > 255) return -1;
      value = value * 256 + octet;
      parts++;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // a leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3) return -1;
    } else {
      return -1;
    }
  }
  return parts === 4 ? value : -1;
}

/** Colon-separated hex groups, one `::` at most, an optional dotted quad last and an optional %zone. */
function isIPv6(s: string): boolean {
  const pct = s.indexOf('%');
  if (pct >= 0 && !V6_ZONE.test(s.slice(pct + 1))) return false;
  const addr = pct >= 0 ? s.slice(0, pct) : s;
  const gap = addr.indexOf('::');
  if (gap >= 0 && addr.indexOf('::', gap + 1) >= 0) return false;
  const pieces = gap < 0 ? addr.split(':') : [...sides(addr.slice(0, gap)), ...sides(addr.slice(gap + 2))];
  let groups = 0;
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    if (i === pieces.length - 1 && p.includes('.') && !addr.endsWith('::')) {
      if (!isIPv4(p)) return false;
      groups += 2;
    } else if (V6_GROUP.test(p)) {
      groups += 1;
    } else {
      return false;
    }
  }
  return gap < 0 ? groups === 8 : groups <= 7;
}

/** The groups on one side of `::` (none when that side is empty). */
function sides(text: string): string[] {
  return text === '' ? [] : text.split(':');
}

export function ipv4(s: string): Buffer {
  const v = parseIPv4(s);
  if (v < 0) throw new Error(`not an IPv4 address: ${s}`);
  const b = zeroed(4);
  b.writeUInt32BE(v);
  return b;
}

export function ipv6(s: string): Buffer {
  if (!isIPv6(s)) throw new Error(`not an IPv6 address: ${s}`);
  let text = s;
  const out = zeroed(16);
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = ipv4(dotted[1]!);
    text = text.slice(0, dotted.index) + `${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function ip(s: string): Buffer {
  const v = parseIPv4(s);
  if (v < 0) return ipv6(s);
  const b = zeroed(4);
  b.writeUInt32BE(v);
  return b;
}

export function ipFamily(s: string): IpFamily {
  if (isIPv4(s)) return 4;
  if (isIPv6(s)) return 6;
  throw new Error(`not an IP address: ${s}`);
}

export function ipToString(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) throw new Error(`an IP address has 4 or 16 bytes, not ${b.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
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
