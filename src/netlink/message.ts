// Netlink message framing (netlink(7)): the 16-byte nlmsghdr and the 4-byte
// alignment every family shares. Families build their payloads with attrs.ts.

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ECHO = 0x8;
export const NLM_F_DUMP_INTR = 0x10;
// GET requests
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// NEW requests
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// flags of an NLMSG_ERROR reply
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

export const NLMSG_HDRLEN = 16;

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the header. */
  payload: Buffer;
}

export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Encodes one message: header + payload, padded to 4 bytes. */
export function encodeMessage(type: number, flags: number, seq: number, payload: Uint8Array, pid = 0): Buffer {
  const buf = Buffer.alloc(align4(NLMSG_HDRLEN + payload.length));
  writeMessage(buf, 0, type, flags, seq, payload, pid);
  return buf;
}

/** Writes one message at off into buf (zeroed, with room for it); returns its padded length. */
export function writeMessage(buf: Buffer, off: number, type: number, flags: number, seq: number, payload: Uint8Array, pid = 0): number {
  const len = NLMSG_HDRLEN + payload.length;
  buf.writeUInt32LE(len, off);
  buf.writeUInt16LE(type, off + 4);
  buf.writeUInt16LE(flags, off + 6);
  buf.writeUInt32LE(seq >>> 0, off + 8);
  buf.writeUInt32LE(pid >>> 0, off + 12);
  buf.set(payload, off + NLMSG_HDRLEN);
  return align4(len);
}

/** Splits one received datagram into its messages. */
export function parseMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}
