// A netlink socket bound to one network namespace, with the two exchanges
// every family uses: a request answered by an ack (or a dump), and a batch of
// requests sent as one datagram whose acks are collected by sequence number.
// Calls are synchronous: the kernel answers in microseconds, and the CNI plugin
// has nothing else to do meanwhile. Errors carry the errno and the kernel's
// extended-ack message.
import { constants } from 'node:os';
import { parseAttrs, attrStr, attrU32 } from './attrs.js';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_OVERRUN,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  align4,
  encodeMessage,
  parseMessages,
  writeMessage,
  type NetlinkMessage,
} from './message.js';
import { native } from './native.js';

export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;
export const NETLINK_GENERIC = 16;

const NLMSGERR_ATTR_MSG = 1;
const NLMSGERR_ATTR_OFFS = 2;

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  /** The kernel's extended-ack text, when it sent one. */
  readonly extack: string | undefined;
  /** Byte offset of the offending attribute in the request, when the kernel said. */
  readonly offset: number | undefined;
  /** Sequence number of the request that failed. */
  readonly seq: number;

  constructor(what: string, errno: number, seq: number, extack?: string, offset?: number) {
    const code = errnoName(errno);
    super(`${what}: ${code}${extack ? ` (${extack})` : ''}`);
    this.name = 'NetlinkError';
    this.errno = errno;
    this.code = code;
    this.extack = extack;
    this.offset = offset;
    this.seq = seq;
  }
}

/** Decodes an NLMSG_ERROR payload: 0 is an ack, otherwise an errno with optional details. */
export function decodeError(msg: NetlinkMessage): { errno: number; extack?: string; offset?: number } {
  const p = msg.payload;
  const errno = -p.readInt32LE(0);
  if (errno === 0 || !(msg.flags & NLM_F_ACK_TLVS)) return { errno };
  // After the error code comes the original header, and its payload unless capped.
  const origLen = p.readUInt32LE(4);
  const tlvStart = 4 + (msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : (origLen + 3) & ~3);
  const attrs = parseAttrs(p, tlvStart);
  return { errno, extack: attrStr(attrs.get(NLMSGERR_ATTR_MSG)), offset: attrU32(attrs.get(NLMSGERR_ATTR_OFFS)) };
}

export interface RequestOptions {
  /** Sets NLM_F_DUMP and collects every reply until NLMSG_DONE. */
  dump?: boolean;
  /** Milliseconds to wait for the kernel before giving up (default 10 s). */
  timeoutMs?: number;
  /** Text for error messages, e.g. "RTM_NEWLINK veth0". */
  what?: string;
}

export interface BatchPart {
  type: number;
  flags: number;
  payload: Uint8Array;
}

export class NetlinkSocket {
  readonly fd: number;
  readonly protocol: number;
  readonly portId: number;
  private seq: number;
  private closed = false;

  private constructor(fd: number, protocol: number) {
    this.fd = fd;
    this.protocol = protocol;
    this.portId = native().portId(fd);
    // Start from a random point so two sockets' replies are never confused.
    this.seq = Math.floor(Math.random() * 0x7fffffff);
  }

  /** Opens a socket of the given netlink protocol inside netnsPath (default: the caller's namespace). */
  static open(protocol: number, netnsPath?: string): NetlinkSocket {
    return new NetlinkSocket(native().socket(protocol, netnsPath), protocol);
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  /**
   * Sends one request and returns the replies (for a dump: every message before
   * NLMSG_DONE; otherwise any message the kernel sent before its ack, e.g. NLM_F_ECHO).
   */
  request(type: number, flags: number, payload: Uint8Array, opts: RequestOptions = {}): NetlinkMessage[] {
    const seq = this.nextSeq();
    const f = flags | NLM_F_REQUEST | (opts.dump ? NLM_F_DUMP : NLM_F_ACK);
    native().send(this.fd, encodeMessage(type, f, seq, payload));
    const out: NetlinkMessage[] = [];
    const what = opts.what ?? `netlink request type ${type}`;
    for (;;) {
      for (const m of this.receive(opts.timeoutMs, what)) {
        if (m.seq !== seq) continue; // a late reply to an earlier request
        if (m.type === NLMSG_ERROR) {
          const e = decodeError(m);
          if (e.errno !== 0) throw new NetlinkError(what, e.errno, seq, e.extack, e.offset);
          return out;
        }
        if (m.type === NLMSG_DONE) {
          if (m.flags & NLM_F_DUMP_INTR) throw new NetlinkError(`${what} (dump interrupted)`, constants.errno.EINTR, seq);
          return out;
        }
        if (m.type === NLMSG_OVERRUN) throw new NetlinkError(`${what} (overrun)`, constants.errno.ENOBUFS, seq);
        out.push(m);
      }
    }
  }

  /**
   * Sends several requests in one datagram (nf_tables batches) and collects the
   * kernel's answers to those of them flagged NLM_F_ACK. Returns every error
   * by the index of the part that caused it; an empty list means success.
   */
  batch(parts: readonly BatchPart[], opts: { timeoutMs?: number } = {}): { seqs: number[]; errors: Array<{ index: number; error: NetlinkError }> } {
    const seqs: number[] = [];
    const waiting = new Map<number, number>();
    // Written straight into one datagram: a full sync's batch is megabytes, and
    // a copy per message before joining them would hold it twice.
    let total = 0;
    for (const p of parts) total += align4(NLMSG_HDRLEN + p.payload.length);
    const datagram = Buffer.alloc(total);
    let off = 0;
    parts.forEach((p, index) => {
      const seq = this.nextSeq();
      seqs.push(seq);
      const flags = p.flags | NLM_F_REQUEST;
      if (flags & NLM_F_ACK) waiting.set(seq, index);
      off += writeMessage(datagram, off, p.type, flags, seq, p.payload);
    });
    native().send(this.fd, datagram);
    const errors: Array<{ index: number; error: NetlinkError }> = [];
    const bySeq = new Map<number, number>(seqs.map((s, i) => [s, i]));
    while (waiting.size > 0) {
      // After a failure the kernel aborts the batch and may leave later parts
      // unanswered: wait only briefly for the rest.
      const msgs = errors.length > 0 ? this.tryReceive(100) : this.receive(opts.timeoutMs, 'netlink batch');
      if (!msgs) break;
      for (const m of msgs) {
        if (m.type !== NLMSG_ERROR) continue;
        const index = bySeq.get(m.seq);
        if (index === undefined) continue;
        waiting.delete(m.seq);
        const e = decodeError(m);
        if (e.errno !== 0) {
          errors.push({ index, error: new NetlinkError(`batch message ${index} (type ${parts[index]!.type})`, e.errno, m.seq, e.extack, e.offset) });
        }
      }
    }
    return { seqs, errors };
  }

  /** One datagram's messages, or null when none arrived within ms. */
  tryReceive(ms: number): NetlinkMessage[] | null {
    const b = native().recv(this.fd, ms);
    return b ? parseMessages(b) : null;
  }

  /** Waits for one datagram and returns its messages. */
  receive(timeoutMs = 10_000, what = 'netlink'): NetlinkMessage[] {
    const b = native().recv(this.fd, timeoutMs);
    if (!b) throw new NetlinkError(`${what}: no answer from the kernel within ${timeoutMs} ms`, constants.errno.ETIMEDOUT, 0);
    return parseMessages(b);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native().close(this.fd);
  }
}
