// Netlink attributes (struct nlattr: u16 length, u16 type, value, padded to 4).
// AttrBuilder writes them, parseAttrs reads them back; both are family-neutral.
import { align4 } from './message.js';

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

export class AttrBuilder {
  private readonly parts: Buffer[] = [];
  private size = 0;

  /** Appends raw bytes (a fixed family header such as ifinfomsg) before the attributes. */
  raw(data: Uint8Array): this {
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const padded = align4(b.length);
    this.parts.push(padded === b.length ? b : Buffer.concat([b, Buffer.alloc(padded - b.length)]));
    this.size += padded;
    return this;
  }

  bytes(type: number, value: Uint8Array): this {
    const len = 4 + value.length;
    const b = Buffer.alloc(align4(len));
    b.writeUInt16LE(len, 0);
    b.writeUInt16LE(type, 2);
    b.set(value, 4);
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  flag(type: number): this {
    return this.bytes(type, Buffer.alloc(0));
  }

  u8(type: number, v: number): this {
    return this.bytes(type, Buffer.of(v & 0xff));
  }

  u16(type: number, v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return this.bytes(type, b);
  }

  u32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.bytes(type, b);
  }

  s32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return this.bytes(type, b);
  }

  u64(type: number, v: bigint | number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return this.bytes(type, b);
  }

  /** Big-endian (network byte order) integers, as nf_tables and IPVS ports want them. */
  be16(type: number, v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return this.bytes(type, b);
  }

  be32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return this.bytes(type, b);
  }

  be64(type: number, v: bigint | number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(v));
    return this.bytes(type, b);
  }

  /** A NUL-terminated string. */
  str(type: number, s: string): this {
    return this.bytes(type, Buffer.from(s + '\0', 'utf8'));
  }

  /** A nested attribute; NLA_F_NESTED is set unless flagged false (some old families reject it). */
  nested(type: number, fill: (b: AttrBuilder) => void, flagNested = true): this {
    const inner = new AttrBuilder();
    fill(inner);
    return this.bytes(flagNested ? type | NLA_F_NESTED : type, inner.build());
  }

  get length(): number {
    return this.size;
  }

  build(): Buffer {
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
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
