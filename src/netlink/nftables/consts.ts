// Numbers of the nf_tables netlink protocol (linux/netfilter/nf_tables.h,
// nfnetlink.h) that podwire's encoder uses. Every u32/u64 attribute of
// nf_tables travels in network byte order.

export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 16;
export const NFNL_MSG_BATCH_END = 17;

export const MSG = {
  NEWTABLE: 0,
  GETTABLE: 1,
  DELTABLE: 2,
  NEWCHAIN: 3,
  GETCHAIN: 4,
  DELCHAIN: 5,
  NEWRULE: 6,
  GETRULE: 7,
  DELRULE: 8,
  NEWSET: 9,
  GETSET: 10,
  DELSET: 11,
  NEWSETELEM: 12,
  GETSETELEM: 13,
  DELSETELEM: 14,
  NEWOBJ: 18,
  GETOBJ: 19,
  DELOBJ: 20,
  // Linux 6.3+: like DEL*, but succeeding when the object is already gone.
  DESTROYTABLE: 26,
  DESTROYCHAIN: 27,
  DESTROYRULE: 28,
  DESTROYSET: 29,
  DESTROYSETELEM: 30,
  DESTROYOBJ: 31,
} as const;

export const NFPROTO = { inet: 1, ip: 2, arp: 3, netdev: 5, bridge: 7, ip6: 10 } as const;

export const HOOK = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4, ingress: 0 } as const;

export const TABLE_ATTR = { NAME: 1, FLAGS: 2, USE: 3, HANDLE: 4, USERDATA: 6 } as const;
export const CHAIN_ATTR = { TABLE: 1, HANDLE: 2, NAME: 3, HOOK: 4, POLICY: 5, USE: 6, TYPE: 7, COUNTERS: 8, FLAGS: 10, USERDATA: 12 } as const;
export const HOOK_ATTR = { HOOKNUM: 1, PRIORITY: 2, DEV: 3 } as const;
export const RULE_ATTR = { TABLE: 1, CHAIN: 2, HANDLE: 3, EXPRESSIONS: 4, POSITION: 6, USERDATA: 7 } as const;
export const SET_ATTR = {
  TABLE: 1,
  NAME: 2,
  FLAGS: 3,
  KEY_TYPE: 4,
  KEY_LEN: 5,
  DATA_TYPE: 6,
  DATA_LEN: 7,
  POLICY: 8,
  DESC: 9,
  ID: 10,
  TIMEOUT: 11,
  GC_INTERVAL: 12,
  USERDATA: 13,
} as const;
export const SET_DESC_ATTR = { SIZE: 1, CONCAT: 2 } as const;
export const SET_FIELD_ATTR = { LEN: 1 } as const;
export const SET_FLAG = { ANONYMOUS: 0x1, CONSTANT: 0x2, INTERVAL: 0x4, MAP: 0x8, TIMEOUT: 0x10, EVAL: 0x20, OBJECT: 0x40, CONCAT: 0x80 } as const;
export const ELEM_LIST_ATTR = { TABLE: 1, SET: 2, ELEMENTS: 3 } as const;
export const ELEM_ATTR = { KEY: 1, DATA: 2, FLAGS: 3, TIMEOUT: 4, EXPIRATION: 5, USERDATA: 6, OBJREF: 9, KEY_END: 10 } as const;
export const ELEM_FLAG = { INTERVAL_END: 0x1, CATCHALL: 0x2 } as const;
export const LIST_ELEM = 1;
export const DATA_ATTR = { VALUE: 1, VERDICT: 2 } as const;
export const VERDICT_ATTR = { CODE: 1, CHAIN: 2 } as const;
export const NFT_DATA_VERDICT = 0xffffff00;
export const EXPR_ATTR = { NAME: 1, DATA: 2 } as const;

/** Verdict codes: netfilter's NF_DROP/NF_ACCEPT and nf_tables' own negative ones. */
export const VERDICT_CODE = { drop: 0, accept: 1, continue: -1, break: -2, jump: -3, goto: -4, return: -5 } as const;

export const REG = { VERDICT: 0, R1: 1, R2: 2, R3: 3, R4: 4 } as const;
/** First 32-bit register: NFT_REG32_00 overlays the start of NFT_REG_1. */
export const REG32_00 = 8;

// nftables' (userspace) data type ids, stored as NFTA_SET_KEY_TYPE so that
// `nft list` prints set elements the way it would print its own.
export const DATATYPE = {
  verdict: 1,
  nf_proto: 2,
  integer: 4,
  ipv4_addr: 7,
  ipv6_addr: 8,
  ether_addr: 9,
  inet_proto: 12,
  inet_service: 13,
  mark: 19,
  ifindex: 20,
} as const;
export const DATATYPE_BITS = 6;

// libnftnl "udata" TLVs: u8 type, u8 length, value (comments NUL-terminated).
export const UDATA_TABLE_COMMENT = 0;
export const UDATA_CHAIN_COMMENT = 0;
export const UDATA_RULE_COMMENT = 0;
export const UDATA_SET_KEYBYTEORDER = 0;
export const UDATA_SET_DATABYTEORDER = 1;
export const UDATA_SET_COMMENT = 7;
export const UDATA_ELEM_COMMENT = 0;
