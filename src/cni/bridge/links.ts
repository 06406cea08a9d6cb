// The bridge and the pod's veth pair. Each function guarantees one thing and
// is safe to repeat: ensureBridge reuses a bridge that is there, createVeth
// retries another random host name when one is taken.
import { AttrBuilder, attrStr, parseAttrs } from '../../netlink/attrs.js';
import { NetlinkError } from '../../netlink/socket.js';
import type { LinkInfo, RouteNetlink } from '../../netlink/rtnetlink.js';
import { CniError, ErrorCode } from '../spec/errors.js';
import type { BridgeConf } from './config.js';
import { ensureSysctl } from './sysctl.js';

const RTM_SETLINK = 19;
const IFLA_IFALIAS = 20;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_BR_VLAN_FILTERING = 7;

function ifinfomsg(index: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  return b;
}

function kernelError(what: string, e: unknown): CniError {
  const reason = e instanceof NetlinkError ? `${e.code}${e.extack ? ` (${e.extack})` : ''}` : String(e);
  return new CniError(ErrorCode.Internal, `${what}: ${reason}`);
}

/** Creates the bridge or reuses it; fails when a link of another kind has the name. */
export function ensureBridge(rt: RouteNetlink, conf: BridgeConf, netnsPath?: string): LinkInfo {
  let br = rt.getLink(conf.bridge);
  if (!br) {
    try {
      br = rt.addBridge(conf.bridge, conf.mtu ? { mtu: conf.mtu } : {});
    } catch (e) {
      // Another ADD created it between our look and our create.
      if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw kernelError(`could not create bridge ${conf.bridge}`, e);
      br = rt.getLink(conf.bridge);
      if (!br) throw kernelError(`bridge ${conf.bridge} vanished while being created`, e);
    }
  }
  if (br.kind !== 'bridge') {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `"${conf.bridge}" already exists but is not a bridge (it is a ${br.kind ?? 'device without a link kind'})`);
  }
  if (conf.vlan !== 0 || conf.vlans.length > 0) enableVlanFiltering(rt, br);
  if (conf.promiscMode && !br.promisc) rt.setPromisc(br.index, true);
  // podwire owns the routes on this bridge; router advertisements must not add any.
  ensureSysctl(`net/ipv6/conf/${conf.bridge}/accept_ra`, '0', netnsPath);
  if (!br.up) rt.setUp(br.index);
  return rt.getLinkByIndex(br.index) ?? br;
}

/**
 * vlan / vlanTrunk need VLAN filtering on the bridge. This machine's kernel
 * has none; its error is reported as it is. Where the kernel accepts it,
 * podwire still stops: per-port VLAN membership is not implemented yet.
 */
function enableVlanFiltering(rt: RouteNetlink, br: LinkInfo): void {
  const b = new AttrBuilder().raw(ifinfomsg(br.index));
  b.nested(IFLA_LINKINFO, (li) => {
    li.str(IFLA_INFO_KIND, 'bridge');
    li.nested(IFLA_INFO_DATA, (d) => d.u8(IFLA_BR_VLAN_FILTERING, 1));
  });
  try {
    rt.sock.request(RTM_SETLINK, 0, b.build(), { what: `RTM_SETLINK ${br.name} vlan_filtering 1` });
  } catch (e) {
    throw kernelError(`vlan/vlanTrunk need VLAN filtering on bridge ${br.name}, and the kernel refused to enable it`, e);
  }
  throw new CniError(ErrorCode.UnsupportedField, `vlan/vlanTrunk: VLAN filtering is on for ${br.name}, but podwire does not configure per-port VLANs yet`);
}

/**
 * "veth" and 8 random hex digits, as the reference names them. Math.random is
 * enough for a name (a taken one is retried), and loading node:crypto would
 * cost the plugin ~10 ms of start-up.
 */
export function randomVethName(): string {
  return `veth${Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0')}`;
}

export interface VethPair {
  host: LinkInfo;
  pod: LinkInfo;
}

/**
 * Creates the pair with the pod end made directly inside the pod's namespace
 * (never visible on the node), then puts the host end on the bridge with the
 * port flags, and brings it up. The pod end stays down until it has addresses.
 * On any failure the pair is deleted.
 */
export function createVeth(
  nodeRt: RouteNetlink,
  podRt: RouteNetlink,
  podNetnsFd: number,
  br: LinkInfo,
  opts: { ifname: string; mtu: number; mac: string | undefined; hairpin: boolean; isolated: boolean; alias: string },
  nodeNetnsPath?: string,
): VethPair {
  let hostName = '';
  for (let attempt = 0; ; attempt++) {
    hostName = randomVethName();
    try {
      nodeRt.addVeth({
        name: hostName,
        peerName: opts.ifname,
        peerNetnsFd: podNetnsFd,
        ...(opts.mtu ? { mtu: opts.mtu } : {}),
        ...(opts.mac ? { peerMac: opts.mac } : {}),
      });
      break;
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'EEXIST') {
        if (podRt.getLink(opts.ifname)) {
          throw new CniError(ErrorCode.Internal, `container interface ${opts.ifname} already exists in the pod's namespace`);
        }
        if (attempt < 9) continue; // our random host name was taken
      }
      throw kernelError(`could not create veth pair ${hostName} / ${opts.ifname}`, e);
    }
  }
  try {
    const host = nodeRt.getLink(hostName);
    const pod = podRt.getLink(opts.ifname);
    if (!host || !pod) throw new CniError(ErrorCode.Internal, `veth pair ${hostName} / ${opts.ifname} disappeared right after it was created`);
    setAlias(nodeRt, host.index, opts.alias);
    nodeRt.setMaster(host.index, br.index);
    nodeRt.setBridgePort(host.index, { hairpin: opts.hairpin, isolated: opts.isolated });
    ensureSysctl(`net/ipv6/conf/${hostName}/accept_ra`, '0', nodeNetnsPath);
    nodeRt.setUp(host.index);
    return { host: nodeRt.getLinkByIndex(host.index) ?? host, pod };
  } catch (e) {
    nodeRt.deleteLinkByName(hostName);
    if (e instanceof CniError) throw e;
    throw kernelError(`could not attach ${hostName} to bridge ${br.name}`, e);
  }
}

/**
 * The host end carries "<containerID>/<ifname>" as its alias, so DEL finds it
 * when the runtime no longer gives the pod's namespace.
 */
export function attachmentAlias(containerId: string, ifname: string): string {
  return `podwire:${containerId}/${ifname}`;
}

function setAlias(rt: RouteNetlink, index: number, alias: string): void {
  const b = new AttrBuilder().raw(ifinfomsg(index)).str(IFLA_IFALIAS, alias);
  rt.sock.request(RTM_SETLINK, 0, b.build(), { what: `RTM_SETLINK ifalias of ifindex ${index}` });
}

/** Host veths on the node whose alias names this attachment (normally one). */
export function findHostVethsByAlias(rt: RouteNetlink, alias: string): number[] {
  const out: number[] = [];
  for (const m of rt.sock.request(18 /* RTM_GETLINK */, 0, Buffer.alloc(16), { dump: true, what: 'RTM_GETLINK dump' })) {
    if (attrStr(parseAttrs(m.payload, 16).get(IFLA_IFALIAS)) === alias) out.push(m.payload.readInt32LE(4));
  }
  return out;
}
