// IPVS over generic netlink (family "IPVS", include/uapi/linux/ip_vs.h):
// virtual servers and their real servers, added, edited, deleted and listed
// with typed objects, plus the global connection timeouts. Nothing here execs
// ipvsadm: this is what the proxy's sync talks to.
import ipaddr from 'ipaddr.js';
import { AttrBuilder, attrStr, attrU16, attrU32, attrBe16, parseAttrs, type Attr, parseAttrList } from './attrs.js';
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL } from './message.js';
import { NETLINK_GENERIC, NetlinkError, NetlinkSocket, type BatchPart } from './socket.js';
import { GENL_HDRLEN, genlHeader, resolveGenlFamily } from './genetlink.js';

const IPVS_GENL_NAME = 'IPVS';
const IPVS_GENL_VERSION = 1;

// commands
const CMD_NEW_SERVICE = 1;
const CMD_SET_SERVICE = 2;
const CMD_DEL_SERVICE = 3;
const CMD_GET_SERVICE = 4;
const CMD_NEW_DEST = 5;
const CMD_SET_DEST = 6;
const CMD_DEL_DEST = 7;
const CMD_GET_DEST = 8;
const CMD_SET_CONFIG = 12;
const CMD_GET_CONFIG = 13;
const CMD_GET_INFO = 15;
const CMD_FLUSH = 17;

// command attributes
const CMD_ATTR_SERVICE = 1;
const CMD_ATTR_DEST = 2;
const CMD_ATTR_TIMEOUT_TCP = 4;
const CMD_ATTR_TIMEOUT_TCP_FIN = 5;
const CMD_ATTR_TIMEOUT_UDP = 6;

// service attributes
const SVC_AF = 1;
const SVC_PROTOCOL = 2;
const SVC_ADDR = 3;
const SVC_PORT = 4;
const SVC_FWMARK = 5;
const SVC_SCHED_NAME = 6;
const SVC_FLAGS = 7;
const SVC_TIMEOUT = 8;
const SVC_NETMASK = 9;
const SVC_PE_NAME = 11;

// destination attributes
const DEST_ADDR = 1;
const DEST_PORT = 2;
const DEST_FWD_METHOD = 3;
const DEST_WEIGHT = 4;
const DEST_U_THRESH = 5;
const DEST_L_THRESH = 6;
const DEST_ACTIVE_CONNS = 7;
const DEST_INACT_CONNS = 8;
const DEST_PERSIST_CONNS = 9;
const DEST_ADDR_FAMILY = 11;

const INFO_VERSION = 1;
const INFO_CONN_TAB_SIZE = 2;

const AF_INET = 2;
const AF_INET6 = 10;

/** Service flags (IP_VS_SVC_F_*). */
export const IPVS_SVC_F_PERSISTENT = 0x1;
export const IPVS_SVC_F_HASHED = 0x2;
export const IPVS_SVC_F_ONEPACKET = 0x4;
export const IPVS_SVC_F_SCHED1 = 0x8;
export const IPVS_SVC_F_SCHED2 = 0x10;
export const IPVS_SVC_F_SCHED3 = 0x20;

export type IpvsProtocol = 'TCP' | 'UDP' | 'SCTP';
const protoNumber: Record<IpvsProtocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };
const protoName = new Map<number, IpvsProtocol>([
  [6, 'TCP'],
  [17, 'UDP'],
  [132, 'SCTP'],
]);

export type ForwardMethod = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass';
const fwdNumber: Record<ForwardMethod, number> = { masq: 0, local: 1, tunnel: 2, route: 3, bypass: 4 };
const fwdName: ForwardMethod[] = ['masq', 'local', 'tunnel', 'route', 'bypass'];

/** What identifies a virtual server: protocol, address and port (podwire does not use fwmark services). */
export interface VirtualServerKey {
  readonly family: 4 | 6;
  readonly protocol: IpvsProtocol;
  readonly address: string;
  readonly port: number;
}

export interface VirtualServer extends VirtualServerKey {
  /** rr, wrr, lc, wlc, sh, dh, mh, … (the ip_vs_<name> module must be loadable). */
  readonly scheduler: string;
  /** IPVS_SVC_F_* bits; HASHED is the kernel's own and is ignored on write. */
  readonly flags: number;
  /** Persistence timeout in seconds (meaningful with IPVS_SVC_F_PERSISTENT). */
  readonly timeout: number;
  /** Persistence granularity: a netmask for IPv4 (0xffffffff: per client), a prefix length for IPv6. */
  readonly netmask?: number;
}

export interface RealServerKey {
  readonly address: string;
  readonly port: number;
}

export interface RealServer extends RealServerKey {
  readonly weight: number;
  readonly forward?: ForwardMethod;
  readonly upperThreshold?: number;
  readonly lowerThreshold?: number;
}

/** A real server as the kernel reports it, with its connection counters. */
export interface RealServerStatus extends Required<RealServer> {
  readonly family: 4 | 6;
  readonly activeConns: number;
  readonly inactiveConns: number;
  readonly persistConns: number;
}

export interface IpvsTimeouts {
  /** Seconds; 0 on write leaves the value unchanged. */
  readonly tcp: number;
  readonly tcpFin: number;
  readonly udp: number;
}

export type IpvsOp =
  | { readonly op: 'add-service'; readonly service: VirtualServer }
  | { readonly op: 'edit-service'; readonly service: VirtualServer }
  | { readonly op: 'delete-service'; readonly service: VirtualServerKey }
  | { readonly op: 'add-dest'; readonly service: VirtualServerKey; readonly dest: RealServer }
  | { readonly op: 'edit-dest'; readonly service: VirtualServerKey; readonly dest: RealServer }
  | { readonly op: 'delete-dest'; readonly service: VirtualServerKey; readonly dest: RealServerKey };

export function familyOf(address: string): 4 | 6 {
  return ipaddr.parse(address).kind() === 'ipv6' ? 6 : 4;
}

function addrBytes(address: string): Buffer {
  return Buffer.from(ipaddr.parse(address).toByteArray());
}

function addrFromBytes(b: Buffer, family: 4 | 6): string {
  if (family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  return ipaddr.fromByteArray(Array.from(b.subarray(0, 16))).toString();
}

/** The canonical text of an address (IPv6 compressed), for comparing keys. */
export function canonicalAddress(address: string): string {
  return ipaddr.parse(address).toString();
}

export function serviceKeyString(k: VirtualServerKey): string {
  return k.family === 6 ? `${k.protocol}/[${canonicalAddress(k.address)}]:${k.port}` : `${k.protocol}/${k.address}:${k.port}`;
}

export function destKeyString(d: RealServerKey): string {
  // Only IPv6 text has colons: no parse for the common case (full syncs key 100k real servers).
  return d.address.includes(':') ? `[${canonicalAddress(d.address)}]:${d.port}` : `${d.address}:${d.port}`;
}

function writeServiceKey(b: AttrBuilder, k: VirtualServerKey): void {
  if (familyOf(k.address) !== k.family) throw new Error(`IPVS service ${k.address}: address is not IPv${k.family}`);
  b.u16(SVC_AF, k.family === 6 ? AF_INET6 : AF_INET);
  b.u16(SVC_PROTOCOL, protoNumber[k.protocol]);
  b.bytes(SVC_ADDR, addrBytes(k.address));
  b.be16(SVC_PORT, k.port);
}

function writeService(b: AttrBuilder, s: VirtualServer): void {
  writeServiceKey(b, s);
  b.str(SVC_SCHED_NAME, s.scheduler);
  const flags = Buffer.alloc(8);
  flags.writeUInt32LE((s.flags & ~IPVS_SVC_F_HASHED) >>> 0, 0);
  flags.writeUInt32LE(0xffffffff, 4);
  b.bytes(SVC_FLAGS, flags);
  b.u32(SVC_TIMEOUT, s.timeout);
  b.u32(SVC_NETMASK, s.netmask ?? (s.family === 6 ? 128 : 0xffffffff));
}

function writeDest(b: AttrBuilder, d: RealServer, withSettings: boolean): void {
  const fam = familyOf(d.address);
  b.bytes(DEST_ADDR, addrBytes(d.address));
  b.be16(DEST_PORT, d.port);
  b.u16(DEST_ADDR_FAMILY, fam === 6 ? AF_INET6 : AF_INET);
  if (!withSettings) return;
  b.u32(DEST_FWD_METHOD, fwdNumber[d.forward ?? 'masq']);
  b.u32(DEST_WEIGHT, d.weight);
  b.u32(DEST_U_THRESH, d.upperThreshold ?? 0);
  b.u32(DEST_L_THRESH, d.lowerThreshold ?? 0);
}

function afToFamily(af: number | undefined, what: string): 4 | 6 {
  if (af === AF_INET) return 4;
  if (af === AF_INET6) return 6;
  throw new Error(`IPVS ${what}: unknown address family ${af}`);
}

/** Decodes the nested IPVS_SVC_ATTR_* of a service; null for fwmark services (podwire never makes them). */
export function decodeService(nested: Buffer): VirtualServer | null {
  const a = parseAttrs(nested);
  if (a.has(SVC_FWMARK) && (attrU32(a.get(SVC_FWMARK)) ?? 0) !== 0) return null;
  const family = afToFamily(attrU16(a.get(SVC_AF)), 'service');
  const protocol = protoName.get(attrU16(a.get(SVC_PROTOCOL)) ?? 0);
  if (!protocol) return null;
  const addr = a.get(SVC_ADDR);
  if (!addr) throw new Error('IPVS service without an address in a kernel reply');
  const fl = a.get(SVC_FLAGS);
  return {
    family,
    protocol,
    address: addrFromBytes(addr, family),
    port: attrBe16(a.get(SVC_PORT)) ?? 0,
    scheduler: attrStr(a.get(SVC_SCHED_NAME)) ?? '',
    flags: fl && fl.length >= 4 ? fl.readUInt32LE(0) & ~IPVS_SVC_F_HASHED : 0,
    timeout: attrU32(a.get(SVC_TIMEOUT)) ?? 0,
    netmask: attrU32(a.get(SVC_NETMASK)) ?? 0,
  };
}

export function decodeDest(nested: Buffer, serviceFamily: 4 | 6): RealServerStatus {
  const a = parseAttrs(nested);
  const af = attrU16(a.get(DEST_ADDR_FAMILY));
  const family = af === undefined ? serviceFamily : afToFamily(af, 'destination');
  const addr = a.get(DEST_ADDR);
  if (!addr) throw new Error('IPVS destination without an address in a kernel reply');
  return {
    family,
    address: addrFromBytes(addr, family),
    port: attrBe16(a.get(DEST_PORT)) ?? 0,
    forward: fwdName[(attrU32(a.get(DEST_FWD_METHOD)) ?? 0) & 0x7] ?? 'masq',
    weight: attrU32(a.get(DEST_WEIGHT)) ?? 0,
    upperThreshold: attrU32(a.get(DEST_U_THRESH)) ?? 0,
    lowerThreshold: attrU32(a.get(DEST_L_THRESH)) ?? 0,
    activeConns: attrU32(a.get(DEST_ACTIVE_CONNS)) ?? 0,
    inactiveConns: attrU32(a.get(DEST_INACT_CONNS)) ?? 0,
    persistConns: attrU32(a.get(DEST_PERSIST_CONNS)) ?? 0,
  };
}

function nestedOf(list: Attr[], type: number): Buffer | undefined {
  return list.find((x) => x.type === type)?.value;
}

/** Messages sent to the kernel per datagram: the acks of a bigger batch could overflow the socket's receive buffer. */
const BATCH_CHUNK = 200;

export class Ipvs {
  private readonly sock: NetlinkSocket;
  private readonly familyId: number;

  private constructor(sock: NetlinkSocket, familyId: number) {
    this.sock = sock;
    this.familyId = familyId;
  }

  /** Opens the IPVS family inside netnsPath (default: this process's namespace). Fails clearly when ip_vs is not loaded. */
  static open(netnsPath?: string): Ipvs {
    const sock = NetlinkSocket.open(NETLINK_GENERIC, netnsPath);
    try {
      const fam = resolveGenlFamily(sock, IPVS_GENL_NAME);
      return new Ipvs(sock, fam.id);
    } catch (e) {
      sock.close();
      if (e instanceof NetlinkError && e.code === 'ENOENT') {
        throw new Error('the generic netlink family "IPVS" is not registered: the ip_vs kernel module is not loaded (modprobe ip_vs)');
      }
      throw e;
    }
  }

  close(): void {
    this.sock.close();
  }

  private msg(cmd: number, fill?: (b: AttrBuilder) => void): Buffer {
    const b = new AttrBuilder().raw(genlHeader(cmd, IPVS_GENL_VERSION));
    if (fill) fill(b);
    return b.build();
  }

  private req(cmd: number, what: string, fill?: (b: AttrBuilder) => void, dump = false) {
    return this.sock.request(this.familyId, 0, this.msg(cmd, fill), { dump, what: `IPVS ${what}` });
  }

  info(): { version: string; connTableSize: number } {
    const [m] = this.req(CMD_GET_INFO, 'get info');
    if (!m) throw new Error('IPVS get info: no reply');
    const a = parseAttrs(m.payload, GENL_HDRLEN);
    const v = attrU32(a.get(INFO_VERSION)) ?? 0;
    return { version: `${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff}`, connTableSize: attrU32(a.get(INFO_CONN_TAB_SIZE)) ?? 0 };
  }

  listServices(): VirtualServer[] {
    const out: VirtualServer[] = [];
    for (const m of this.req(CMD_GET_SERVICE, 'list services', undefined, true)) {
      const nested = nestedOf(parseAttrList(m.payload, GENL_HDRLEN), CMD_ATTR_SERVICE);
      const s = nested && decodeService(nested);
      if (s) out.push(s);
    }
    return out;
  }

  /** The service, or null when the kernel has none with this key. */
  getService(k: VirtualServerKey): VirtualServer | null {
    try {
      const [m] = this.req(CMD_GET_SERVICE, `get service ${serviceKeyString(k)}`, (b) => b.nested(CMD_ATTR_SERVICE, (s) => writeServiceKey(s, k)));
      const nested = m && nestedOf(parseAttrList(m.payload, GENL_HDRLEN), CMD_ATTR_SERVICE);
      return nested ? decodeService(nested) : null;
    } catch (e) {
      if (e instanceof NetlinkError && (e.code === 'ESRCH' || e.code === 'ENOENT')) return null;
      throw e;
    }
  }

  listDestinations(k: VirtualServerKey): RealServerStatus[] {
    const out: RealServerStatus[] = [];
    const msgs = this.req(CMD_GET_DEST, `list destinations of ${serviceKeyString(k)}`, (b) => b.nested(CMD_ATTR_SERVICE, (s) => writeServiceKey(s, k)), true);
    for (const m of msgs) {
      const nested = nestedOf(parseAttrList(m.payload, GENL_HDRLEN), CMD_ATTR_DEST);
      if (nested) out.push(decodeDest(nested, k.family));
    }
    return out;
  }

  addService(s: VirtualServer): void {
    this.apply([{ op: 'add-service', service: s }]);
  }
  editService(s: VirtualServer): void {
    this.apply([{ op: 'edit-service', service: s }]);
  }
  deleteService(k: VirtualServerKey): void {
    this.apply([{ op: 'delete-service', service: k }]);
  }
  addDestination(k: VirtualServerKey, d: RealServer): void {
    this.apply([{ op: 'add-dest', service: k, dest: d }]);
  }
  editDestination(k: VirtualServerKey, d: RealServer): void {
    this.apply([{ op: 'edit-dest', service: k, dest: d }]);
  }
  deleteDestination(k: VirtualServerKey, d: RealServerKey): void {
    this.apply([{ op: 'delete-dest', service: k, dest: d }]);
  }

  /** Removes every virtual server (ipvsadm -C). */
  flush(): void {
    this.req(CMD_FLUSH, 'flush');
  }

  getTimeouts(): IpvsTimeouts {
    const [m] = this.req(CMD_GET_CONFIG, 'get timeouts');
    if (!m) throw new Error('IPVS get timeouts: no reply');
    const a = parseAttrs(m.payload, GENL_HDRLEN);
    return { tcp: attrU32(a.get(CMD_ATTR_TIMEOUT_TCP)) ?? 0, tcpFin: attrU32(a.get(CMD_ATTR_TIMEOUT_TCP_FIN)) ?? 0, udp: attrU32(a.get(CMD_ATTR_TIMEOUT_UDP)) ?? 0 };
  }

  /** Sets the global timeouts (ipvsadm --set); 0 keeps a value as it is. */
  setTimeouts(t: IpvsTimeouts): void {
    this.req(CMD_SET_CONFIG, 'set timeouts', (b) => b.u32(CMD_ATTR_TIMEOUT_TCP, t.tcp).u32(CMD_ATTR_TIMEOUT_TCP_FIN, t.tcpFin).u32(CMD_ATTR_TIMEOUT_UDP, t.udp));
  }

  private encode(o: IpvsOp): BatchPart {
    switch (o.op) {
      case 'add-service':
        return { type: this.familyId, flags: NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, payload: this.msg(CMD_NEW_SERVICE, (b) => b.nested(CMD_ATTR_SERVICE, (s) => writeService(s, o.service))) };
      case 'edit-service':
        return { type: this.familyId, flags: NLM_F_ACK, payload: this.msg(CMD_SET_SERVICE, (b) => b.nested(CMD_ATTR_SERVICE, (s) => writeService(s, o.service))) };
      case 'delete-service':
        return { type: this.familyId, flags: NLM_F_ACK, payload: this.msg(CMD_DEL_SERVICE, (b) => b.nested(CMD_ATTR_SERVICE, (s) => writeServiceKey(s, o.service))) };
      case 'add-dest':
      case 'edit-dest':
      case 'delete-dest': {
        const cmd = o.op === 'add-dest' ? CMD_NEW_DEST : o.op === 'edit-dest' ? CMD_SET_DEST : CMD_DEL_DEST;
        const full = o.op !== 'delete-dest';
        const dest = o.dest;
        return {
          type: this.familyId,
          flags: NLM_F_ACK,
          payload: this.msg(cmd, (b) =>
            b.nested(CMD_ATTR_SERVICE, (s) => writeServiceKey(s, o.service)).nested(CMD_ATTR_DEST, (d) => writeDest(d, full ? (dest as RealServer) : { ...dest, weight: 0 }, full)),
          ),
        };
      }
    }
  }

  /**
   * Applies many changes, BATCH_CHUNK messages per datagram. Every change is
   * attempted; the failures come back by index (empty: all applied). Use
   * applyOrThrow when one failure should stop the caller.
   */
  applyAll(ops: readonly IpvsOp[]): Array<{ op: IpvsOp; error: NetlinkError }> {
    const failed: Array<{ op: IpvsOp; error: NetlinkError }> = [];
    for (let i = 0; i < ops.length; i += BATCH_CHUNK) {
      const chunk = ops.slice(i, i + BATCH_CHUNK);
      const r = this.sock.batch(chunk.map((o) => this.encode(o)));
      for (const e of r.errors) failed.push({ op: chunk[e.index]!, error: e.error });
      if (r.errors.length > 0) {
        // The batch stops waiting soon after a failure: make sure no ack of this chunk is read as the next one's.
        while (this.sock.tryReceive(0)) {
          /* drain */
        }
      }
    }
    return failed;
  }

  /** Applies the changes; throws the first failure, naming the change. */
  apply(ops: readonly IpvsOp[]): void {
    const failed = this.applyAll(ops);
    if (failed.length > 0) throw describeFailure(failed[0]!.op, failed[0]!.error, failed.length);
  }
}

export function describeOp(o: IpvsOp): string {
  const svc = serviceKeyString(o.service);
  switch (o.op) {
    case 'add-service':
      return `add service ${svc} (scheduler ${o.service.scheduler})`;
    case 'edit-service':
      return `edit service ${svc}`;
    case 'delete-service':
      return `delete service ${svc}`;
    case 'add-dest':
      return `add destination ${destKeyString(o.dest)} to ${svc}`;
    case 'edit-dest':
      return `edit destination ${destKeyString(o.dest)} of ${svc}`;
    case 'delete-dest':
      return `delete destination ${destKeyString(o.dest)} of ${svc}`;
  }
}

function describeFailure(o: IpvsOp, e: NetlinkError, count: number): Error {
  const more = count > 1 ? ` (and ${count - 1} more changes failed)` : '';
  const hint = e.code === 'ENOENT' && o.op === 'add-service' ? ': is the scheduler module ip_vs_' + o.service.scheduler + ' available?' : '';
  const err = new Error(`IPVS ${describeOp(o)} failed: ${e.code}${e.extack ? ` (${e.extack})` : ''}${hint}${more}`);
  (err as Error & { cause?: unknown }).cause = e;
  return err;
}
