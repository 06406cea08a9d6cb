// Netlink attributes (struct nlattr: u16 length, u16 type, value, padded to 4).
// AttrBuilder writes them, parseAttrs reads them back; both are family-neutral.
import { align4 } from './message.js';

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/**
 * Writes attributes into one growing buffer; a nested attribute is filled in
 * place and its length patched after. (One buffer a message, not one a value:
 * a full nftables sync at 10k services encodes ~10^6 attributes.)
 */
export class AttrBuilder {
  // Not from Node's pool: this buffer is garbage once built, and pool slabs are
  // shared with the built messages, which live until the batch is sent.
  private buf = Buffer.allocUnsafeSlow(256);
  private size = 0;

  /** Room for n more bytes; returns where they start. It may replace this.buf: read this.buf after it. */
  private take(n: number): number {
    const need = this.size + n;
    if (need > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < need) cap *= 2;
      const grown = Buffer.allocUnsafeSlow(cap);
      this.buf.copy(grown, 0, 0, this.size);
      this.buf = grown;
    }
    const at = this.size;
    this.size = need;
    return at;
  }

  /** An attribute header for a value of len bytes, its padding zeroed; returns where the value goes. */
  private header(type: number, len: number): number {
    if (4 + len > 0xffff) throw new RangeError(`netlink attribute ${type & NLA_TYPE_MASK}: ${4 + len} bytes, more than one attribute holds (65535)`);
    const padded = align4(4 + len);
    const at = this.take(padded);
    this.buf.writeUInt16LE(4 + len, at);
    this.buf.writeUInt16LE(type, at + 2);
    if (padded > 4 + len) this.buf.fill(0, at + 4 + len, at + padded);
    return at + 4;
  }

  /** Appends raw bytes (a fixed family header such as ifinfomsg) before the attributes. */
  raw(data: Uint8Array): this {
    const padded = align4(data.byteLength);
    const at = this.take(padded);
    this.buf.set(data, at);
    this.buf.fill(0, at + data.byteLength, at + padded);
    return this;
  }

  bytes(type: number, value: Uint8Array): this {
    const at = this.header(type, value.length);
    this.buf.set(value, at);
    return this;
  }

  flag(type: number): this {
    this.header(type, 0);
    return this;
  }

  u8(type: number, v: number): this {
    const at = this.header(type, 1);
    this.buf[at] = v & 0xff;
    return this;
  }

  u16(type: number, v: number): this {
    const at = this.header(type, 2);
    this.buf.writeUInt16LE(v, at);
    return this;
  }

  u32(type: number, v: number): this {
    const at = this.header(type, 4);
    this.buf.writeUInt32LE(v >>> 0, at);
    return this;
  }

  s32(type: number, v: number): this {
    const at = this.header(type, 4);
    this.buf.writeInt32LE(v, at);
    return this;
  }

  u64(type: number, v: bigint | number): this {
    const at = this.header(type, 8);
    this.buf.writeBigUInt64LE(BigInt(v), at);
    return this;
  }

  /** Big-endian (network byte order) integers, as nf_tables and IPVS ports want them. */
  be16(type: number, v: number): this {
    const at = this.header(type, 2);
    this.buf.writeUInt16BE(v, at);
    return this;
  }

  be32(type: number, v: number): this {
    const at = this.header(type, 4);
    this.buf.writeUInt32BE(v >>> 0, at);
    return this;
  }

  be64(type: number, v: bigint | number): this {
    const at = this.header(type, 8);
    this.buf.writeBigUInt64BE(BigInt(v), at);
    return this;
  }

  /** A NUL-terminated string. */
  str(type: number, s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    const at = this.header(type, n + 1);
    this.buf.write(s, at, n, 'utf8');
    this.buf[at + n] = 0;
    return this;
  }

  /** A nested attribute; NLA_F_NESTED is set unless flagged false (some old families reject it). */
  nested(type: number, fill: (b: AttrBuilder) => void, flagNested = true): this {
    const at = this.take(4);
    fill(this);
    const len = this.size - at;
    if (len > 0xffff) throw new RangeError(`netlink attribute ${type}: ${len} bytes nested, more than one attribute holds (65535)`);
    this.buf.writeUInt16LE(len, at);
    this.buf.writeUInt16LE(flagNested ? type | NLA_F_NESTED : type, at + 2);
    return this;
  }

  get length(): number {
    return this.size;
  }

  /** The bytes written, in a buffer of their own (exactly their size). */
  build(): Buffer {
    const out = Buffer.allocUnsafe(this.size);
    this.buf.copy(out, 0, 0, this.size);
    return out;
  }
}

export interface Attr {
  /** The type with NLA_F_NESTED / NLA_F_NET_BYTEORDER masked off. */
  type: number;
  value: Buffer;
}

/** Every attribute in buf from offset on, in order (repeated types kept). */
export function parseAttrList(buf: Buffer, offset = 0): Attr[] {
  const out: Attr[] = [];
  let off = offset;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.push({ type: buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, value: buf.subarray(off + 4, off + len) });
    off += align4(len);
  }
  return out;
}

/** Attributes by type (the last one wins for repeated types). */
export function parseAttrs(buf: Buffer, offset = 0): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (const a of parseAttrList(buf, offset)) m.set(a.type, a.value);
  return m;
}

export function attrStr(v: Buffer | undefined): string | undefined {
  if (!v) return undefined;
  const nul = v.indexOf(0);
  return v.toString('utf8', 0, nul < 0 ? v.length : nul);
}

export function attrU32(v: Buffer | undefined): number | undefined {
  return v && v.length >= 4 ? v.readUInt32LE(0) : undefined;
}

export function attrU16(v: Buffer | undefined): number | undefined {
  return v && v.length >= 2 ? v.readUInt16LE(0) : undefined;
}

export function attrU8(v: Buffer | undefined): number | undefined {
  return v && v.length >= 1 ? v.readUInt8(0) : undefined;
}

export function attrBe32(v: Buffer | undefined): number | undefined {
  return v && v.length >= 4 ? v.readUInt32BE(0) : undefined;
}

export function attrBe16(v: Buffer | undefined): number | undefined {
  return v && v.length >= 2 ? v.readUInt16BE(0) : undefined;
}
