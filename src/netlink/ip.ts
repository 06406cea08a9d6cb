// podwire's one IP address codec: IPv4/IPv6 text <-> bytes and the syntax
// checks. route/ip.ts (rtnetlink), nftables/values.ts (nf_tables values) and
// cni/spec/ip.ts (IPAM's bigints) are built on it. Hand-written, importing
// nothing: node:net would load Node's stream stack (~2 ms of every CNI plugin
// start) and ipaddr.js costs ~5 ms to load.
//
// The rule set is Go's (net.ParseIP / netip.ParseAddr), the strict one:
// - IPv4: four decimal octets 0-255, no leading zeros ("010.0.0.1" is
//   rejected: inet_aton would read it as octal, Go and node:net refuse it).
// - IPv6: hex groups of 1-4 digits, one "::" standing for at least one zero
//   group, optionally a dotted quad (same IPv4 rules) as the last 32 bits.
// - No zones: "fe80::1%eth0" is rejected. node:net accepts zones, but no
//   caller can use one (Kubernetes and CNI addresses never carry them, and
//   nf_tables/rtnetlink values have nowhere to put them). Apart from zones,
//   isIP accepts exactly what node:net's isIP does
//   (test/unit/cni-bridge-startup.test.ts compares them).
// - "::ffff:1.2.3.4" parses as the 16 bytes written; callers that want Go's
//   net.ParseIP view of it as IPv4 (cni/spec/ip.ts) check isV4Mapped.
// - Formatting is RFC 5952, which is also Go's canonical text: lowercase, no
//   leading zeros, the longest run of two or more zero groups as "::" (the
//   first on a tie), IPv4-mapped addresses in hex ("::ffff:a00:1").

export type IpFamily = 4 | 6;

/**
 * The dotted quad s[from, to) as a 32-bit number, or -1 when it is not one.
 * One pass over the characters, no allocation: the proxy parses ~10^5
 * addresses per sync.
 */
function dottedQuad(s: string, from: number, to: number): number {
  const n = to - from;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let parts = 0;
  for (let i = from; i <= to; i++) {
    const c = i < to ? s.charCodeAt(i) : 46; // a '.' after the end closes the last octet
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

/** An IPv4 address as a 32-bit number (first octet highest), or -1 when s is not one. */
export function parseIPv4(s: string): number {
  return dottedQuad(s, 0, s.length);
}

/** The value of one hex digit, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 32; // ASCII lowercase
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/**
 * Parses an IPv6 address into out[off, off + 16); false when s is not one
 * (out's bytes are then unspecified). Writing into the caller's buffer lets
 * nftables values come from Node's buffer pool. One pass, as netip does it.
 */
export function parseIPv6(s: string, out: Uint8Array, off = 0): boolean {
  const n = s.length;
  // The longest valid text is six full groups and a dotted quad (45 characters).
  if (n < 2 || n > 45) return false;
  let i = 0; // bytes written
  let gap = -1; // where "::" stands, in bytes
  let p = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false; // a lone leading ':'
    gap = 0;
    p = 2;
  }
  while (p < n) {
    // At the start of a group.
    let v = 0;
    let q = p;
    for (; q < n && q - p <= 4; q++) {
      const h = hexDigit(s.charCodeAt(q));
      if (h < 0) break;
      v = v * 16 + h;
    }
    if (q < n && s.charCodeAt(q) === 46) {
      // A dotted quad: the last 32 bits, in place of two groups.
      if (i > 12 || (gap < 0 && i !== 12)) return false;
      const v4 = dottedQuad(s, p, n);
      if (v4 < 0) return false;
      out[off + i] = v4 >>> 24;
      out[off + i + 1] = (v4 >>> 16) & 255;
      out[off + i + 2] = (v4 >>> 8) & 255;
      out[off + i + 3] = v4 & 255;
      i += 4;
      break;
    }
    const digits = q - p;
    if (digits === 0 || digits > 4 || i === 16) return false;
    out[off + i] = v >>> 8;
    out[off + i + 1] = v & 255;
    i += 2;
    if (q === n) break;
    if (s.charCodeAt(q) !== 58) return false;
    q++;
    if (q === n) return false; // a trailing single ':'
    if (s.charCodeAt(q) === 58) {
      if (gap >= 0) return false; // a second "::"
      gap = i;
      q++;
    }
    p = q;
  }
  if (i < 16) {
    if (gap < 0) return false; // too few groups
    // Move what followed "::" to the end and zero the groups it stands for.
    const shift = 16 - i;
    for (let j = i - 1; j >= gap; j--) out[off + j + shift] = out[off + j]!;
    for (let j = gap; j < gap + shift; j++) out[off + j] = 0;
  } else if (gap >= 0) {
    return false; // "::" must stand for at least one group
  }
  return true;
}

const scratch = new Uint8Array(16);

export function isIPv4(s: string): boolean {
  return dottedQuad(s, 0, s.length) >= 0;
}

export function isIPv6(s: string): boolean {
  return parseIPv6(s, scratch);
}

/** 4 or 6 for an address, 0 for anything else: node:net's isIP, without zones. */
export function isIP(s: string): 0 | IpFamily {
  return isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0;
}

/** Whether the 16 bytes at b[off] are an IPv4-mapped address (::ffff:a.b.c.d). */
export function isV4Mapped(b: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 255 && b[off + 11] === 255;
}

/** Formats 4 or 16 address bytes: a dotted quad, or IPv6 in RFC 5952 (and Go's) canonical form. */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new Error(`an IP address has 4 or 16 bytes, not ${b.length}`);
  // The longest run of two or more zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  let run = 0;
  for (let g = 0; g < 8; g++) {
    if (b[2 * g] === 0 && b[2 * g + 1] === 0) {
      if (++run > bestLen) {
        bestLen = run;
        best = g - run + 1;
      }
    } else {
      run = 0;
    }
  }
  let out = '';
  for (let g = 0; g < 8; g++) {
    if (g === best) {
      out += '::';
      g += bestLen - 1;
      continue;
    }
    if (g > 0 && g !== best + bestLen) out += ':';
    out += ((b[2 * g]! << 8) | b[2 * g + 1]!).toString(16);
  }
  return out;
}
