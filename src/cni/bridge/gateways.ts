// Pure planning between IPAM and the kernel: which gateway each pod address
// uses, which default routes the pod gets, and which addresses the bridge
// needs. Kept apart from I/O so it is tested without namespaces.
import { formatIp, maskBytes, parseCidr, tryParseIp } from '../../netlink/route/ip.js';
import type { IPConfig, Route } from './result.js';

export interface GatewayPlan {
  /** The pod's addresses, each pointing at the pod interface and carrying its gateway. */
  ips: IPConfig[];
  /** IPAM's routes plus a default route per family when isDefaultGateway asks for one. */
  routes: Route[];
  /** Gateway addresses for the bridge, as CIDRs with the pod subnet's prefix, per family. */
  bridgeAddrs: { 4: string[]; 6: string[] };
}

/** The first address after the network address: the reference's gateway when IPAM names none. */
export function firstHost(cidr: string): string {
  const c = parseCidr(cidr);
  const b = maskBytes(c.bytes, c.prefixLen);
  for (let i = b.length - 1; i >= 0; i--) {
    b[i] = (b[i]! + 1) & 0xff;
    if (b[i] !== 0) break;
  }
  return formatIp(b);
}

export function familyOf(ip: string): 4 | 6 {
  const p = tryParseIp(ip.split('/')[0]!);
  if (!p) throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
  return p.family;
}

function isDefaultDst(dst: string): boolean {
  const c = parseCidr(dst);
  return c.prefixLen === 0;
}

/**
 * podIfaceIndex is the pod interface's position in the result's interface
 * list (2: bridge, host veth, pod).
 */
export function planGateways(
  ipam: { ips: IPConfig[]; routes: Route[] },
  conf: { isGateway: boolean; isDefaultGateway: boolean },
  podIfaceIndex: number,
): GatewayPlan {
  const routes = ipam.routes.map((r) => ({ ...r }));
  const bridgeAddrs: GatewayPlan['bridgeAddrs'] = { 4: [], 6: [] };
  const defaultDone = { 4: false, 6: false };
  const ips = ipam.ips.map((ipc) => {
    const family = familyOf(ipc.address);
    const out: IPConfig = { ...ipc, interface: podIfaceIndex };
    if (!out.gateway && conf.isGateway) out.gateway = firstHost(ipc.address);
    if (conf.isDefaultGateway && !defaultDone[family]) {
      const have = routes.some((r) => r.gw && isDefaultDst(r.dst) && familyOf(r.dst) === family);
      if (!have) routes.push({ dst: family === 4 ? '0.0.0.0/0' : '::/0', gw: out.gateway });
      defaultDone[family] = true;
    }
    if (conf.isGateway && out.gateway) {
      const prefix = parseCidr(ipc.address).prefixLen;
      const cidr = `${out.gateway}/${prefix}`;
      if (!bridgeAddrs[family].includes(cidr)) bridgeAddrs[family].push(cidr);
    }
    return out;
  });
  return { ips, routes, bridgeAddrs };
}

/** Whether two CIDRs' networks overlap (one contains the other's network address). */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (x.family !== y.family) return false;
  const len = Math.min(x.prefixLen, y.prefixLen);
  return maskBytes(x.bytes, len).equals(maskBytes(y.bytes, len));
}

/** Canonical text of a CIDR with host bits kept ("10.1.0.1/24"), for comparisons. */
export function canonicalCidr(cidr: string): string {
  const c = parseCidr(cidr);
  return `${formatIp(c.bytes)}/${c.prefixLen}`;
}

/** Canonical text of a network ("10.1.0.0/24"). */
export function canonicalNet(cidr: string): string {
  const c = parseCidr(cidr);
  return `${formatIp(maskBytes(c.bytes, c.prefixLen))}/${c.prefixLen}`;
}
