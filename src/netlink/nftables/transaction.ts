// A transaction: objects to add, flush and delete, sent to the kernel as one
// nfnetlink batch (BATCH_BEGIN … BATCH_END), which nf_tables applies fully or
// not at all. Every message asks for an ack, so a failure names the object
// that caused it.
import { AttrBuilder } from '../attrs.js';
import { native } from '../native.js';
import { NETLINK_NETFILTER, NetlinkError, NetlinkSocket, type BatchPart } from '../socket.js';
import { CHAIN_ATTR, MSG, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES } from './consts.js';
import * as enc from './encode.js';
import type { Chain, Element, Family, Rule, SetDef, Table } from './types.js';

/**
 * One operation of a transaction as the caller asked for it, kept beside its
 * encoding so other transports (nft text, text.ts) can render the same delta.
 * Objects and element lists are held by reference: do not change them after
 * adding them (the netlink encoding was made when they were added).
 */
export type TxOp =
  | { kind: 'add table' | 'create table'; table: Table }
  | { kind: 'delete table'; family: Family; name: string; ifExists: boolean }
  | { kind: 'add chain' | 'create chain'; chain: Chain }
  | { kind: 'flush chain'; family: Family; table: string; chain: string }
  | { kind: 'delete chain'; family: Family; table: string; chain: string; ifExists: boolean }
  | { kind: 'add rule'; rule: Rule }
  | { kind: 'add set' | 'create set' | 'flush set'; set: SetDef }
  | { kind: 'delete set'; family: Family; table: string; name: string; ifExists: boolean }
  | { kind: 'add element'; set: SetDef; elements: readonly Element[]; exclusive: boolean }
  | { kind: 'delete element'; set: SetDef; elements: readonly Element[]; ifExists: boolean };

interface Op {
  what: string;
  /** Null when the transaction keeps no operations (only its encoding). */
  op: TxOp | null;
  parts: BatchPart[];
}

export interface TransactionOptions {
  /**
   * Keep each operation's typed objects beside its encoding (the default):
   * the text transport and the plans' tests read them. The netlink transport
   * needs only the encoding, and without the objects a full sync's rules and
   * elements can be garbage as soon as they are encoded.
   */
  keepOperations?: boolean;
}

export class NftError extends Error {
  readonly errno: number;
  readonly code: string;
  /** What the failing message did, e.g. "add set inet podwire-cni pods". */
  readonly object: string;
  readonly extack: string | undefined;

  constructor(object: string, cause: NetlinkError, more: number) {
    super(`nftables: ${object}: ${cause.code}${cause.extack ? ` (${cause.extack})` : ''}${more > 0 ? ` (and ${more} more errors)` : ''}; nothing was applied`);
    this.name = 'NftError';
    this.errno = cause.errno;
    this.code = cause.code;
    this.object = object;
    this.extack = cause.extack;
  }
}

function setName(s: { family: Family; table: string; name: string }): string {
  return `${s.family} ${s.table} ${s.name}`;
}

export class Transaction {
  /** Operations in order, and segments: transactions whose operations go at that place. */
  private readonly ops: Array<Op | Transaction> = [];
  readonly keepsOperations: boolean;

  constructor(opts: TransactionOptions = {}) {
    this.keepsOperations = opts.keepOperations ?? true;
  }

  private push(what: string, op: TxOp, parts: BatchPart | BatchPart[]): this {
    this.ops.push({ what, op: this.keepsOperations ? op : null, parts: Array.isArray(parts) ? parts : [parts] });
    return this;
  }

  /**
   * A transaction whose operations go here, before whatever is added to this
   * one afterwards, however late they are added: a plan fills chains, rules
   * and elements in one pass over the services and still sends every chain
   * before any rule.
   */
  segment(): Transaction {
    const seg = new Transaction({ keepOperations: this.keepsOperations });
    this.ops.push(seg);
    return seg;
  }

  /** Elements of one set taken a few at a time and encoded at once; one operation, added here. */
  elementStream(s: SetDef): ElementStream {
    const stream = new ElementStream(s, this.keepsOperations);
    this.ops.push(stream.op);
    return stream;
  }

  /** Adds a table, keeping it (and its contents) when it exists. */
  addTable(t: Table): this {
    return this.push(`add table ${t.family} ${t.name}`, { kind: 'add table', table: t }, enc.newTable(t));
  }

  /** Adds a table, failing with EEXIST when it exists. */
  createTable(t: Table): this {
    return this.push(`create table ${t.family} ${t.name}`, { kind: 'create table', table: t }, enc.newTable(t, { exclusive: true }));
  }

  deleteTable(family: Family, name: string, opts: { ifExists?: boolean } = {}): this {
    return this.push(`delete table ${family} ${name}`, { kind: 'delete table', family, name, ifExists: opts.ifExists ?? false }, enc.delTable(family, name, opts.ifExists));
  }

  addChain(c: Chain): this {
    return this.push(`add chain ${setName(c)}`, { kind: 'add chain', chain: c }, enc.newChain(c));
  }

  createChain(c: Chain): this {
    return this.push(`create chain ${setName(c)}`, { kind: 'create chain', chain: c }, enc.newChain(c, { exclusive: true }));
  }

  flushChain(family: Family, table: string, chain: string): this {
    return this.push(`flush chain ${family} ${table} ${chain}`, { kind: 'flush chain', family, table, chain }, enc.flushChain(family, table, chain));
  }

  deleteChain(family: Family, table: string, chain: string, opts: { ifExists?: boolean } = {}): this {
    return this.push(`delete chain ${family} ${table} ${chain}`, { kind: 'delete chain', family, table, chain, ifExists: opts.ifExists ?? false }, enc.delChain(family, table, chain, opts.ifExists));
  }

  addRule(r: Rule): this {
    return this.push(`add rule ${r.family} ${r.table} ${r.chain}${r.comment ? ` (${r.comment})` : ''}`, { kind: 'add rule', rule: r }, enc.newRule(r));
  }

  /** Adds a set or map; an existing one with the same properties is kept with its elements. */
  addSet(s: SetDef): this {
    return this.push(`add ${s.data ? 'map' : 'set'} ${setName(s)}`, { kind: 'add set', set: s }, enc.newSet(s));
  }

  createSet(s: SetDef): this {
    return this.push(`create ${s.data ? 'map' : 'set'} ${setName(s)}`, { kind: 'create set', set: s }, enc.newSet(s, { exclusive: true }));
  }

  flushSet(s: SetDef): this {
    return this.push(`flush set ${setName(s)}`, { kind: 'flush set', set: s }, enc.flushSet(s.family, s.table, s.name));
  }

  deleteSet(family: Family, table: string, name: string, opts: { ifExists?: boolean } = {}): this {
    return this.push(`delete set ${family} ${table} ${name}`, { kind: 'delete set', family, table, name, ifExists: opts.ifExists ?? false }, enc.delSet(family, table, name, opts.ifExists));
  }

  /** Adds elements; an identical existing element is kept (with exclusive: EEXIST). */
  addElements(s: SetDef, elements: readonly Element[], opts: { exclusive?: boolean } = {}): this {
    if (elements.length === 0) return this;
    return this.push(`add element ${setName(s)} (${elements.length})`, { kind: 'add element', set: s, elements, exclusive: opts.exclusive ?? false }, enc.newElements(s.family, s.table, s.name, elements, enc.shapeOf(s), opts));
  }

  /** Deletes elements by key; ifExists makes missing ones no error (Linux 6.3+). */
  deleteElements(s: SetDef, elements: readonly Element[], opts: { ifExists?: boolean } = {}): this {
    if (elements.length === 0) return this;
    return this.push(`delete element ${setName(s)} (${elements.length})`, { kind: 'delete element', set: s, elements, ifExists: opts.ifExists ?? false }, enc.delElements(s.family, s.table, s.name, elements, enc.shapeOf(s), opts.ifExists));
  }

  /** The number of operations (an element stream that got no element counts none). */
  get size(): number {
    let n = 0;
    for (const o of this.flat()) n++;
    return n;
  }

  /** The operations in order, as typed objects (what text.ts renders). */
  operations(): TxOp[] {
    if (!this.keepsOperations) throw new Error('nftables: this transaction keeps only its encoding (keepOperations: false)');
    return [...this.flat()].map((o) => o.op!);
  }

  /** The messages between BATCH_BEGIN and BATCH_END, each with the op it belongs to. */
  messages(): { parts: BatchPart[]; owner: string[] } {
    const parts: BatchPart[] = [];
    const owner: string[] = [];
    for (const op of this.flat()) {
      for (const p of op.parts) {
        parts.push(p);
        owner.push(op.what);
      }
    }
    return { parts, owner };
  }

  private *flat(): Generator<Op> {
    for (const o of this.ops) {
      if (o instanceof Transaction) yield* o.flat();
      else if (o.parts.length > 0) yield o;
    }
  }
}

/** See Transaction.elementStream. */
export class ElementStream {
  readonly op: Op;
  private readonly encoder: enc.ElementListEncoder;
  private readonly kept: Element[] | null;
  private count = 0;

  constructor(
    private readonly set: SetDef,
    keep: boolean,
  ) {
    this.encoder = enc.newElementsEncoder(set.family, set.table, set.name, enc.shapeOf(set));
    this.kept = keep ? [] : null;
    this.op = { what: '', op: this.kept ? { kind: 'add element', set, elements: this.kept, exclusive: false } : null, parts: [] };
  }

  add(elements: readonly Element[]): void {
    for (const e of elements) {
      this.encoder.add(e);
      this.kept?.push(e);
    }
    this.count += elements.length;
  }

  /** Encodes what is left; the operation is empty (sends nothing) until this is called. */
  end(): void {
    this.op.parts = this.encoder.finish();
    this.op.what = `add element ${setName(this.set)} (${this.count})`;
  }
}

function batchMarker(type: number): BatchPart {
  return { type, flags: 0, payload: new AttrBuilder().raw(enc.nfgenmsg('unspec', NFNL_SUBSYS_NFTABLES)).build() };
}

/** An nf_tables netlink connection in one network namespace. */
export class NftConnection {
  readonly socket: NetlinkSocket;

  private constructor(socket: NetlinkSocket) {
    this.socket = socket;
  }

  static open(netnsPath?: string): NftConnection {
    return new NftConnection(NetlinkSocket.open(NETLINK_NETFILTER, netnsPath));
  }

  /** Applies the transaction atomically; throws NftError naming the first object the kernel refused. */
  commit(tx: Transaction, opts: { timeoutMs?: number } = {}): void {
    if (tx.size === 0) return;
    const { parts, owner } = tx.messages();
    const all = [batchMarker(NFNL_MSG_BATCH_BEGIN), ...parts, batchMarker(NFNL_MSG_BATCH_END)];
    const bytes = all.reduce((n, p) => n + p.payload.length + 16, 0);
    // The send buffer must hold the batch, and the receive buffer one ack per message: each queued ack
    // is charged up to ~2 KiB (skb truesize), so ~20k small messages overflow a default buffer (ENOBUFS)
    // although the batch itself is well under its size.
    const need = Math.max(bytes * 2, all.length * 2048);
    if (need > this.bufferBytes) this.growBuffers(need);
    const { errors } = this.socket.batch(all, opts);
    if (errors.length === 0) return;
    errors.sort((a, b) => a.index - b.index);
    const first = errors[0]!;
    throw new NftError(owner[first.index - 1] ?? 'batch', first.error, errors.length - 1);
  }

  /** Whether a chain exists (one GETCHAIN request; the chain's rules are not read). */
  chainExists(family: Family, table: string, chain: string): boolean {
    const payload = new AttrBuilder().raw(enc.nfgenmsg(family)).str(CHAIN_ATTR.TABLE, table).str(CHAIN_ATTR.NAME, chain).build();
    try {
      this.socket.request(enc.msgType(MSG.GETCHAIN), 0, payload, { what: `get chain ${family} ${table} ${chain}` });
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENOENT') return false;
      throw e;
    }
  }

  /** What the buffers were set to (below this, the kernel's defaults of ~208 KiB apply). */
  private bufferBytes = 200 << 10;

  private growBuffers(need: number): void {
    const SOL_SOCKET = 1;
    const SO_SNDBUFFORCE = 32;
    const SO_RCVBUFFORCE = 33;
    const size = Math.min(need, 1 << 30);
    native().setsockoptInt(this.socket.fd, SOL_SOCKET, SO_SNDBUFFORCE, size);
    native().setsockoptInt(this.socket.fd, SOL_SOCKET, SO_RCVBUFFORCE, size);
    this.bufferBytes = size;
  }

  close(): void {
    this.socket.close();
  }
}

