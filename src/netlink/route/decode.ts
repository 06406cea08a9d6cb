// Decoders for rtnetlink replies: ifinfomsg, ifaddrmsg and rtmsg messages into
// podwire's plain objects. Pure functions over the message payload.
import { attrStr, attrU32, attrU8, parseAttrs } from '../attrs.js';
import * as C from './constants.js';
import { formatIp, formatMac } from './ip.js';

export interface LinkInfo {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: 'bridge', 'veth', …; undefined for links without one (lo, physical NICs). */
  kind: string | undefined;
  mtu: number;
  /** Lower-case 'aa:bb:cc:dd:ee:ff'; '' for links without a hardware address. */
  mac: string;
  /** IFF_UP: administratively up. */
  up: boolean;
  promisc: boolean;
  /** The master (bridge) index; 0 for none. */
  masterIndex: number;
  /** IFLA_LINK, e.g. a veth peer's index (in the peer's namespace when linkNetnsId is set); 0 for none. */
  linkIndex: number;
  /** IFLA_LINK_NETNSID: the peer's namespace as numbered by this one; undefined when the peer is here. */
  linkNetnsId: number | undefined;
}

export interface AddrInfo {
  index: number;
  family: 4 | 6;
  address: string;
  prefixLen: number;
  /** 'address/prefixLen' */
  cidr: string;
  scope: number;
  /** IFA_F_* (the 32-bit IFA_FLAGS when the kernel sent it). */
  flags: number;
}

export interface RouteSpec {
  /** A CIDR, or 'default' (then family is needed). */
  dst: string;
  family?: 4 | 6;
  gateway?: string;
  oif?: number;
  scope?: 'universe' | 'link' | 'host';
  /** Preferred source address (RTA_PREFSRC). */
  src?: string;
  /** Routing table; default 254 (main). */
  table?: number;
  mtu?: number;
  metric?: number;
}

export interface RouteInfo extends RouteSpec {
  family: 4 | 6;
  /** A CIDR; the default route as 0.0.0.0/0 or ::/0. */
  dst: string;
  table: number;
  protocol: number;
  type: number;
  /** RTM_F_* of the route (RTM_F_CLONED marks a cache entry). */
  flags: number;
}

const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;
const RTMSG_LEN = 12;

export function familyOf(af: number): 4 | 6 | undefined {
  return af === C.AF_INET ? 4 : af === C.AF_INET6 ? 6 : undefined;
}

export function decodeLink(p: Buffer): LinkInfo {
  const flags = p.readUInt32LE(8);
  const a = parseAttrs(p, IFINFOMSG_LEN);
  const linkinfo = a.get(C.IFLA_LINKINFO);
  const netnsid = a.get(C.IFLA_LINK_NETNSID);
  return {
    index: p.readInt32LE(4),
    name: attrStr(a.get(C.IFLA_IFNAME)) ?? '',
    kind: linkinfo ? attrStr(parseAttrs(linkinfo).get(C.IFLA_INFO_KIND)) : undefined,
    mtu: attrU32(a.get(C.IFLA_MTU)) ?? 0,
    mac: formatMac(a.get(C.IFLA_ADDRESS)),
    up: (flags & C.IFF_UP) !== 0,
    promisc: (flags & C.IFF_PROMISC) !== 0,
    masterIndex: attrU32(a.get(C.IFLA_MASTER)) ?? 0,
    linkIndex: attrU32(a.get(C.IFLA_LINK)) ?? 0,
    linkNetnsId: netnsid && netnsid.length >= 4 ? netnsid.readInt32LE(0) : undefined,
  };
}

/** The IFLA_BRPORT_* attributes a bridge port reports in IFLA_LINKINFO/IFLA_INFO_SLAVE_DATA; null if not a port. */
export function decodeBridgePort(p: Buffer): Map<number, Buffer> | null {
  const linkinfo = parseAttrs(p, IFINFOMSG_LEN).get(C.IFLA_LINKINFO);
  if (!linkinfo) return null;
  const li = parseAttrs(linkinfo);
  if (attrStr(li.get(C.IFLA_INFO_SLAVE_KIND)) !== 'bridge') return null;
  const data = li.get(C.IFLA_INFO_SLAVE_DATA);
  return data ? parseAttrs(data) : new Map();
}

export function decodeAddr(p: Buffer): AddrInfo | null {
  const family = familyOf(p.readUInt8(0));
  if (!family) return null;
  const prefixLen = p.readUInt8(1);
  const a = parseAttrs(p, IFADDRMSG_LEN);
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
  const raw = (family === 4 ? a.get(C.IFA_LOCAL) : undefined) ?? a.get(C.IFA_ADDRESS);
  if (!raw) return null;
  const address = formatIp(raw);
  return {
    index: p.readUInt32LE(4),
    family,
    address,
    prefixLen,
    cidr: `${address}/${prefixLen}`,
    scope: p.readUInt8(3),
    flags: attrU32(a.get(C.IFA_FLAGS)) ?? p.readUInt8(2),
  };
}

function scopeName(scope: number): RouteSpec['scope'] {
  if (scope === C.RT_SCOPE_UNIVERSE) return 'universe';
  if (scope === C.RT_SCOPE_LINK) return 'link';
  if (scope === C.RT_SCOPE_HOST) return 'host';
  return undefined;
}

export function decodeRoute(p: Buffer): RouteInfo | null {
  const family = familyOf(p.readUInt8(0));
  if (!family) return null;
  const dstLen = p.readUInt8(1);
  const a = parseAttrs(p, RTMSG_LEN);
  const dstRaw = a.get(C.RTA_DST);
  const dst = `${dstRaw ? formatIp(dstRaw) : family === 4 ? '0.0.0.0' : '::'}/${dstLen}`;
  const r: RouteInfo = {
    family,
    dst,
    table: attrU32(a.get(C.RTA_TABLE)) ?? p.readUInt8(4),
    protocol: p.readUInt8(5),
    type: p.readUInt8(7),
    flags: p.readUInt32LE(8),
  };
  const scope = scopeName(p.readUInt8(6));
  if (scope) r.scope = scope;
  const gw = a.get(C.RTA_GATEWAY);
  if (gw) r.gateway = formatIp(gw);
  const oif = attrU32(a.get(C.RTA_OIF));
  if (oif !== undefined) r.oif = oif;
  const src = a.get(C.RTA_PREFSRC);
  if (src) r.src = formatIp(src);
  const metric = attrU32(a.get(C.RTA_PRIORITY));
  if (metric !== undefined) r.metric = metric;
  const metrics = a.get(C.RTA_METRICS);
  if (metrics) {
    const mtu = attrU32(parseAttrs(metrics).get(C.RTAX_MTU));
    if (mtu !== undefined) r.mtu = mtu;
  }
  return r;
}

export function bridgePortFlag(m: Map<number, Buffer>, type: number): boolean {
  return (attrU8(m.get(type)) ?? 0) !== 0;
}
