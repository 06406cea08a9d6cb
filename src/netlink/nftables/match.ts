// Expression sequences for common matches, with the dependencies nft itself
// adds (an inet table's `ip saddr` first checks nfproto; `tcp dport` first
// checks l4proto), so `nft list` prints them back as the plain match.
import { REG, REG32_00 } from './consts.js';
import type { CmpOp, Expr, Register, Verdict } from './types.js';
import { proto } from './values.js';

export type AddrField = 'saddr' | 'daddr';

const NFPROTO_BYTE = { ip: 2, ip6: 10 } as const;

export function matchNfproto(family: 'ip' | 'ip6'): Expr[] {
  return [
    { op: 'meta', key: 'nfproto', dreg: REG.R1 },
    { op: 'cmp', sreg: REG.R1, cmp: 'eq', data: Buffer.of(NFPROTO_BYTE[family]) },
  ];
}

export function matchL4proto(p: 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6'): Expr[] {
  return [
    { op: 'meta', key: 'l4proto', dreg: REG.R1 },
    { op: 'cmp', sreg: REG.R1, cmp: 'eq', data: proto(p) },
  ];
}

/** Loads `ip saddr` / `ip6 daddr` … into dreg (no dependency). */
export function loadAddr(family: 'ip' | 'ip6', field: AddrField, dreg: Register): Expr {
  if (family === 'ip') return { op: 'payload', base: 'network', offset: field === 'saddr' ? 12 : 16, len: 4, dreg };
  return { op: 'payload', base: 'network', offset: field === 'saddr' ? 8 : 24, len: 16, dreg };
}

/** Loads the transport source or destination port into dreg (no dependency). */
export function loadPort(field: 'sport' | 'dport', dreg: Register): Expr {
  return { op: 'payload', base: 'transport', offset: field === 'sport' ? 0 : 2, len: 2, dreg };
}

/**
 * Registers for the fields of a concatenation, as nft allocates them: the
 * first in NFT_REG_1, the next in the 32-bit registers that follow.
 */
export function concatRegisters(fieldLens: readonly number[]): Register[] {
  const regs: Register[] = [];
  let word = 0;
  for (const len of fieldLens) {
    regs.push(word === 0 ? REG.R1 : REG32_00 + word);
    word += Math.ceil(len / 4);
  }
  return regs;
}

export function cmp(sreg: Register, op: CmpOp, data: Buffer): Expr {
  return { op: 'cmp', sreg, cmp: op, data };
}

export function verdict(v: Verdict): Expr {
  return { op: 'verdict', verdict: v };
}

/** `<family> <field> . <family> <field> … @set` for address-only concatenations. */
export function lookupAddrs(family: 'ip' | 'ip6', fields: readonly AddrField[], set: string, opts: { invert?: boolean } = {}): Expr[] {
  const len = family === 'ip' ? 4 : 16;
  const regs = concatRegisters(fields.map(() => len));
  return [...fields.map((f, i) => loadAddr(family, f, regs[i]!)), { op: 'lookup', set, sreg: REG.R1, invert: opts.invert }];
}
