// Encodes podwire's Expr model into nf_tables expression attributes
// (NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } }), one small
// encoder per expression kind, as the kernel's nft_<name>.c parses them.
import { AttrBuilder } from '../attrs.js';
import { DATA_ATTR, EXPR_ATTR, LIST_ELEM, NFPROTO, NFT_DATA_VERDICT, VERDICT_ATTR, VERDICT_CODE } from './consts.js';
import type { CtKey, Expr, MetaKey, Verdict } from './types.js';

const META_KEY: Record<MetaKey, number> = {
  len: 0,
  protocol: 1,
  mark: 3,
  iif: 4,
  oif: 5,
  iifname: 6,
  oifname: 7,
  iiftype: 8,
  oiftype: 9,
  nfproto: 15,
  l4proto: 16,
  pkttype: 19,
};
const CT_KEY: Record<CtKey, number> = {
  state: 0,
  direction: 1,
  status: 2,
  mark: 3,
  l3protocol: 7,
  src: 8,
  dst: 9,
  protocol: 10,
  'proto-src': 11,
  'proto-dst': 12,
};
const CMP_OP = { eq: 0, neq: 1, lt: 2, lte: 3, gt: 4, gte: 5 } as const;
const PAYLOAD_BASE = { ll: 0, network: 1, transport: 2 } as const;
const FIB_FLAG = { saddr: 1, daddr: 2, mark: 4, iif: 8, oif: 16, present: 32 } as const;
const FIB_RESULT = { oif: 1, oifname: 2, type: 3 } as const;
const LIMIT_UNIT = { second: 1, minute: 60, hour: 3600, day: 86400 } as const;
const REJECT_TYPE = { icmp: 0, 'tcp-rst': 1, icmpx: 2 } as const;
const DYNSET_OP = { add: 0, update: 1, delete: 2 } as const;

export const NF_NAT_RANGE_MAP_IPS = 1 << 0;
export const NF_NAT_RANGE_PROTO_SPECIFIED = 1 << 1;
export const NF_NAT_RANGE_PROTO_RANDOM = 1 << 2;
export const NF_NAT_RANGE_PERSISTENT = 1 << 3;
export const NF_NAT_RANGE_PROTO_RANDOM_FULLY = 1 << 4;

/** NFTA_DATA_VALUE inside the given attribute. */
export function putValue(b: AttrBuilder, type: number, value: Buffer): void {
  b.nested(type, (d) => d.bytes(DATA_ATTR.VALUE, value));
}

/** NFTA_DATA_VERDICT inside the given attribute. */
export function putVerdict(b: AttrBuilder, type: number, v: Verdict): void {
  b.nested(type, (d) =>
    d.nested(DATA_ATTR.VERDICT, (vv) => {
      vv.be32(VERDICT_ATTR.CODE, VERDICT_CODE[v.kind] >>> 0);
      if (v.kind === 'jump' || v.kind === 'goto') vv.str(VERDICT_ATTR.CHAIN, v.chain);
    }),
  );
}

export function verdictDataType(): number {
  return NFT_DATA_VERDICT;
}

function body(e: Expr): { name: string; fill?: (b: AttrBuilder) => void } {
  switch (e.op) {
    case 'payload':
      return {
        name: 'payload',
        fill: (b) => b.be32(1, e.dreg).be32(2, PAYLOAD_BASE[e.base]).be32(3, e.offset).be32(4, e.len),
      };
    case 'meta':
      return { name: 'meta', fill: (b) => b.be32(1, e.dreg).be32(2, META_KEY[e.key]) };
    case 'meta-set':
      return { name: 'meta', fill: (b) => b.be32(2, META_KEY[e.key]).be32(3, e.sreg) };
    case 'cmp':
      return {
        name: 'cmp',
        fill: (b) => {
          b.be32(1, e.sreg).be32(2, CMP_OP[e.cmp]);
          putValue(b, 3, e.data);
        },
      };
    case 'bitwise':
      if (e.mask.length !== e.len || e.xor.length !== e.len) throw new Error(`bitwise: mask and xor must be ${e.len} bytes`);
      return {
        name: 'bitwise',
        fill: (b) => {
          b.be32(1, e.sreg).be32(2, e.dreg).be32(3, e.len);
          putValue(b, 4, e.mask);
          putValue(b, 5, e.xor);
        },
      };
    case 'range':
      return {
        name: 'range',
        fill: (b) => {
          b.be32(1, e.sreg).be32(2, e.neq ? 1 : 0);
          putValue(b, 3, e.from);
          putValue(b, 4, e.to);
        },
      };
    case 'lookup':
      return {
        name: 'lookup',
        fill: (b) => {
          b.str(1, e.set).be32(2, e.sreg);
          if (e.dreg !== undefined) b.be32(3, e.dreg);
          if (e.invert) b.be32(5, 1);
        },
      };
    case 'immediate':
      return {
        name: 'immediate',
        fill: (b) => {
          b.be32(1, e.dreg);
          putValue(b, 2, e.data);
        },
      };
    case 'verdict':
      return {
        name: 'immediate',
        fill: (b) => {
          b.be32(1, 0);
          putVerdict(b, 2, e.verdict);
        },
      };
    case 'nat':
      return {
        name: 'nat',
        fill: (b) => {
          b.be32(1, e.type === 'snat' ? 0 : 1).be32(2, NFPROTO[e.family]);
          if (e.addrMin !== undefined) b.be32(3, e.addrMin);
          if (e.addrMax !== undefined) b.be32(4, e.addrMax);
          if (e.protoMin !== undefined) b.be32(5, e.protoMin);
          if (e.protoMax !== undefined) b.be32(6, e.protoMax);
          if (e.flags) b.be32(7, e.flags);
        },
      };
    case 'masq':
      return {
        name: 'masq',
        fill: (b) => {
          if (e.flags) b.be32(1, e.flags);
          if (e.protoMin !== undefined) b.be32(2, e.protoMin);
          if (e.protoMax !== undefined) b.be32(3, e.protoMax);
        },
      };
    case 'numgen':
      return {
        name: 'numgen',
        fill: (b) => {
          b.be32(1, e.dreg).be32(2, e.mod).be32(3, e.type === 'inc' ? 0 : 1);
          if (e.offset) b.be32(4, e.offset);
        },
      };
    case 'ct':
      return {
        name: 'ct',
        fill: (b) => {
          b.be32(1, e.dreg).be32(2, CT_KEY[e.key]);
          if (e.direction) b.u8(3, e.direction === 'original' ? 0 : 1);
        },
      };
    case 'ct-set':
      return { name: 'ct', fill: (b) => b.be32(2, CT_KEY[e.key]).be32(4, e.sreg) };
    case 'counter':
      return { name: 'counter', fill: (b) => b.be64(1, 0).be64(2, 0) };
    case 'reject':
      return { name: 'reject', fill: (b) => b.be32(1, REJECT_TYPE[e.type]).u8(2, e.code) };
    case 'dynset':
      return {
        name: 'dynset',
        fill: (b) => {
          b.str(1, e.set).be32(3, DYNSET_OP[e.dynop]).be32(4, e.sregKey);
          if (e.sregData !== undefined) b.be32(5, e.sregData);
          if (e.timeoutMs !== undefined) b.be64(6, BigInt(e.timeoutMs));
        },
      };
    case 'limit':
      return {
        name: 'limit',
        fill: (b) => {
          b.be64(1, BigInt(e.rate)).be64(2, BigInt(LIMIT_UNIT[e.unit])).be32(3, e.burst ?? (e.bytes ? 0 : 5)).be32(4, e.bytes ? 1 : 0);
          if (e.invert) b.be32(5, 1);
        },
      };
    case 'fib':
      return {
        name: 'fib',
        fill: (b) => b.be32(1, e.dreg).be32(2, FIB_RESULT[e.result]).be32(3, e.flags.reduce((f, k) => f | FIB_FLAG[k], 0)),
      };
  }
}

/** Appends one expression as an NFTA_LIST_ELEM of the enclosing list. */
export function putExpr(list: AttrBuilder, e: Expr): void {
  const { name, fill } = body(e);
  list.nested(LIST_ELEM, (x) => {
    x.str(EXPR_ATTR.NAME, name);
    if (fill) x.nested(EXPR_ATTR.DATA, fill);
  });
}
