// rtnetlink: links, addresses and routes of one network namespace, over one
// synchronous NETLINK_ROUTE socket opened inside it. One method per verb;
// errors are NetlinkError naming the request and the object
// ("RTM_NEWLINK veth1234", "RTM_NEWADDR 10.1.0.5/24 dev eth0").
import { AttrBuilder } from './attrs.js';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, type NetlinkMessage } from './message.js';
import { NETLINK_ROUTE, NetlinkError, NetlinkSocket } from './socket.js';
import * as C from './route/constants.js';
import {
  bridgePortFlag,
  decodeAddr,
  decodeBridgePort,
  decodeLink,
  decodeRoute,
  type AddrInfo,
  type LinkInfo,
  type RouteInfo,
  type RouteSpec,
} from './route/decode.js';
import { broadcast4, maskBytes, parseCidr, parseIp, parseMac, type ParsedCidr } from './route/ip.js';

export type { AddrInfo, LinkInfo, RouteInfo, RouteSpec } from './route/decode.js';

const ENODEV = 19;
const ESRCH = 3;
const EADDRNOTAVAIL = 99;
const EINVAL = 22;

function ifinfomsg(index = 0, flags = 0, change = 0, family = C.AF_UNSPEC): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}

function ifaddrmsg(family: number, prefixLen: number, flags: number, scope: number, index: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLen, 1);
  b.writeUInt8(flags & 0xff, 2);
  b.writeUInt8(scope, 3);
  b.writeUInt32LE(index, 4);
  return b;
}

function afOf(family: 4 | 6): number {
  return family === 4 ? C.AF_INET : C.AF_INET6;
}

/** Interface names the kernel accepts: 1–15 bytes, no '/', ':' or whitespace, not '.' or '..'. */
export function checkLinkName(name: string): void {
  if (!name || Buffer.byteLength(name) > 15 || /[\s/:]/.test(name) || name === '.' || name === '..') {
    throw new NetlinkError(`link name ${JSON.stringify(name)} (1-15 bytes, no '/', ':' or whitespace)`, EINVAL, 0);
  }
}

const SCOPES = { universe: C.RT_SCOPE_UNIVERSE, link: C.RT_SCOPE_LINK, host: C.RT_SCOPE_HOST } as const;

export class RouteNetlink {
  readonly sock: NetlinkSocket;
  readonly netnsPath: string | undefined;

  private constructor(sock: NetlinkSocket, netnsPath: string | undefined) {
    this.sock = sock;
    this.netnsPath = netnsPath;
  }

  /** One NETLINK_ROUTE socket inside the namespace at netnsPath (default: the caller's). */
  static open(netnsPath?: string): RouteNetlink {
    return new RouteNetlink(NetlinkSocket.open(NETLINK_ROUTE, netnsPath), netnsPath);
  }

  close(): void {
    this.sock.close();
  }

  private req(type: number, flags: number, payload: Buffer, what: string | (() => string), dump = false): NetlinkMessage[] {
    try {
      return this.sock.request(type, flags, payload, { dump, what: typeof what === 'string' ? what : undefined });
    } catch (e) {
      // Naming the object may cost a lookup: do it only when something failed.
      if (e instanceof NetlinkError && typeof what === 'function') {
        throw new NetlinkError(what(), e.errno, e.seq, e.extack, e.offset);
      }
      throw e;
    }
  }

  /** "dev eth0" for error messages, or "ifindex 7" when the link cannot be named. */
  private dev(index: number): string {
    try {
      const l = this.getLinkByIndex(index);
      return l ? `dev ${l.name}` : `ifindex ${index} (no such link)`;
    } catch {
      return `ifindex ${index}`;
    }
  }

  // ---- links ----

  private getLinkBy(index: number, name: string | undefined, what: string): NetlinkMessage | null {
    const b = new AttrBuilder().raw(ifinfomsg(index)).u32(C.IFLA_EXT_MASK, C.RTEXT_FILTER_SKIP_STATS);
    if (name !== undefined) b.str(C.IFLA_IFNAME, name);
    try {
      return this.sock.request(C.RTM_GETLINK, 0, b.build(), { what })[0] ?? null;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ENODEV) return null;
      throw e;
    }
  }

  getLink(name: string): LinkInfo | null {
    checkLinkName(name);
    const m = this.getLinkBy(0, name, `RTM_GETLINK ${name}`);
    return m ? decodeLink(m.payload) : null;
  }

  getLinkByIndex(index: number): LinkInfo | null {
    const m = this.getLinkBy(index, undefined, `RTM_GETLINK ifindex ${index}`);
    return m ? decodeLink(m.payload) : null;
  }

  listLinks(): LinkInfo[] {
    const body = new AttrBuilder().raw(ifinfomsg()).u32(C.IFLA_EXT_MASK, C.RTEXT_FILTER_SKIP_STATS).build();
    return this.req(C.RTM_GETLINK, 0, body, 'RTM_GETLINK (dump)', true)
      .filter((m) => m.type === C.RTM_NEWLINK)
      .map((m) => decodeLink(m.payload));
  }

  /** Creates a bridge; EEXIST when a link of that name exists. */
  addBridge(name: string, opts: { mtu?: number; mac?: string } = {}): LinkInfo {
    checkLinkName(name);
    const b = new AttrBuilder().raw(ifinfomsg()).str(C.IFLA_IFNAME, name);
    if (opts.mtu !== undefined) b.u32(C.IFLA_MTU, opts.mtu);
    if (opts.mac !== undefined) b.bytes(C.IFLA_ADDRESS, parseMac(opts.mac));
    b.nested(C.IFLA_LINKINFO, (li) => li.str(C.IFLA_INFO_KIND, 'bridge'));
    this.req(C.RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, b.build(), `RTM_NEWLINK bridge ${name}`);
    const link = this.getLink(name);
    if (!link) throw new NetlinkError(`RTM_NEWLINK bridge ${name}: created but gone right after`, ENODEV, 0);
    return link;
  }

  /**
   * Creates a veth pair: `name` here, `peerName` directly inside the namespace
   * whose fd is peerNetnsFd (so the peer never appears here).
   */
  addVeth(opts: { name: string; peerName: string; peerNetnsFd?: number; mtu?: number; mac?: string; peerMac?: string }): void {
    checkLinkName(opts.name);
    checkLinkName(opts.peerName);
    const b = new AttrBuilder().raw(ifinfomsg()).str(C.IFLA_IFNAME, opts.name);
    if (opts.mtu !== undefined) b.u32(C.IFLA_MTU, opts.mtu);
    if (opts.mac !== undefined) b.bytes(C.IFLA_ADDRESS, parseMac(opts.mac));
    b.nested(C.IFLA_LINKINFO, (li) => {
      li.str(C.IFLA_INFO_KIND, 'veth');
      li.nested(C.IFLA_INFO_DATA, (d) =>
        d.nested(C.VETH_INFO_PEER, (p) => {
          // The peer's info is an ifinfomsg followed by its own link attributes.
          p.raw(ifinfomsg()).str(C.IFLA_IFNAME, opts.peerName);
          if (opts.peerNetnsFd !== undefined) p.u32(C.IFLA_NET_NS_FD, opts.peerNetnsFd);
          if (opts.mtu !== undefined) p.u32(C.IFLA_MTU, opts.mtu);
          if (opts.peerMac !== undefined) p.bytes(C.IFLA_ADDRESS, parseMac(opts.peerMac));
        }),
      );
    });
    this.req(C.RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, b.build(), `RTM_NEWLINK veth ${opts.name} peer ${opts.peerName}`);
  }

  private setLink(index: number, what: string, fill: (b: AttrBuilder) => void, flags = 0, change = 0): void {
    const b = new AttrBuilder().raw(ifinfomsg(index, flags, change));
    fill(b);
    this.req(C.RTM_SETLINK, 0, b.build(), () => `RTM_SETLINK ${what} ${this.dev(index)}`);
  }

  setUp(index: number): void {
    this.setLink(index, 'up', () => {}, C.IFF_UP, C.IFF_UP);
  }

  setDown(index: number): void {
    this.setLink(index, 'down', () => {}, 0, C.IFF_UP);
  }

  setMtu(index: number, mtu: number): void {
    this.setLink(index, `mtu ${mtu}`, (b) => b.u32(C.IFLA_MTU, mtu));
  }

  setMac(index: number, mac: string): void {
    const bytes = parseMac(mac);
    this.setLink(index, `address ${mac}`, (b) => b.bytes(C.IFLA_ADDRESS, bytes));
  }

  /** Enslaves the link to masterIndex (a bridge); 0 releases it. */
  setMaster(index: number, masterIndex: number): void {
    this.setLink(index, masterIndex ? `master ifindex ${masterIndex}` : 'nomaster', (b) => b.u32(C.IFLA_MASTER, masterIndex));
  }

  setPromisc(index: number, on: boolean): void {
    this.setLink(index, on ? 'promisc on' : 'promisc off', () => {}, on ? C.IFF_PROMISC : 0, C.IFF_PROMISC);
  }

  /** Bridge-port flags of a link enslaved to a bridge (IFLA_PROTINFO under AF_BRIDGE). */
  setBridgePort(index: number, flags: { hairpin?: boolean; isolated?: boolean; learning?: boolean }): void {
    const b = new AttrBuilder().raw(ifinfomsg(index, 0, 0, C.AF_BRIDGE));
    b.nested(C.IFLA_PROTINFO, (p) => {
      if (flags.hairpin !== undefined) p.u8(C.IFLA_BRPORT_MODE, flags.hairpin ? 1 : 0);
      if (flags.isolated !== undefined) p.u8(C.IFLA_BRPORT_ISOLATED, flags.isolated ? 1 : 0);
      if (flags.learning !== undefined) p.u8(C.IFLA_BRPORT_LEARNING, flags.learning ? 1 : 0);
    });
    const text = Object.entries(flags).map(([k, v]) => `${k} ${v ? 'on' : 'off'}`).join(' ');
    this.req(C.RTM_SETLINK, 0, b.build(), () => `RTM_SETLINK bridge port ${text} ${this.dev(index)}`);
  }

  getBridgePort(index: number): { hairpin: boolean; isolated: boolean; learning: boolean } {
    const m = this.getLinkBy(index, undefined, `RTM_GETLINK ifindex ${index}`);
    if (!m) throw new NetlinkError(`bridge port ifindex ${index}: no such link`, ENODEV, 0);
    const port = decodeBridgePort(m.payload);
    if (!port) throw new NetlinkError(`bridge port ${decodeLink(m.payload).name}: not enslaved to a bridge`, EINVAL, 0);
    return {
      hairpin: bridgePortFlag(port, C.IFLA_BRPORT_MODE),
      isolated: bridgePortFlag(port, C.IFLA_BRPORT_ISOLATED),
      learning: bridgePortFlag(port, C.IFLA_BRPORT_LEARNING),
    };
  }

  /** Deletes a link; false when it did not exist (DEL paths must be idempotent). */
  deleteLink(index: number): boolean {
    return this.deleteLinkWith(new AttrBuilder().raw(ifinfomsg(index)).build(), `RTM_DELLINK ifindex ${index}`);
  }

  deleteLinkByName(name: string): boolean {
    checkLinkName(name);
    return this.deleteLinkWith(new AttrBuilder().raw(ifinfomsg()).str(C.IFLA_IFNAME, name).build(), `RTM_DELLINK ${name}`);
  }

  private deleteLinkWith(body: Buffer, what: string): boolean {
    try {
      this.sock.request(C.RTM_DELLINK, 0, body, { what });
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ENODEV) return false;
      throw e;
    }
  }

  // ---- addresses ----

  private addrBody(index: number, c: ParsedCidr, flags: number): Buffer {
    const b = new AttrBuilder().raw(ifaddrmsg(afOf(c.family), c.prefixLen, flags, C.RT_SCOPE_UNIVERSE, index));
    b.bytes(C.IFA_LOCAL, c.bytes).bytes(C.IFA_ADDRESS, c.bytes);
    if (c.family === 4 && c.prefixLen < 31) b.bytes(C.IFA_BROADCAST, broadcast4(c.bytes, c.prefixLen));
    if (flags > 0xff) b.u32(C.IFA_FLAGS, flags);
    return b.build();
  }

  /** Adds cidr (e.g. '10.1.0.5/24') to the link; EEXIST when there unless replace. */
  addAddress(index: number, cidr: string, opts: { noDad?: boolean; replace?: boolean } = {}): void {
    const c = parseCidr(cidr);
    const flags = c.family === 6 && opts.noDad ? C.IFA_F_NODAD : 0;
    const nl = NLM_F_CREATE | (opts.replace ? NLM_F_REPLACE : NLM_F_EXCL);
    this.req(C.RTM_NEWADDR, nl, this.addrBody(index, c, flags), () => `RTM_NEWADDR ${cidr} ${this.dev(index)}`);
  }

  /** Removes cidr from the link; false when it was not there (or the link is gone). */
  deleteAddress(index: number, cidr: string): boolean {
    const c = parseCidr(cidr);
    try {
      this.req(C.RTM_DELADDR, 0, this.addrBody(index, c, 0), () => `RTM_DELADDR ${cidr} ${this.dev(index)}`);
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && (e.errno === EADDRNOTAVAIL || e.errno === ENODEV)) return false;
      throw e;
    }
  }

  listAddresses(opts: { index?: number; family?: 4 | 6 } = {}): AddrInfo[] {
    const af = opts.family ? afOf(opts.family) : C.AF_UNSPEC;
    const msgs = this.req(C.RTM_GETADDR, 0, ifaddrmsg(af, 0, 0, 0, 0), 'RTM_GETADDR (dump)', true);
    const out: AddrInfo[] = [];
    for (const m of msgs) {
      if (m.type !== C.RTM_NEWADDR) continue;
      const a = decodeAddr(m.payload);
      if (!a) continue;
      if (opts.index !== undefined && a.index !== opts.index) continue;
      if (opts.family !== undefined && a.family !== opts.family) continue;
      out.push(a);
    }
    return out;
  }

  // ---- routes ----

  private routeBody(r: RouteSpec, forDelete: boolean): { body: Buffer; family: 4 | 6; what: string } {
    let family: 4 | 6;
    let dst: Buffer | undefined;
    let dstLen = 0;
    if (r.dst === 'default') {
      if (!r.family) throw new NetlinkError(`route default: family (4 or 6) is needed`, EINVAL, 0);
      family = r.family;
    } else {
      const c = parseCidr(r.dst);
      if (r.family && r.family !== c.family) throw new NetlinkError(`route ${r.dst}: not an IPv${r.family} destination`, EINVAL, 0);
      family = c.family;
      dstLen = c.prefixLen;
      if (dstLen > 0) dst = maskBytes(c.bytes, dstLen);
    }
    const gw = r.gateway !== undefined ? parseIp(r.gateway) : undefined;
    if (gw && gw.family !== family) throw new NetlinkError(`route ${r.dst}: gateway ${r.gateway} is not IPv${family}`, EINVAL, 0);
    const src = r.src !== undefined ? parseIp(r.src) : undefined;
    if (src && src.family !== family) throw new NetlinkError(`route ${r.dst}: src ${r.src} is not IPv${family}`, EINVAL, 0);
    const table = r.table ?? C.RT_TABLE_MAIN;
    // Like ip(8): an IPv4 route without a gateway is on-link unless told otherwise.
    // A delete with no scope given matches any (RT_SCOPE_NOWHERE).
    const scope =
      r.scope !== undefined
        ? SCOPES[r.scope]
        : forDelete
          ? C.RT_SCOPE_NOWHERE
          : family === 4 && !gw
            ? C.RT_SCOPE_LINK
            : C.RT_SCOPE_UNIVERSE;
    const rtm = Buffer.alloc(12);
    rtm.writeUInt8(afOf(family), 0);
    rtm.writeUInt8(dstLen, 1);
    rtm.writeUInt8(table > 255 ? C.RT_TABLE_COMPAT : table, 4);
    rtm.writeUInt8(forDelete ? 0 : C.RTPROT_BOOT, 5);
    rtm.writeUInt8(scope, 6);
    rtm.writeUInt8(forDelete ? 0 : C.RTN_UNICAST, 7);
    const b = new AttrBuilder().raw(rtm).u32(C.RTA_TABLE, table);
    if (dst) b.bytes(C.RTA_DST, dst);
    if (gw) b.bytes(C.RTA_GATEWAY, gw.bytes);
    if (r.oif !== undefined) b.u32(C.RTA_OIF, r.oif);
    if (src) b.bytes(C.RTA_PREFSRC, src.bytes);
    if (r.metric !== undefined) b.u32(C.RTA_PRIORITY, r.metric);
    if (r.mtu !== undefined && !forDelete) {
      const mtu = r.mtu;
      b.nested(C.RTA_METRICS, (m) => m.u32(C.RTAX_MTU, mtu), false);
    }
    const parts = [r.dst === 'default' ? `default (IPv${family})` : r.dst];
    if (r.gateway) parts.push(`via ${r.gateway}`);
    if (table !== C.RT_TABLE_MAIN) parts.push(`table ${table}`);
    return { body: b.build(), family, what: parts.join(' ') };
  }

  /** Adds a route; EEXIST when there unless replace. */
  addRoute(r: RouteSpec, opts: { replace?: boolean } = {}): void {
    const { body, what } = this.routeBody(r, false);
    const nl = NLM_F_CREATE | (opts.replace ? NLM_F_REPLACE : NLM_F_EXCL);
    this.req(C.RTM_NEWROUTE, nl, body, () => `RTM_NEWROUTE ${what}${r.oif !== undefined ? ` ${this.dev(r.oif)}` : ''}`);
  }

  /** Deletes a route; false when no route matched. */
  deleteRoute(r: RouteSpec): boolean {
    const { body, what } = this.routeBody(r, true);
    try {
      this.req(C.RTM_DELROUTE, 0, body, () => `RTM_DELROUTE ${what}${r.oif !== undefined ? ` ${this.dev(r.oif)}` : ''}`);
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && (e.errno === ESRCH || e.errno === ENODEV)) return false;
      throw e;
    }
  }

  /** The routes of one family in one table (default 254, main; 0 for every table), cache entries left out. */
  listRoutes(family: 4 | 6, opts: { table?: number } = {}): RouteInfo[] {
    const table = opts.table ?? C.RT_TABLE_MAIN;
    const rtm = Buffer.alloc(12);
    rtm.writeUInt8(afOf(family), 0);
    const out: RouteInfo[] = [];
    for (const m of this.req(C.RTM_GETROUTE, 0, rtm, `RTM_GETROUTE IPv${family} (dump)`, true)) {
      if (m.type !== C.RTM_NEWROUTE) continue;
      const r = decodeRoute(m.payload);
      if (!r || r.family !== family || r.flags & C.RTM_F_CLONED) continue;
      if (table !== 0 && r.table !== table) continue;
      out.push(r);
    }
    return out;
  }
}
