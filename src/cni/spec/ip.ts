// IP addresses as bigints: enough to parse, print (Go's canonical form, so file names match
// host-local's), compare and step through ranges without a dependency.

export type IpFamily = 4 | 6;
export interface IP {
  family: IpFamily;
  value: bigint;
}
export interface IPNet {
  /** The address as written (host bits may be set, as in "10.1.0.5/24"). */
  ip: IP;
  prefix: number;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseV4(s: string): bigint | null {
  const m = V4.exec(s);
  if (!m) return null;
  let v = 0n;
  for (let i = 1; i <= 4; i++) {
    const part = m[i] as string;
    if (part.length > 1 && part.startsWith('0')) return null; // Go rejects leading zeros
    const n = Number(part);
    if (n > 255) return null;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | null {
  if (s.includes('%')) return null;
  let head = s;
  let tailV4: bigint | null = null;
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.slice(lastColon + 1).includes('.')) {
    tailV4 = parseV4(s.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const group = (g: string): number | null => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : null);
  const left = halves[0] === '' ? [] : (halves[0] as string).split(':');
  const right = halves.length === 2 ? (halves[1] === '' ? [] : (halves[1] as string).split(':')) : [];
  const total = left.length + right.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return null;
  const groups: number[] = [];
  for (const g of left) {
    const n = group(g);
    if (n === null) return null;
    groups.push(n);
  }
  for (let i = 0; i < 8 - total; i++) groups.push(0);
  for (const g of right) {
    const n = group(g);
    if (n === null) return null;
    groups.push(n);
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tailV4 !== null) v = (v & ~0xffffffffn) | tailV4;
  return v;
}


/** Parses an IPv4 or IPv6 address; "::ffff:a.b.c.d" counts as IPv4, as in Go. */
export function parseIP(s: string): IP | null {
  if (s.includes(':')) {
    const v = parseV6(s);
    if (v === null) return null;
    if (v >> 32n === 0xffffn) return { family: 4, value: v & 0xffffffffn };
    return { family: 6, value: v };
  }
  const v = parseV4(s);
  return v === null ? null : { family: 4, value: v };
}

export function formatIP(ip: IP): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [(v >> 24n) & 255n, (v >> 16n) & 255n, (v >> 8n) & 255n, v & 255n].join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // Compress the longest run (of at least two) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((n) => n.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
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

