// podwire's typed model of nf_tables objects: what a caller puts in a
// transaction. Values (set keys, cmp data) are raw bytes in the kernel's
// layout; values.ts builds them from addresses, ports and protocols.

export type Family = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';
export type HookName = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
export type ChainType = 'filter' | 'nat' | 'route';

export interface TableRef {
  family: Family;
  table: string;
}

export interface Table {
  family: Family;
  name: string;
  comment?: string;
}

export interface BaseChainHook {
  type: ChainType;
  hook: HookName;
  priority: number;
  policy?: 'accept' | 'drop';
}

export interface Chain extends TableRef {
  name: string;
  /** Present for base chains, which the kernel calls from a netfilter hook. */
  hook?: BaseChainHook;
  comment?: string;
}

/** nftables data type names usable as set keys and map data. */
export type DataTypeName = 'ipv4_addr' | 'ipv6_addr' | 'inet_proto' | 'inet_service' | 'mark' | 'ifindex' | 'integer' | 'ether_addr' | 'nf_proto';

export interface SetDef extends TableRef {
  name: string;
  /** One type, or several for a concatenation (`ipv4_addr . inet_proto . inet_service`). */
  key: DataTypeName[];
  /** Present for maps: the data type(s), or 'verdict' for verdict maps. */
  data?: DataTypeName[] | 'verdict';
  interval?: boolean;
  /** Elements may carry timeouts; `timeoutMs` is the default. */
  timeout?: boolean;
  timeoutMs?: number;
  /** Updated from the packet path (dynset); nft calls it `flags dynamic`. */
  dynamic?: boolean;
  constant?: boolean;
  size?: number;
  comment?: string;
}

export type Verdict =
  | { kind: 'accept' }
  | { kind: 'drop' }
  | { kind: 'continue' }
  | { kind: 'return' }
  | { kind: 'jump'; chain: string }
  | { kind: 'goto'; chain: string };

export interface Element {
  /** Key bytes (for concatenations: each field padded to 4 bytes). */
  key: Buffer;
  /** Inclusive end of a range (interval sets only). */
  keyEnd?: Buffer;
  /** Map data: value bytes or a verdict. */
  data?: Buffer | Verdict;
  timeoutMs?: number;
  comment?: string;
}

export interface ElementList extends TableRef {
  set: string;
  elements: Element[];
}

export type Register = number;

export type PayloadBase = 'll' | 'network' | 'transport';
export type CmpOp = 'eq' | 'neq' | 'lt' | 'lte' | 'gt' | 'gte';
export type MetaKey =
  | 'len'
  | 'protocol'
  | 'mark'
  | 'iif'
  | 'oif'
  | 'iifname'
  | 'oifname'
  | 'nfproto'
  | 'l4proto'
  | 'pkttype'
  | 'iiftype'
  | 'oiftype';
export type CtKey = 'state' | 'direction' | 'status' | 'mark' | 'l3protocol' | 'protocol' | 'proto-src' | 'proto-dst' | 'src' | 'dst';

/** One nf_tables expression; registers are the kernel's numbers (1–4, or 8–23 for 32-bit ones). */
export type Expr =
  | { op: 'payload'; base: PayloadBase; offset: number; len: number; dreg: Register }
  | { op: 'meta'; key: MetaKey; dreg: Register }
  | { op: 'meta-set'; key: MetaKey; sreg: Register }
  | { op: 'cmp'; sreg: Register; cmp: CmpOp; data: Buffer }
  | { op: 'bitwise'; sreg: Register; dreg: Register; len: number; mask: Buffer; xor: Buffer }
  | { op: 'range'; sreg: Register; neq?: boolean; from: Buffer; to: Buffer }
  | { op: 'lookup'; set: string; sreg: Register; dreg?: Register; invert?: boolean }
  | { op: 'immediate'; dreg: Register; data: Buffer }
  | { op: 'verdict'; verdict: Verdict }
  | {
      op: 'nat';
      type: 'snat' | 'dnat';
      family: 'ip' | 'ip6';
      addrMin?: Register;
      addrMax?: Register;
      protoMin?: Register;
      protoMax?: Register;
      /** NF_NAT_RANGE_* flags beyond the ones implied by the registers (e.g. persistent, random). */
      flags?: number;
    }
  | { op: 'masq'; flags?: number; protoMin?: Register; protoMax?: Register }
  | { op: 'numgen'; dreg: Register; mod: number; type: 'inc' | 'random'; offset?: number }
  | { op: 'ct'; key: CtKey; dreg: Register; direction?: 'original' | 'reply' }
  | { op: 'ct-set'; key: 'mark'; sreg: Register }
  | { op: 'counter' }
  | { op: 'reject'; type: 'icmp' | 'tcp-rst' | 'icmpx'; code: number }
  | { op: 'dynset'; set: string; dynop: 'add' | 'update' | 'delete'; sregKey: Register; sregData?: Register; timeoutMs?: number }
  | { op: 'limit'; rate: number; unit: 'second' | 'minute' | 'hour' | 'day'; burst?: number; bytes?: boolean; invert?: boolean }
  | { op: 'fib'; flags: Array<'saddr' | 'daddr' | 'mark' | 'iif' | 'oif' | 'present'>; result: 'oif' | 'oifname' | 'type'; dreg: Register };

export interface Rule extends TableRef {
  chain: string;
  exprs: Expr[];
  comment?: string;
}
