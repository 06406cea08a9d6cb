// Transport A: a Transaction written as an `nft -f` script. The same typed
// operations the netlink batch encodes are printed as nft commands; rules are
// decompiled from their expression lists (loads into registers, then the
// statement that consumes them), the way nft's own reader pairs them. A
// sequence this module cannot print exactly is an error naming the rule,
// never approximate text. Values are bytes in kernel layout, decoded by the
// data type of what they are compared with (the set's key types for elements).
import { typeLen, typesLen } from './encode.js';
import type { TxOp, Transaction } from './transaction.js';
import type { Chain, DataTypeName, Element, Expr, Family, Register, Rule, SetDef, Table, Verdict } from './types.js';
import { ipToString, toBig } from './values.js';

export class NftTextError extends Error {
  constructor(message: string) {
    super(`nft text: ${message}`);
    this.name = 'NftTextError';
  }
}

/** How a value is printed: the set data types plus the types of loads that are not set keys. */
type Fmt = DataTypeName | 'ifname' | 'fib_addrtype' | 'ct_state' | 'ct_status' | 'ct_dir' | 'ether_type';

const key = (family: Family, table: string, name: string) => `${family} ${table} ${name}`;

/**
 * The sets a script's rules and elements refer to, remembered across
 * transactions (a partial sync's rules name sets an earlier sync added).
 * `render` reads through pending changes; `adopt` makes them current once
 * the script was applied.
 */
export class SetCatalog {
  private readonly sets = new Map<string, SetDef>();

  constructor(initial: Iterable<SetDef> = []) {
    for (const s of initial) this.sets.set(key(s.family, s.table, s.name), s);
  }

  get(family: Family, table: string, name: string): SetDef | undefined {
    return this.sets.get(key(family, table, name));
  }

  /** Applies what a rendered script did to the sets (adds, deletes, dropped tables). */
  adopt(changes: CatalogChanges): void {
    for (const t of changes.droppedTables) for (const k of [...this.sets.keys()]) if (k.startsWith(`${t} `)) this.sets.delete(k);
    for (const [k, s] of changes.sets) {
      if (s) this.sets.set(k, s);
      else this.sets.delete(k);
    }
  }
}

export interface CatalogChanges {
  /** "family table" of tables deleted, in order before `sets`. */
  droppedTables: string[];
  /** Sets added (def) or deleted (null) after those drops. */
  sets: Map<string, SetDef | null>;
}

/** Looks sets up in the pending changes first, then in the catalog. */
class SetView {
  readonly changes: CatalogChanges = { droppedTables: [], sets: new Map() };
  constructor(private readonly base: SetCatalog) {}

  get(family: Family, table: string, name: string): SetDef | undefined {
    const k = key(family, table, name);
    if (this.changes.sets.has(k)) return this.changes.sets.get(k) ?? undefined;
    if (this.changes.droppedTables.includes(`${family} ${table}`)) return undefined;
    return this.base.get(family, table, name);
  }

  add(s: SetDef): void {
    this.changes.sets.set(key(s.family, s.table, s.name), s);
  }

  drop(family: Family, table: string, name: string): void {
    this.changes.sets.set(key(family, table, name), null);
  }

  dropTable(family: Family, table: string): void {
    const t = `${family} ${table}`;
    for (const k of [...this.changes.sets.keys()]) if (k.startsWith(`${t} `)) this.changes.sets.delete(k);
    this.changes.droppedTables.push(t);
  }
}

/** Elements per `add element` line: nft reads any length, people read shorter lines. */
const ELEMENTS_PER_LINE = 256;

export interface RenderedScript {
  /** The script as lines (each ends with a newline), in transaction order. */
  lines: string[];
  /** What the script does to the catalog's sets; pass to SetCatalog.adopt once applied. */
  changes: CatalogChanges;
}

/** The transaction as an `nft -f` script, with sets it does not define looked up in `catalog`. */
export function renderTransaction(tx: Transaction, catalog: SetCatalog = new SetCatalog()): RenderedScript {
  const view = new SetView(catalog);
  const lines: string[] = [];
  for (const op of tx.operations()) renderOp(op, view, lines);
  return { lines, changes: view.changes };
}

/** The transaction as one `nft -f` script string. */
export function transactionText(tx: Transaction, catalog?: SetCatalog): string {
  return renderTransaction(tx, catalog).lines.join('');
}

function renderOp(op: TxOp, view: SetView, out: string[]): void {
  switch (op.kind) {
    case 'add table':
    case 'create table':
      out.push(`${op.kind} ${tableText(op.table)}\n`);
      return;
    case 'delete table':
      // nft 1.0.6 has no `destroy`: adding first makes the delete succeed either way.
      if (op.ifExists) out.push(`add table ${op.family} ${name(op.name)}\n`);
      out.push(`delete table ${op.family} ${name(op.name)}\n`);
      view.dropTable(op.family, op.name);
      return;
    case 'add chain':
    case 'create chain':
      out.push(`${op.kind} ${chainText(op.chain)}\n`);
      return;
    case 'flush chain':
      out.push(`flush chain ${op.family} ${name(op.table)} ${name(op.chain)}\n`);
      return;
    case 'delete chain':
      if (op.ifExists) out.push(`add chain ${op.family} ${name(op.table)} ${name(op.chain)}\n`);
      out.push(`delete chain ${op.family} ${name(op.table)} ${name(op.chain)}\n`);
      return;
    case 'add rule':
      out.push(`add rule ${op.rule.family} ${name(op.rule.table)} ${name(op.rule.chain)} ${ruleText(op.rule, (s) => view.get(op.rule.family, op.rule.table, s))}\n`);
      return;
    case 'add set':
    case 'create set': {
      const s = op.set;
      const verb = op.kind === 'add set' ? 'add' : 'create';
      out.push(`${verb} ${s.data ? 'map' : 'set'} ${s.family} ${name(s.table)} ${name(s.name)} ${setBody(s)}\n`);
      view.add(s);
      return;
    }
    case 'flush set':
      out.push(`flush ${op.set.data ? 'map' : 'set'} ${op.set.family} ${name(op.set.table)} ${name(op.set.name)}\n`);
      return;
    case 'delete set':
      if (op.ifExists) throw new NftTextError(`delete set ${op.family} ${op.table} ${op.name} if it exists: nft 1.0.6 has no destroy, and the set's definition is not known here`);
      // `delete set` deletes maps too (nft looks the object up by name).
      out.push(`delete set ${op.family} ${name(op.table)} ${name(op.name)}\n`);
      view.drop(op.family, op.table, op.name);
      return;
    case 'add element':
    case 'delete element': {
      const s = op.set;
      const del = op.kind === 'delete element';
      if (op.kind === 'add element' && op.exclusive) {
        // nft's `create element` fails on an existing one, as the exclusive flag does.
        pushElements(out, 'create', s, op.elements, false);
        return;
      }
      if (del && op.ifExists) {
        if (s.data) throw new NftTextError(`delete element ${s.family} ${s.table} ${s.name} if it exists: needs each element's data to add it first, and a delete names keys only`);
        pushElements(out, 'add', s, op.elements, false);
      }
      pushElements(out, del ? 'delete' : 'add', s, op.elements, del);
      return;
    }
  }
}

function pushElements(out: string[], verb: string, s: SetDef, elements: readonly Element[], keysOnly: boolean): void {
  for (let i = 0; i < elements.length; i += ELEMENTS_PER_LINE) {
    const chunk = elements.slice(i, i + ELEMENTS_PER_LINE).map((e) => elementText(s, e, keysOnly));
    out.push(`${verb} element ${s.family} ${name(s.table)} ${name(s.name)} { ${chunk.join(', ')} }\n`);
  }
}

// ---- objects ----

const NAME = /^[a-zA-Z_.][a-zA-Z0-9/\-_.]*$/;
// nft 1.0.6 reads no quoted names: a name that is one of its scanner's
// keywords (in any context) cannot be written at all.
const KEYWORDS = new Set(
  (
    'accept add ah all and arp auto-merge bridge cgroup chain comment comp constant continue counter cpu create' +
    ' ct day dccp define delete describe device devices dnat drop dst dup dynamic ecn element elements eq esp' +
    ' ether exists expires export exthdr fib flags flow flowtable flush frag fwd gc-interval ge get goto gt' +
    ' handle hbh hook hour ibriport ibrname icmp icmpv6 igmp iif iifgroup iifname iiftype import include index' +
    ' inet insert interval ip ip6 ipsec jhash jump le limit list log lshift lt map mark masquerade meta meter mh' +
    ' missing monitor ne netdev nftrace not notrack numgen obriport obrname offload oif oifgroup oifname oiftype' +
    ' or osf pkttype policy position priority queue quota random redefine redirect reject rename replace reset' +
    ' return rshift rt rt0 rt2 rtclassid rule ruleset sctp secmark set size skgid skuid snat socket srh symhash' +
    ' synproxy table tcp th time timeout tproxy type typeof udp udplite undefine update vlan vmap xor xt'
  ).split(' '),
);

/** An object name as nft's scanner reads an identifier; others are refused rather than quoted wrongly. */
function name(n: string): string {
  if (!NAME.test(n)) throw new NftTextError(`name ${JSON.stringify(n)} is not an nft identifier (letters, digits, / - _ . and not starting with a digit)`);
  if (KEYWORDS.has(n)) throw new NftTextError(`name ${JSON.stringify(n)} is an nft keyword; nft 1.0.6 cannot read it as a name`);
  return n;
}

function quoted(text: string, what: string): string {
  if (/["\n\\]/.test(text)) throw new NftTextError(`${what}: comment ${JSON.stringify(text)} has a quote, backslash or newline nft cannot read`);
  return `"${text}"`;
}

function tableText(t: Table): string {
  const head = `${t.family} ${name(t.name)}`;
  return t.comment ? `${head} { comment ${quoted(t.comment, `table ${t.name}`)}; }` : head;
}

function chainText(c: Chain): string {
  const head = `${c.family} ${name(c.table)} ${name(c.name)}`;
  const parts: string[] = [];
  if (c.hook) {
    parts.push(`type ${c.hook.type} hook ${c.hook.hook} priority ${c.hook.priority};`);
    if (c.hook.policy) parts.push(`policy ${c.hook.policy};`);
  }
  if (c.comment) parts.push(`comment ${quoted(c.comment, `chain ${c.name}`)};`);
  return parts.length ? `${head} { ${parts.join(' ')} }` : head;
}

function setBody(s: SetDef): string {
  const parts = [`type ${s.key.join(' . ')}${s.data ? ` : ${s.data === 'verdict' ? 'verdict' : s.data.join(' . ')}` : ''};`];
  const flags: string[] = [];
  if (s.constant) flags.push('constant');
  if (s.interval) flags.push('interval');
  if (s.timeout || s.timeoutMs !== undefined) flags.push('timeout');
  if (s.dynamic) flags.push('dynamic');
  if (flags.length) parts.push(`flags ${flags.join(',')};`);
  if (s.timeoutMs !== undefined) parts.push(`timeout ${duration(s.timeoutMs)};`);
  if (s.size !== undefined) parts.push(`size ${s.size};`);
  if (s.comment) parts.push(`comment ${quoted(s.comment, `set ${s.name}`)};`);
  return `{ ${parts.join(' ')} }`;
}

function duration(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0) throw new NftTextError(`timeout ${ms} ms is not a whole number of milliseconds`);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

// ---- values ----

// Names nft's grammar knows as keywords; others as numbers (their names come from /etc/protocols, which may be absent).
const PROTO_NAME: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 132: 'sctp' };
const FIB_TYPE = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit'];
const CT_STATE: Array<[number, string]> = [[1, 'invalid'], [2, 'established'], [4, 'related'], [8, 'new'], [64, 'untracked']];

/** One value of type t from exactly its bytes. */
function valueText(t: Fmt, b: Buffer, what: string): string {
  const want = fmtLen(t);
  if (want !== undefined && b.length !== want) throw new NftTextError(`${what}: a ${t} value has ${want} bytes, not ${b.length}`);
  switch (t) {
    case 'ipv4_addr':
      return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
    case 'ipv6_addr':
      return ipToString(b);
    case 'inet_proto':
      return PROTO_NAME[b[0]!] ?? String(b[0]);
    case 'inet_service':
      return String(b.readUInt16BE(0));
    case 'mark':
      return `0x${b.readUInt32LE(0).toString(16).padStart(8, '0')}`;
    case 'integer':
      if (b.length === 4) return String(b.readUInt32LE(0));
      return toBig(b).toString();
    case 'nf_proto': {
      const names: Record<number, string> = { 2: 'ipv4', 10: 'ipv6' };
      const n = names[b[0]!];
      if (!n) throw new NftTextError(`${what}: nfproto ${b[0]} has no name nft reads`);
      return n;
    }
    case 'ether_type': {
      const names: Record<number, string> = { 0x0800: 'ip', 0x86dd: 'ip6', 0x0806: 'arp' };
      const n = names[b.readUInt16BE(0)];
      if (!n) throw new NftTextError(`${what}: ether type 0x${b.readUInt16BE(0).toString(16)} has no name podwire prints`);
      return n;
    }
    case 'ifname': {
      const nul = b.indexOf(0);
      if (nul < 0) throw new NftTextError(`${what}: an interface name without its NUL is a wildcard match podwire does not print`);
      return `"${b.subarray(0, nul).toString('utf8')}"`;
    }
    case 'fib_addrtype': {
      const n = FIB_TYPE[b.readUInt32LE(0)];
      if (!n) throw new NftTextError(`${what}: fib address type ${b.readUInt32LE(0)} is unknown`);
      return n;
    }
    case 'ct_state':
      return flagsText(b.readUInt32LE(0), CT_STATE, what);
    case 'ct_status':
    case 'ct_dir':
    case 'ifindex':
    case 'ether_addr':
      throw new NftTextError(`${what}: values of type ${t} are not printed by podwire`);
  }
}

function flagsText(v: number, names: Array<[number, string]>, what: string): string {
  const out: string[] = [];
  let rest = v;
  for (const [bit, n] of names) {
    if (rest & bit) {
      out.push(n);
      rest &= ~bit;
    }
  }
  if (rest !== 0 || out.length === 0) throw new NftTextError(`${what}: flags 0x${v.toString(16)} have no names`);
  return out.join(',');
}

function fmtLen(t: Fmt): number | undefined {
  switch (t) {
    case 'ifname':
      return 16;
    case 'fib_addrtype':
    case 'ct_state':
    case 'ct_status':
      return 4;
    case 'ct_dir':
      return 1;
    case 'ether_type':
      return 2;
    case 'integer':
      return undefined;
    default:
      return typeLen(t);
  }
}

/** Splits a key or data buffer into its fields (each padded to 32 bits in a concatenation). */
function fields(types: readonly DataTypeName[], b: Buffer, what: string): Buffer[] {
  const total = typesLen(types);
  if (b.length !== total) throw new NftTextError(`${what}: ${b.length} bytes where ${types.join(' . ')} takes ${total}`);
  if (types.length === 1) return [b];
  const out: Buffer[] = [];
  let at = 0;
  for (const t of types) {
    out.push(b.subarray(at, at + typeLen(t)));
    at += (typeLen(t) + 3) & ~3;
  }
  return out;
}

/** A field of an interval element: one value, a prefix, or a range. */
function rangeText(t: DataTypeName, from: Buffer, to: Buffer, what: string): string {
  if (from.equals(to)) return valueText(t, from, what);
  if (t === 'ipv4_addr' || t === 'ipv6_addr') {
    const bits = from.length * 8;
    const lo = toBig(from);
    const hi = toBig(to);
    const span = hi - lo + 1n;
    // A power of two, aligned: a prefix (nft prints it so too).
    if (span > 0n && (span & (span - 1n)) === 0n && lo % span === 0n) {
      return `${ipToString(from)}/${bits - (span.toString(2).length - 1)}`;
    }
  }
  return `${valueText(t, from, what)}-${valueText(t, to, what)}`;
}

function elementText(s: SetDef, e: Element, keysOnly: boolean): string {
  const what = `element of ${s.family} ${s.table} ${s.name}`;
  const ks = fields(s.key, e.key, what);
  let text: string;
  if (e.keyEnd) {
    if (!s.interval) throw new NftTextError(`${what}: a range in a set without flags interval`);
    const ends = fields(s.key, e.keyEnd, what);
    text = ks.map((k, i) => rangeText(s.key[i]!, k, ends[i]!, what)).join(' . ');
  } else {
    text = ks.map((k, i) => valueText(s.key[i]!, k, what)).join(' . ');
  }
  if (keysOnly) return text;
  if (e.timeoutMs !== undefined) text += ` timeout ${duration(e.timeoutMs)}`;
  if (e.comment) text += ` comment ${quoted(e.comment, what)}`;
  if (s.data) {
    if (e.data === undefined) throw new NftTextError(`${what}: a map element without data`);
    if (s.data === 'verdict') {
      if (Buffer.isBuffer(e.data)) throw new NftTextError(`${what}: bytes where the verdict map wants a verdict`);
      text += ` : ${verdictText(e.data)}`;
    } else {
      if (!Buffer.isBuffer(e.data)) throw new NftTextError(`${what}: a verdict where the map wants ${s.data.join(' . ')}`);
      const ds = s.data;
      text += ` : ${fields(ds, e.data, what).map((d, i) => valueText(ds[i]!, d, what)).join(' . ')}`;
    }
  } else if (e.data !== undefined) {
    throw new NftTextError(`${what}: data for a set that is not a map`);
  }
  return text;
}

function verdictText(v: Verdict): string {
  return v.kind === 'jump' || v.kind === 'goto' ? `${v.kind} ${name(v.chain)}` : v.kind;
}

// ---- rules ----

/** What a register (or a 32-bit word of one) holds while the rule is read. */
interface Held {
  /** The expression that filled it: a load (`ip daddr`), a map result, an immediate. */
  source: Source;
  /** Which field of the source starts at this word. */
  field: number;
}

interface Source {
  text: string;
  /** Types of the fields, in order (one for plain loads). */
  types: Fmt[];
  lens: number[];
  /** Bytes of an immediate (printed by the type of what consumes it). */
  raw?: Buffer;
  /** A bitwise over a load: `meta mark & 0x4000` (needs an explicit `==`), `meta mark | 0x4000`. */
  bitwise?: 'and' | 'or' | 'xor';
  /** For `ct state & mask != 0`: the mask, printed as the flags nft reads. */
  flagMask?: Buffer;
}

/** 32-bit word index of a register: NFT_REG_1..4 are four words each, NFT_REG32_00.. one. */
function wordOf(r: Register): number {
  if (r >= 1 && r <= 4) return (r - 1) * 4;
  if (r >= 8 && r <= 23) return r - 8;
  throw new Error(`register ${r} is not a data register`);
}

const words = (len: number) => Math.ceil(len / 4);

class RuleReader {
  private readonly regs = new Map<number, Held>();
  private readonly out: string[] = [];
  private l3: 'ip' | 'ip6' | undefined;
  private index = 0;
  private ended = false;

  constructor(
    private readonly rule: Rule,
    private readonly sets: (name: string) => SetDef | undefined,
  ) {
    this.l3 = rule.family === 'ip' || rule.family === 'ip6' ? rule.family : undefined;
  }

  fail(why: string): never {
    const r = this.rule;
    const e = r.exprs[this.index];
    throw new NftTextError(`rule in ${r.family} ${r.table} ${r.chain}${r.comment ? ` (${r.comment})` : ''}, expression ${this.index + 1} (${e?.op ?? 'end'}): ${why}`);
  }

  read(): string {
    for (this.index = 0; this.index < this.rule.exprs.length; this.index++) {
      if (this.ended) this.fail('an expression after the verdict');
      this.expr(this.rule.exprs[this.index]!);
    }
    if (this.regs.size > 0) {
      const left = [...new Set([...this.regs.values()].map((h) => h.source.text))];
      this.fail(`loads that no statement uses (${left.join(', ')}); nft would not write them`);
    }
    if (this.out.length === 0) this.fail('an empty rule');
    let text = this.out.join(' ');
    if (this.rule.comment) text += ` comment ${quoted(this.rule.comment, `rule in ${this.rule.chain}`)}`;
    return text;
  }

  private put(r: Register, source: Source): void {
    let w: number;
    try {
      w = wordOf(r);
    } catch (e) {
      this.fail((e as Error).message);
    }
    const total = source.lens.reduce((n, l) => n + words(l), 0);
    for (let i = w; i < w + total; i++) this.regs.delete(i);
    // Anything that spilled into these words from an earlier load is gone too.
    for (const [at, h] of [...this.regs]) if (at < w && at + words(h.source.lens[h.field]!) > w) this.regs.delete(at);
    let at = w;
    source.lens.forEach((l, field) => {
      this.regs.set(at, { source, field });
      at += words(l);
    });
  }

  /** Takes the value a statement reads from r: a whole single-field source. */
  private take(r: Register, what: string): Source {
    const h = this.regs.get(this.word(r));
    if (!h) this.fail(`${what} reads register ${r}, which holds nothing podwire loaded (or nft's reader took it already)`);
    if (h.field !== 0 || h.source.lens.length !== 1) this.fail(`${what} reads one field of ${h.source.text}`);
    this.regs.delete(this.word(r));
    return h.source;
  }

  private word(r: Register): number {
    try {
      return wordOf(r);
    } catch (e) {
      this.fail((e as Error).message);
    }
  }

  /** The concatenation a set key of `types` reads from sreg on, as `a . b . c`. */
  private takeKey(sreg: Register, types: readonly DataTypeName[], set: string): string {
    if (types.length === 1) {
      const s = this.take(sreg, `the lookup in @${set}`);
      return this.operandText(s, types[0]!, `key of @${set}`);
    }
    let w = this.word(sreg);
    const parts: string[] = [];
    for (const t of types) {
      const h = this.regs.get(w);
      if (!h || h.field !== 0 || h.source.lens.length !== 1) this.fail(`@${set}'s key field ${t} should be loaded into word ${w} of the registers`);
      if (h.source.raw) this.fail(`@${set}'s key has a constant field; nft cannot list such a concatenation`);
      if (h.source.lens[0] !== typeLen(t)) this.fail(`@${set}'s key field ${t} takes ${typeLen(t)} bytes, ${h.source.text} is ${h.source.lens[0]}`);
      this.regs.delete(w);
      parts.push(h.source.text);
      w += words(typeLen(t));
    }
    return parts.join(' . ');
  }

  /** A source as the right-hand side of `set` or as a key: constants printed by the target type. */
  private operandText(s: Source, t: Fmt, what: string): string {
    if (s.raw) return valueText(t, s.raw, what);
    return s.text;
  }

  private set(name: string): SetDef {
    const s = this.sets(name);
    if (!s) this.fail(`set @${name} is not defined in this transaction or an earlier one`);
    return s;
  }

  private load(dreg: Register, text: string, type: Fmt, len: number): void {
    this.put(dreg, { text, types: [type], lens: [len] });
  }

  private expr(e: Expr): void {
    switch (e.op) {
      case 'payload':
        return this.payload(e.base, e.offset, e.len, e.dreg);
      case 'meta': {
        const m: Partial<Record<typeof e.key, [string, Fmt, number]>> = {
          l4proto: ['meta l4proto', 'inet_proto', 1],
          nfproto: ['meta nfproto', 'nf_proto', 1],
          mark: ['meta mark', 'mark', 4],
          protocol: ['meta protocol', 'ether_type', 2],
          iifname: ['iifname', 'ifname', 16],
          oifname: ['oifname', 'ifname', 16],
        };
        const got = m[e.key];
        if (!got) this.fail(`meta ${e.key} is not printed by podwire`);
        return this.load(e.dreg, ...got);
      }
      case 'ct': {
        if (e.direction) this.fail('ct with a direction is not printed by podwire');
        const m: Partial<Record<typeof e.key, [string, Fmt, number]>> = {
          mark: ['ct mark', 'mark', 4],
          state: ['ct state', 'ct_state', 4],
        };
        const got = m[e.key];
        if (!got) this.fail(`ct ${e.key} is not printed by podwire`);
        return this.load(e.dreg, ...got);
      }
      case 'numgen':
        return this.load(e.dreg, `numgen ${e.type} mod ${e.mod}${e.offset ? ` offset ${e.offset}` : ''}`, 'integer', 4);
      case 'fib': {
        if (e.flags.includes('present')) this.fail('fib … exists is not printed by podwire');
        const order = ['saddr', 'daddr', 'mark', 'iif', 'oif'] as const;
        const fl = order.filter((f) => e.flags.includes(f));
        const types: Record<typeof e.result, [Fmt, number]> = { type: ['fib_addrtype', 4], oif: ['ifindex', 4], oifname: ['ifname', 16] };
        return this.load(e.dreg, `fib ${fl.join(' . ')} ${e.result}`, ...types[e.result]);
      }
      case 'immediate':
        return this.put(e.dreg, { text: `0x${e.data.toString('hex')}`, types: ['integer'], lens: [e.data.length], raw: e.data });
      case 'bitwise':
        return this.bitwise(e);
      case 'cmp':
        return this.cmp(e);
      case 'range': {
        const s = this.take(e.sreg, 'range');
        const t = s.types[0]!;
        this.out.push(`${s.text} ${e.neq ? '!= ' : ''}${valueText(t, e.from, 'range')}-${valueText(t, e.to, 'range')}`);
        return;
      }
      case 'lookup':
        return this.lookup(e);
      case 'meta-set':
      case 'ct-set': {
        if (e.key !== 'mark') this.fail(`${e.op === 'meta-set' ? 'meta' : 'ct'} ${e.key} set is not printed by podwire`);
        const s = this.take(e.sreg, `${e.op} ${e.key}`);
        this.out.push(`${e.op === 'meta-set' ? 'meta' : 'ct'} mark set ${this.operandText(s, 'mark', 'mark value')}`);
        return;
      }
      case 'verdict':
        this.out.push(verdictText(e.verdict));
        this.ended = true;
        return;
      case 'counter':
        this.out.push('counter');
        return;
      case 'nat':
        return this.nat(e);
      case 'masq': {
        if (e.protoMin !== undefined || e.protoMax !== undefined) this.fail('masquerade to a port range is not printed by podwire');
        this.out.push(`masquerade${natFlags(e.flags ?? 0, (m) => this.fail(m))}`);
        return;
      }
      case 'reject':
        return this.reject(e.type, e.code);
      case 'dynset':
        return this.dynset(e);
      case 'limit': {
        if (e.bytes) this.fail('byte rate limits are not printed by podwire');
        const burst = e.burst !== undefined && e.burst !== 5 ? ` burst ${e.burst} packets` : '';
        this.out.push(`limit rate ${e.invert ? 'over ' : ''}${e.rate}/${e.unit}${burst}`);
        return;
      }
    }
  }

  private payload(base: 'll' | 'network' | 'transport', offset: number, len: number, dreg: Register): void {
    if (base === 'transport') {
      if (len === 2 && (offset === 0 || offset === 2)) return this.load(dreg, `th ${offset === 0 ? 'sport' : 'dport'}`, 'inet_service', 2);
      this.fail(`transport header offset ${offset} length ${len} is not a port`);
    }
    if (base === 'network') {
      if (!this.l3) this.fail(`a network header load in an ${this.rule.family} table needs a meta nfproto match first`);
      const fieldsByL3 = {
        ip: { '12/4': ['ip saddr', 'ipv4_addr'], '16/4': ['ip daddr', 'ipv4_addr'], '9/1': ['ip protocol', 'inet_proto'] },
        ip6: { '8/16': ['ip6 saddr', 'ipv6_addr'], '24/16': ['ip6 daddr', 'ipv6_addr'], '6/1': ['ip6 nexthdr', 'inet_proto'] },
      } as const;
      const f = (fieldsByL3[this.l3] as Record<string, readonly [string, Fmt]>)[`${offset}/${len}`];
      if (!f) this.fail(`${this.l3} header offset ${offset} length ${len} is not a field podwire prints`);
      return this.load(dreg, f[0], f[1], len);
    }
    this.fail('link layer loads are not printed by podwire');
  }

  private bitwise(e: Extract<Expr, { op: 'bitwise' }>): void {
    const s = this.take(e.sreg, 'bitwise');
    if (s.raw || s.bitwise) this.fail(`bitwise over ${s.text}: only over a load`);
    const t = s.types[0]!;
    const ones = Buffer.alloc(e.len, 0xff);
    const zero = Buffer.alloc(e.len);
    const notXor = Buffer.from(e.xor.map((b) => ~b & 0xff));
    let src: Source;
    if (e.xor.equals(zero)) {
      src = { text: `${s.text} & ${this.maskText(t, e.mask)}`, types: [t], lens: [e.len], bitwise: 'and', flagMask: e.mask };
    } else if (e.mask.equals(notXor)) {
      src = { text: `${s.text} | ${this.maskText(t, e.xor)}`, types: [t], lens: [e.len], bitwise: 'or' };
    } else if (e.mask.equals(ones)) {
      src = { text: `${s.text} ^ ${this.maskText(t, e.xor)}`, types: [t], lens: [e.len], bitwise: 'xor' };
    } else {
      this.fail('a bitwise that is neither &, | nor ^ of one constant');
    }
    this.put(e.dreg, src);
  }

  private maskText(t: Fmt, b: Buffer): string {
    if (t === 'mark') return valueText('mark', b, 'mask');
    if (t === 'ct_state') return valueText('ct_state', b, 'mask');
    if (t === 'ipv4_addr' || t === 'ipv6_addr') return valueText(t, b, 'mask');
    this.fail(`a mask over a ${t} value is not printed by podwire`);
  }

  private cmp(e: Extract<Expr, { op: 'cmp' }>): void {
    const s = this.take(e.sreg, 'cmp');
    const t = s.types[0]!;
    const ops = { eq: '', neq: '!= ', lt: '< ', lte: '<= ', gt: '> ', gte: '>= ' } as const;
    if (t === 'ct_state' && s.bitwise === 'and' && s.flagMask && e.data.equals(Buffer.alloc(e.data.length))) {
      // `ct state established,related` is nft's `ct state & (established|related) != 0`.
      if (e.cmp === 'neq') {
        this.out.push(`ct state ${valueText('ct_state', s.flagMask, 'ct state')}`);
        return;
      }
      this.fail('ct state flags compared other than != 0');
    }
    if (s.raw) this.fail('a compare of a constant');
    // An nfproto match tells later network header loads which header they read (inet tables).
    if (s.text === 'meta nfproto' && e.cmp === 'eq') this.l3 = e.data[0] === 2 ? 'ip' : e.data[0] === 10 ? 'ip6' : this.l3;
    const op = s.bitwise && e.cmp === 'eq' ? '== ' : ops[e.cmp];
    this.out.push(`${s.text} ${op}${valueText(t, e.data, 'cmp')}`);
  }

  private lookup(e: Extract<Expr, { op: 'lookup' }>): void {
    const s = this.set(e.set);
    const k = this.takeKey(e.sreg, s.key, e.set);
    if (e.dreg === undefined) {
      if (s.data === 'verdict') this.fail(`@${e.set} is a verdict map: a lookup without dreg 0`);
      this.out.push(`${k} ${e.invert ? '!= ' : ''}@${name(e.set)}`);
      return;
    }
    if (e.invert) this.fail('an inverted map lookup');
    if (e.dreg === 0) {
      if (s.data !== 'verdict') this.fail(`vmap on @${e.set}, which is not a verdict map`);
      this.out.push(`${k} vmap @${name(e.set)}`);
      this.ended = true;
      return;
    }
    if (!s.data || s.data === 'verdict') this.fail(`a map lookup into register ${e.dreg} on @${e.set}, which has no data`);
    this.put(e.dreg, { text: `${k} map @${name(e.set)}`, types: [...s.data], lens: s.data.map(typeLen) });
  }

  private nat(e: Extract<Expr, { op: 'nat' }>): void {
    if (e.addrMin === undefined) this.fail('nat without an address');
    if (e.addrMax !== undefined && e.addrMax !== e.addrMin) this.fail('nat to an address range');
    if (e.protoMax !== undefined && e.protoMax !== e.protoMin) this.fail('nat to a port range');
    if (this.rule.family !== 'inet' && e.family !== this.rule.family) this.fail(`${e.family} nat in an ${this.rule.family} table`);
    const at = this.word(e.addrMin);
    const h = this.regs.get(at);
    if (!h) this.fail(`nat reads register ${e.addrMin}, which holds nothing`);
    const addrType: DataTypeName = e.family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
    let target: string;
    if (h.source.raw) {
      this.regs.delete(at);
      const addr = valueText(addrType, h.source.raw, 'nat address');
      if (e.protoMin === undefined) {
        target = addr;
      } else {
        const p = this.take(e.protoMin, 'nat port');
        if (!p.raw) this.fail('nat to a constant address and a loaded port');
        target = `${e.family === 'ip6' ? `[${addr}]` : addr}:${valueText('inet_service', p.raw, 'nat port')}`;
      }
    } else {
      // A map result: the address in its first field, the port (if any) in the next.
      const src = h.source;
      if (h.field !== 0 || src.types[0] !== addrType) this.fail(`nat address from ${src.text}, which does not start with an ${addrType}`);
      const wantPort = src.types.length === 2 && src.types[1] === 'inet_service';
      if (src.types.length > (wantPort ? 2 : 1)) this.fail(`nat from ${src.text}: its data is not address [. port]`);
      if (wantPort !== (e.protoMin !== undefined)) this.fail(`nat from ${src.text}: the port register does not match the map's data`);
      if (e.protoMin !== undefined) {
        const p = this.regs.get(this.word(e.protoMin));
        if (!p || p.source !== src || p.field !== 1) this.fail(`nat port register ${e.protoMin} is not the port of ${src.text}`);
        this.regs.delete(this.word(e.protoMin));
      }
      this.regs.delete(at);
      target = src.text;
    }
    this.out.push(`${e.type} ${e.family} to ${target}${natFlags(e.flags ?? 0, (m) => this.fail(m))}`);
  }

  private reject(type: 'icmp' | 'tcp-rst' | 'icmpx', code: number): void {
    if (type === 'tcp-rst') {
      this.out.push('reject with tcp reset');
      this.ended = true;
      return;
    }
    const icmp: Record<number, string> = { 0: 'net-unreachable', 1: 'host-unreachable', 2: 'prot-unreachable', 3: 'port-unreachable', 9: 'net-prohibited', 10: 'host-prohibited', 13: 'admin-prohibited' };
    const icmpv6: Record<number, string> = { 0: 'no-route', 1: 'admin-prohibited', 3: 'addr-unreachable', 4: 'port-unreachable', 5: 'policy-fail', 6: 'reject-route' };
    const icmpx: Record<number, string> = { 0: 'no-route', 1: 'port-unreachable', 2: 'host-unreachable', 3: 'admin-prohibited' };
    let text: string | undefined;
    if (type === 'icmpx') text = icmpx[code] && `icmpx ${icmpx[code]}`;
    else if (this.l3 === 'ip') text = icmp[code] && `icmp ${icmp[code]}`;
    else if (this.l3 === 'ip6') text = icmpv6[code] && `icmpv6 ${icmpv6[code]}`;
    else this.fail('an icmp reject in an inet table needs a meta nfproto match first');
    if (!text) this.fail(`reject code ${code} has no name`);
    this.out.push(`reject with ${text}`);
    this.ended = true;
  }

  private dynset(e: Extract<Expr, { op: 'dynset' }>): void {
    const s = this.set(e.set);
    let k = this.takeKey(e.sregKey, s.key, e.set);
    if (e.timeoutMs !== undefined) k += ` timeout ${duration(e.timeoutMs)}`;
    if (e.sregData !== undefined) {
      if (!s.data || s.data === 'verdict') this.fail(`a dynset with data on @${e.set}, which has no data`);
      k += ` : ${this.takeKey(e.sregData, s.data, e.set)}`;
    }
    this.out.push(`${e.dynop} @${name(e.set)} { ${k} }`);
  }
}

const NAT_FLAG_NAMES: Array<[number, string]> = [[1 << 2, 'random'], [1 << 3, 'persistent'], [1 << 4, 'fully-random']];

function natFlags(flags: number, fail: (m: string) => never): string {
  let rest = flags;
  const out: string[] = [];
  for (const [bit, n] of NAT_FLAG_NAMES) {
    if (rest & bit) {
      out.push(n);
      rest &= ~bit;
    }
  }
  if (rest !== 0) fail(`nat flags 0x${flags.toString(16)} are not printed by podwire`);
  return out.length ? ` ${out.join(',')}` : '';
}

/** A rule's statements as nft writes them (after `add rule FAMILY TABLE CHAIN`). */
export function ruleText(rule: Rule, sets: (name: string) => SetDef | undefined): string {
  return new RuleReader(rule, sets).read();
}
