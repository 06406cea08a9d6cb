// Configures the pod's interface from the planned result: sysctls, addresses
// (IPv6 without DAD unless enabledad), link up, routes; and the gateway
// addresses on the bridge. Also the checks CHECK runs against the same state.
import { NetlinkError } from '../../netlink/socket.js';
import type { LinkInfo, RouteNetlink, RouteSpec } from '../../netlink/rtnetlink.js';
import { CniError, ErrorCode } from '../spec/errors.js';
import { canonicalCidr, canonicalNet, cidrsOverlap, familyOf } from './gateways.js';
import type { IPConfig, Route } from './result.js';
import { ensureSysctl } from './sysctl.js';

const IFA_F_DADFAILED = 0x08;
const IFA_F_TENTATIVE = 0x40;

function scopeName(scope: number | undefined, what: string): RouteSpec['scope'] {
  if (scope === undefined) return undefined;
  if (scope === 0) return 'universe';
  if (scope === 253) return 'link';
  if (scope === 254) return 'host';
  throw new CniError(ErrorCode.InvalidNetworkConfig, `${what}: route scope ${scope} is not supported (0 universe, 253 link, 254 host)`);
}

function routeText(r: Route, gw: string | undefined): string {
  return `${r.dst}${gw ? ` via ${gw}` : ''}${r.table !== undefined ? ` table ${r.table}` : ''}`;
}

export function configurePodInterface(
  podRt: RouteNetlink,
  pod: LinkInfo,
  ips: IPConfig[],
  routes: Route[],
  opts: { enabledad: boolean; podNetnsPath: string },
): void {
  const ns = opts.podNetnsPath;
  const ifname = pod.name;
  const hasV6 = ips.some((i) => familyOf(i.address) === 6);
  if (hasV6) {
    for (const dev of ['lo', ifname]) ensureSysctl(`net/ipv6/conf/${dev}/disable_ipv6`, '0', ns);
    ensureSysctl(`net/ipv6/conf/${ifname}/keep_addr_on_down`, '1', ns);
    if (opts.enabledad) {
      ensureSysctl(`net/ipv6/conf/${ifname}/enhanced_dad`, '1', ns);
      ensureSysctl(`net/ipv6/conf/${ifname}/accept_dad`, '1', ns);
    } else {
      ensureSysctl(`net/ipv6/conf/${ifname}/accept_dad`, '0', ns);
    }
  }
  ensureSysctl(`net/ipv4/conf/${ifname}/arp_notify`, '1', ns);

  const gateways: { 4?: string; 6?: string } = {};
  for (const ipc of ips) {
    const family = familyOf(ipc.address);
    try {
      podRt.addAddress(pod.index, ipc.address, { noDad: !opts.enabledad });
    } catch (e) {
      throw new CniError(ErrorCode.Internal, `failed to add address ${ipc.address} to ${ifname}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (ipc.gateway && !gateways[family]) gateways[family] = ipc.gateway;
  }
  podRt.setUp(pod.index);
  if (hasV6 && opts.enabledad) settleAddresses(podRt, pod, 5000);

  for (const r of routes) {
    const family = familyOf(r.dst);
    const gw = r.gw ?? gateways[family];
    const spec: RouteSpec = { dst: r.dst, family, oif: pod.index };
    if (gw) spec.gateway = gw;
    if (r.priority !== undefined) spec.metric = r.priority;
    if (r.table !== undefined) spec.table = r.table;
    if (r.mtu !== undefined) spec.mtu = r.mtu;
    const scope = scopeName(r.scope, `route ${r.dst}`);
    if (scope) spec.scope = scope;
    try {
      podRt.addRoute(spec);
    } catch (e) {
      throw new CniError(ErrorCode.Internal, `failed to add route ${routeText(r, gw)} dev ${ifname}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** With DAD on, waits until no address of the link is tentative (the reference's 5 s bound). */
function settleAddresses(rt: RouteNetlink, link: LinkInfo, timeoutMs: number): void {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const addrs = rt.listAddresses({ index: link.index, family: 6 });
    const failed = addrs.find((a) => a.flags & IFA_F_DADFAILED);
    if (failed) throw new CniError(ErrorCode.Internal, `duplicate address detection failed for ${failed.cidr} on ${link.name}`);
    if (!addrs.some((a) => a.flags & IFA_F_TENTATIVE)) return;
    if (Date.now() > until) throw new CniError(ErrorCode.Internal, `addresses on ${link.name} still tentative after ${timeoutMs} ms`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

/**
 * Puts a gateway address on the bridge (forceAddress semantics as the
 * reference: one IPv4 address per bridge, IPv6 addresses as long as their
 * subnets do not overlap), then pins the bridge's MAC so it does not follow
 * its lowest-numbered port.
 */
export function ensureGatewayAddress(rt: RouteNetlink, br: LinkInfo, cidr: string, forceAddress: boolean, noDad: boolean): void {
  const family = familyOf(cidr);
  const want = canonicalCidr(cidr);
  for (const a of rt.listAddresses({ index: br.index, family })) {
    if (canonicalCidr(a.cidr) === want) return;
    if (family === 4 || cidrsOverlap(a.cidr, cidr)) {
      if (!forceAddress) {
        throw new CniError(ErrorCode.Internal, `"${br.name}" already has an IP address (${a.cidr}) different from ${want}; set forceAddress to replace it`);
      }
      rt.deleteAddress(br.index, a.cidr);
    }
  }
  try {
    rt.addAddress(br.index, cidr, { noDad });
  } catch (e) {
    if (!(e instanceof NetlinkError && e.code === 'EEXIST')) {
      throw new CniError(ErrorCode.Internal, `could not add IP address ${cidr} to "${br.name}": ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  // Read the MAC now: it changes when the first port joins a bridge.
  const mac = rt.getLinkByIndex(br.index)?.mac;
  if (mac && mac !== '00:00:00:00:00:00') rt.setMac(br.index, mac);
}

/** CHECK: every expected address is on the interface. */
export function checkAddresses(rt: RouteNetlink, link: LinkInfo, ips: IPConfig[]): void {
  const have = new Set(rt.listAddresses({ index: link.index }).map((a) => canonicalCidr(a.cidr)));
  for (const ipc of ips) {
    if (!have.has(canonicalCidr(ipc.address))) {
      throw new CniError(ErrorCode.Internal, `address ${ipc.address} expected on ${link.name} is missing`);
    }
  }
}

/** CHECK: every expected route exists (same destination, and gateway when the result names one). */
export function checkRoutes(rt: RouteNetlink, routes: Route[]): void {
  const byFamily = new Map<4 | 6, ReturnType<RouteNetlink['listRoutes']>>();
  for (const r of routes) {
    const family = familyOf(r.dst);
    let list = byFamily.get(family);
    if (!list) {
      list = rt.listRoutes(family, { table: 0 });
      byFamily.set(family, list);
    }
    const dst = canonicalNet(r.dst);
    const found = list.some((k) => canonicalNet(k.dst) === dst && (!r.gw || (k.gateway !== undefined && canonicalCidr(`${k.gateway}/0`) === canonicalCidr(`${r.gw}/0`))));
    if (!found) throw new CniError(ErrorCode.Internal, `route ${routeText(r, r.gw)} expected in the pod's namespace is missing`);
  }
}
