// Address codecs for rtnetlink: IP text <-> bytes as ParsedIp, CIDRs, masks
// and MAC addresses. The address syntax and formatting are netlink/ip.ts's
// (Go's rules: no leading zeros in IPv4, no zones); "::ffff:a.b.c.d" stays
// the IPv6 address it is written as, 16 bytes.
import { formatIp, parseIPv4, parseIPv6 } from '../ip.js';

export { formatIp };

export interface ParsedIp {
  family: 4 | 6;
  bytes: Buffer;
}

export interface ParsedCidr extends ParsedIp {
  prefixLen: number;
}

/** Parses an IPv4 or IPv6 address; null when it is neither. */
export function tryParseIp(s: string): ParsedIp | null {
  const v4 = parseIPv4(s);
  if (v4 >= 0) {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(v4);
    return { family: 4, bytes };
  }
  const bytes = Buffer.alloc(16);
  return parseIPv6(s, bytes) ? { family: 6, bytes } : null;
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
