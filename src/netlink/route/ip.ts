// Address codecs for rtnetlink: IPv4/IPv6 text <-> bytes, CIDRs and MAC
// addresses. Hand-written rather than ipaddr.js so the CNI plugin's start-up
// does not pay for a module load (~5 ms) on every pod.

export interface ParsedIp {
  family: 4 | 6;
  bytes: Buffer;
}

export interface ParsedCidr extends ParsedIp {
  prefixLen: number;
}

function parseIpv4(s: string): Buffer | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const b = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    b[i] = n;
  }
  return b;
}

function parseIpv6(s: string): Buffer | null {
  if (s.length < 2 || s.length > 45) return null;
  let head = s;
  // An embedded IPv4 tail (::ffff:1.2.3.4) stands for the last two groups.
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return null;
    head = `${s.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  if (!left || !right) return null;
  const all = [...left, ...right];
  const want = 8;
  let words: number[];
  if (halves.length === 2) {
    if (all.length > want - 1) return null;
    words = [...left, ...new Array<number>(want - all.length).fill(0), ...right];
  } else {
    if (all.length !== want) return null;
    words = all;
  }
  const b = Buffer.alloc(16);
  words.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
}

/** Parses an IPv4 or IPv6 address; null when it is neither. */
export function tryParseIp(s: string): ParsedIp | null {
  if (s.includes(':')) {
    const b = parseIpv6(s);
    return b ? { family: 6, bytes: b } : null;
  }
  const b = parseIpv4(s);
  return b ? { family: 4, bytes: b } : null;
}

export function parseIp(s: string): ParsedIp {
  const p = tryParseIp(s);
  if (!p) throw new Error(`not an IP address: ${JSON.stringify(s)}`);
  return p;
}

/** Parses "a/len" (host bits may be set, as in an interface address). */
export function parseCidr(s: string): ParsedCidr {
  const slash = s.indexOf('/');
  if (slash < 0) throw new Error(`not a CIDR (no /prefix): ${JSON.stringify(s)}`);
  const ip = tryParseIp(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(lenText)) throw new Error(`not a CIDR: ${JSON.stringify(s)}`);
  const prefixLen = Number(lenText);
  if (prefixLen > (ip.family === 4 ? 32 : 128)) throw new Error(`prefix length out of range in ${JSON.stringify(s)}`);
  return { ...ip, prefixLen };
}

/** Formats 4 or 16 address bytes; IPv6 in RFC 5952 form (longest zero run as ::). */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new Error(`cannot format a ${b.length}-byte address`);
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** The network address of bytes/prefixLen (host bits cleared). */
export function maskBytes(bytes: Uint8Array, prefixLen: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefixLen - i * 8));
    out[i] = out[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/** The IPv4 broadcast address of bytes/prefixLen. */
export function broadcast4(bytes: Uint8Array, prefixLen: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < 4; i++) {
    const bits = Math.max(0, Math.min(8, prefixLen - i * 8));
    out[i] = out[i]! | (0xff >> bits);
  }
  return out;
}

export function parseMac(s: string): Buffer {
  const parts = s.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new Error(`not a MAC address: ${JSON.stringify(s)}`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(b: Uint8Array | undefined): string {
  if (!b) return '';
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}
