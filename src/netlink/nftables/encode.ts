// Turns model objects into nf_tables netlink messages (type, flags, payload),
// the payload being nfgenmsg + attributes as nf_tables_api.c parses them.
import { AttrBuilder } from '../attrs.js';
import { NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL } from '../message.js';
import type { BatchPart } from '../socket.js';
import {
  CHAIN_ATTR,
  DATATYPE,
  DATATYPE_BITS,
  ELEM_ATTR,
  ELEM_FLAG,
  ELEM_LIST_ATTR,
  HOOK,
  HOOK_ATTR,
  LIST_ELEM,
  MSG,
  NFNL_SUBSYS_NFTABLES,
  NFPROTO,
  NFT_DATA_VERDICT,
  RULE_ATTR,
  SET_ATTR,
  SET_DESC_ATTR,
  SET_FIELD_ATTR,
  SET_FLAG,
  TABLE_ATTR,
  UDATA_CHAIN_COMMENT,
  UDATA_ELEM_COMMENT,
  UDATA_RULE_COMMENT,
  UDATA_SET_COMMENT,
  UDATA_SET_DATABYTEORDER,
  UDATA_SET_KEYBYTEORDER,
  UDATA_TABLE_COMMENT,
} from './consts.js';
import { putExpr, putValue, putVerdict } from './expr.js';
import type { Chain, DataTypeName, Element, Family, Rule, SetDef, Table } from './types.js';

/** Bytes of each data type as a set key or register value. */
const TYPE_LEN: Record<DataTypeName, number> = {
  ipv4_addr: 4,
  ipv6_addr: 16,
  inet_proto: 1,
  inet_service: 2,
  mark: 4,
  ifindex: 4,
  integer: 4,
  ether_addr: 6,
  nf_proto: 1,
};
/** Types nftables stores in host byte order (told to nft through set userdata). */
const HOST_ORDER = new Set<DataTypeName>(['mark', 'ifindex', 'integer', 'nf_proto']);

export function typeLen(t: DataTypeName): number {
  return TYPE_LEN[t];
}

/** Key (or data) length in bytes: concatenated fields each take whole 32-bit registers. */
export function typesLen(types: readonly DataTypeName[]): number {
  if (types.length === 1) return TYPE_LEN[types[0]!];
  return types.reduce((n, t) => n + ((TYPE_LEN[t] + 3) & ~3), 0);
}

/** nftables' id of a (possibly concatenated) type: the first field in the highest bits. */
export function typesId(types: readonly DataTypeName[]): number {
  return types.reduce((id, t) => id * (1 << DATATYPE_BITS) + DATATYPE[t], 0);
}

export function nfgenmsg(family: Family | 'unspec', resId = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(family === 'unspec' ? 0 : NFPROTO[family], 0);
  b.writeUInt8(0, 1); // NFNETLINK_V0
  b.writeUInt16BE(resId, 2);
  return b;
}

export function msgType(msg: number): number {
  return (NFNL_SUBSYS_NFTABLES << 8) | msg;
}

/** libnftnl-style userdata: a sequence of (u8 type, u8 length, value). */
function udata(items: Array<[number, Buffer]>): Buffer {
  return Buffer.concat(
    items.map(([type, v]) => {
      if (v.length > 255) throw new Error(`userdata item too long (${v.length} bytes)`);
      return Buffer.concat([Buffer.of(type, v.length), v]);
    }),
  );
}

function commentBytes(c: string, what: string): Buffer {
  const b = Buffer.from(c + '\0', 'utf8');
  if (b.length > 128) throw new Error(`${what}: comment longer than 127 bytes: ${JSON.stringify(c)}`);
  return b;
}

function u32host(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function part(msg: number, family: Family, flags: number, fill: (b: AttrBuilder) => void): BatchPart {
  const b = new AttrBuilder().raw(nfgenmsg(family));
  fill(b);
  return { type: msgType(msg), flags: flags | NLM_F_ACK, payload: b.build() };
}

export interface NewOptions {
  /** Fail with EEXIST when the object exists (nft's `create`); default: add-or-keep (nft's `add`). */
  exclusive?: boolean;
}

function newFlags(o: NewOptions): number {
  return NLM_F_CREATE | (o.exclusive ? NLM_F_EXCL : 0);
}

export function newTable(t: Table, o: NewOptions = {}): BatchPart {
  return part(MSG.NEWTABLE, t.family, newFlags(o), (b) => {
    b.str(TABLE_ATTR.NAME, t.name).be32(TABLE_ATTR.FLAGS, 0);
    if (t.comment) b.bytes(TABLE_ATTR.USERDATA, udata([[UDATA_TABLE_COMMENT, commentBytes(t.comment, `table ${t.name}`)]]));
  });
}

export function delTable(family: Family, name: string, ifExists = false): BatchPart {
  return part(ifExists ? MSG.DESTROYTABLE : MSG.DELTABLE, family, 0, (b) => b.str(TABLE_ATTR.NAME, name));
}

export function newChain(c: Chain, o: NewOptions = {}): BatchPart {
  return part(MSG.NEWCHAIN, c.family, newFlags(o), (b) => {
    b.str(CHAIN_ATTR.TABLE, c.table).str(CHAIN_ATTR.NAME, c.name);
    if (c.hook) {
      const h = c.hook;
      b.nested(CHAIN_ATTR.HOOK, (hb) => hb.be32(HOOK_ATTR.HOOKNUM, HOOK[h.hook]).be32(HOOK_ATTR.PRIORITY, h.priority >>> 0));
      b.be32(CHAIN_ATTR.POLICY, h.policy === 'drop' ? 0 : 1);
      b.str(CHAIN_ATTR.TYPE, h.type);
    }
    if (c.comment) b.bytes(CHAIN_ATTR.USERDATA, udata([[UDATA_CHAIN_COMMENT, commentBytes(c.comment, `chain ${c.name}`)]]));
  });
}

export function delChain(family: Family, table: string, name: string, ifExists = false): BatchPart {
  return part(ifExists ? MSG.DESTROYCHAIN : MSG.DELCHAIN, family, 0, (b) => b.str(CHAIN_ATTR.TABLE, table).str(CHAIN_ATTR.NAME, name));
}

/** Deletes every rule of a chain (nft's `flush chain`). */
export function flushChain(family: Family, table: string, chain: string): BatchPart {
  return part(MSG.DELRULE, family, 0, (b) => b.str(RULE_ATTR.TABLE, table).str(RULE_ATTR.CHAIN, chain));
}

export function newRule(r: Rule): BatchPart {
  return part(MSG.NEWRULE, r.family, NLM_F_CREATE | NLM_F_APPEND, (b) => {
    b.str(RULE_ATTR.TABLE, r.table).str(RULE_ATTR.CHAIN, r.chain);
    b.nested(RULE_ATTR.EXPRESSIONS, (list) => r.exprs.forEach((e) => putExpr(list, e)));
    if (r.comment) b.bytes(RULE_ATTR.USERDATA, udata([[UDATA_RULE_COMMENT, commentBytes(r.comment, `rule in ${r.chain}`)]]));
  });
}

export function setFlags(s: SetDef): number {
  let f = 0;
  if (s.constant) f |= SET_FLAG.CONSTANT;
  if (s.interval) f |= SET_FLAG.INTERVAL;
  if (s.data !== undefined) f |= SET_FLAG.MAP;
  if (s.timeout || s.timeoutMs !== undefined) f |= SET_FLAG.TIMEOUT;
  if (s.dynamic) f |= SET_FLAG.EVAL;
  // As nft: only concatenated intervals (the pipapo backend) carry the flag; hashed concatenations do not.
  if (s.key.length > 1 && s.interval) f |= SET_FLAG.CONCAT;
  return f;
}

let nextSetId = 0;

export function newSet(s: SetDef, o: NewOptions = {}): BatchPart {
  return part(MSG.NEWSET, s.family, newFlags(o), (b) => {
    b.str(SET_ATTR.TABLE, s.table).str(SET_ATTR.NAME, s.name);
    // The kernel requires an id naming the set within the transaction.
    nextSetId = (nextSetId + 1) % 0x7fffffff || 1;
    b.be32(SET_ATTR.ID, nextSetId);
    b.be32(SET_ATTR.FLAGS, setFlags(s));
    b.be32(SET_ATTR.KEY_TYPE, typesId(s.key)).be32(SET_ATTR.KEY_LEN, typesLen(s.key));
    if (s.data === 'verdict') {
      b.be32(SET_ATTR.DATA_TYPE, NFT_DATA_VERDICT).be32(SET_ATTR.DATA_LEN, 0);
    } else if (s.data) {
      b.be32(SET_ATTR.DATA_TYPE, typesId(s.data)).be32(SET_ATTR.DATA_LEN, typesLen(s.data));
    }
    // Field lengths go with the CONCAT flag, for concatenated intervals only (as nft sends them).
    const fields = s.key.length > 1 && s.interval;
    if (fields || s.size !== undefined) {
      b.nested(SET_ATTR.DESC, (d) => {
        if (s.size !== undefined) d.be32(SET_DESC_ATTR.SIZE, s.size);
        if (fields) {
          d.nested(SET_DESC_ATTR.CONCAT, (c) => s.key.forEach((t) => c.nested(LIST_ELEM, (f) => f.be32(SET_FIELD_ATTR.LEN, TYPE_LEN[t]))));
        }
      });
    }
    if (s.timeoutMs !== undefined) b.be64(SET_ATTR.TIMEOUT, BigInt(s.timeoutMs));
    const ud: Array<[number, Buffer]> = [];
    // nft prints host-order integers correctly only when told their byte order
    // (libnftnl keeps these userdata numbers in host order).
    ud.push([UDATA_SET_KEYBYTEORDER, u32host(s.key.some((t) => HOST_ORDER.has(t)) ? 1 : 2)]);
    if (Array.isArray(s.data)) ud.push([UDATA_SET_DATABYTEORDER, u32host(s.data.some((t) => HOST_ORDER.has(t)) ? 1 : 2)]);
    if (s.comment) ud.push([UDATA_SET_COMMENT, commentBytes(s.comment, `set ${s.name}`)]);
    b.bytes(SET_ATTR.USERDATA, udata(ud));
  });
}

export function delSet(family: Family, table: string, name: string, ifExists = false): BatchPart {
  return part(ifExists ? MSG.DESTROYSET : MSG.DELSET, family, 0, (b) => b.str(SET_ATTR.TABLE, table).str(SET_ATTR.NAME, name));
}

/** Removes every element of a set or map (nft's `flush set`). */
export function flushSet(family: Family, table: string, set: string): BatchPart {
  return part(MSG.DELSETELEM, family, 0, (b) => b.str(ELEM_LIST_ATTR.TABLE, table).str(ELEM_LIST_ATTR.SET, set));
}

export interface ElementShape {
  /** Interval set without concatenation: ranges become a start and an INTERVAL_END element. */
  rangesAsPairs: boolean;
  keyLen: number;
}

function putElement(list: AttrBuilder, e: Element, shape: ElementShape, withData: boolean): void {
  const one = (key: Buffer, flags: number, keyEnd: Buffer | undefined, data: boolean) =>
    list.nested(LIST_ELEM, (el) => {
      if (key.length !== shape.keyLen) throw new Error(`element key has ${key.length} bytes, the set's key ${shape.keyLen}`);
      putValue(el, ELEM_ATTR.KEY, key);
      if (keyEnd) putValue(el, ELEM_ATTR.KEY_END, keyEnd);
      if (flags) el.be32(ELEM_ATTR.FLAGS, flags);
      if (data && e.data !== undefined) {
        if (Buffer.isBuffer(e.data)) putValue(el, ELEM_ATTR.DATA, e.data);
        else putVerdict(el, ELEM_ATTR.DATA, e.data);
      }
      if (data && e.timeoutMs !== undefined) el.be64(ELEM_ATTR.TIMEOUT, BigInt(e.timeoutMs));
      if (data && e.comment) el.bytes(ELEM_ATTR.USERDATA, udata([[UDATA_ELEM_COMMENT, commentBytes(e.comment, 'set element')]]));
    });
  if (shape.rangesAsPairs) {
    one(e.key, 0, undefined, withData);
    // The kernel's rbtree holds the first address after the range, flagged as an end
    // (a single value is the range of one).
    const after = increment(e.keyEnd ?? e.key);
    if (after) one(after, ELEM_FLAG.INTERVAL_END, undefined, false);
  } else {
    one(e.key, 0, e.keyEnd, withData);
  }
}

/** key + 1 as a big-endian number, or null on overflow (the range runs to the end). */
export function increment(key: Buffer): Buffer | null {
  const out = Buffer.from(key);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 255) {
      out[i]!++;
      return out;
    }
    out[i] = 0;
  }
  return null;
}

// Nested attributes carry a 16-bit length: keep each element list well below it.
const MAX_ELEMENT_BYTES = 48 * 1024;

/**
 * Encodes the elements of one set as they come, cutting a message whenever its
 * list is full, so a caller can drop each element once it is added (a full
 * sync's 100k endpoints need not all exist as objects at once).
 */
export class ElementListEncoder {
  private readonly parts: BatchPart[] = [];
  private list = new AttrBuilder();
  private pending = 0;

  constructor(
    private readonly msg: number,
    private readonly flags: number,
    private readonly family: Family,
    private readonly table: string,
    private readonly set: string,
    private readonly shape: ElementShape,
    private readonly withData: boolean,
  ) {}

  add(e: Element): void {
    putElement(this.list, e, this.shape, this.withData);
    this.pending++;
    if (this.list.length >= MAX_ELEMENT_BYTES) this.cut();
  }

  /** The messages so far, the last one cut short. */
  finish(): BatchPart[] {
    this.cut();
    return this.parts;
  }

  private cut(): void {
    if (this.pending === 0) return;
    const payload = new AttrBuilder()
      .raw(nfgenmsg(this.family))
      .str(ELEM_LIST_ATTR.TABLE, this.table)
      .str(ELEM_LIST_ATTR.SET, this.set)
      .bytes(ELEM_LIST_ATTR.ELEMENTS | 0x8000, this.list.build())
      .build();
    this.parts.push({ type: msgType(this.msg), flags: this.flags | NLM_F_ACK, payload });
    this.list = new AttrBuilder();
    this.pending = 0;
  }
}

export function newElementsEncoder(family: Family, table: string, set: string, shape: ElementShape, o: NewOptions = {}): ElementListEncoder {
  return new ElementListEncoder(MSG.NEWSETELEM, newFlags(o), family, table, set, shape, true);
}

function elementParts(enc: ElementListEncoder, elements: readonly Element[]): BatchPart[] {
  for (const e of elements) enc.add(e);
  return enc.finish();
}

export function shapeOf(s: SetDef): ElementShape {
  return { rangesAsPairs: !!s.interval && s.key.length === 1, keyLen: typesLen(s.key) };
}

export function newElements(family: Family, table: string, set: string, elements: readonly Element[], shape: ElementShape, o: NewOptions = {}): BatchPart[] {
  return elementParts(newElementsEncoder(family, table, set, shape, o), elements);
}

export function delElements(family: Family, table: string, set: string, elements: readonly Element[], shape: ElementShape, ifExists = false): BatchPart[] {
  return elementParts(new ElementListEncoder(ifExists ? MSG.DESTROYSETELEM : MSG.DELSETELEM, 0, family, table, set, shape, false), elements);
}
