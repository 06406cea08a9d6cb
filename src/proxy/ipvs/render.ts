// What one service port asks of the kernel in IPVS mode (pure: no I/O): its
// virtual servers with their real servers, the addresses kube-ipvs0 must
// hold, and its members of the shared ipsets.
import type { RealServer, VirtualServer } from '../../netlink/ipvs.js';
import { IPVS_SVC_F_PERSISTENT, canonicalAddress, familyOf } from '../../netlink/ipvs.js';
import type { EndpointInfo, IPFamily, ServicePortInfo, ServiceView } from '../model.js';
import type { SetId } from './names.js';

export interface DesiredVirtualServer {
  readonly service: VirtualServer;
  /** By "address:port" (destKeyString). */
  readonly dests: readonly RealServer[];
}

export interface PortRender {
  readonly servers: readonly DesiredVirtualServer[];
  /** Addresses for kube-ipvs0 (cluster, external and load-balancer IPs). */
  readonly addresses: readonly string[];
  readonly setEntries: ReadonlyArray<readonly [SetId, string]>;
}

export interface RenderOptions {
  readonly family: IPFamily;
  /** The default scheduler (--ipvs-scheduler). */
  readonly scheduler: string;
  /** Node addresses that serve node ports (already filtered by --nodeport-addresses). */
  readonly nodePortIPs: readonly string[];
}

/** Schedulers IPVS ships (ip_vs_<name>); anything else is refused before it reaches the kernel. */
export const KNOWN_SCHEDULERS = new Set(['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos']);

export function schedulerFor(info: ServicePortInfo, fallback: string): string {
  const s = info.ipvsScheduler?.trim();
  return s && KNOWN_SCHEDULERS.has(s) ? s : fallback;
}

function protoLower(p: ServicePortInfo['protocol']): string {
  return p.toLowerCase();
}

function dests(eps: readonly EndpointInfo[]): RealServer[] {
  const seen = new Set<string>();
  const out: RealServer[] = [];
  for (const e of eps) {
    const k = `${e.ip}|${e.port}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ address: canonicalAddress(e.ip), port: e.port, weight: 1, forward: 'masq' });
  }
  return out;
}

export function renderPort(view: ServiceView, opts: RenderOptions): PortRender {
  const info = view.info;
  const fam = opts.family;
  const proto = info.protocol;
  const pl = protoLower(proto);
  const scheduler = schedulerFor(info, opts.scheduler);
  const persistent = info.affinityTimeoutSeconds > 0;
  const base = { family: fam, protocol: proto, scheduler, flags: persistent ? IPVS_SVC_F_PERSISTENT : 0, timeout: persistent ? info.affinityTimeoutSeconds : 0 };
  const internal = dests(view.internalEndpoints);
  const external = dests(view.externalEndpoints);
  const servers: DesiredVirtualServer[] = [];
  const addresses: string[] = [];
  const entries: Array<readonly [SetId, string]> = [];
  const ipPort = (ip: string, port: number) => `${ip},${pl}:${port}`;
  const vip = (ip: string, port: number, ds: RealServer[]) => {
    servers.push({ service: { ...base, address: ip, port }, dests: ds });
    if (ds.length === 0) entries.push(['NO_ENDPOINTS', ipPort(ip, port)]);
  };
  const ofFamily = (ips: readonly string[]) => ips.filter((ip) => familyOf(ip) === fam).map(canonicalAddress);

  if (info.clusterIP && familyOf(info.clusterIP) === fam) {
    const ip = canonicalAddress(info.clusterIP);
    vip(ip, info.port, internal);
    addresses.push(ip);
    entries.push(['CLUSTER_IP', ipPort(ip, info.port)], ['IPVS_IPS', ip]);
  }
  for (const ip of ofFamily(info.externalIPs)) {
    vip(ip, info.port, external);
    addresses.push(ip);
    entries.push([info.externalPolicyLocal ? 'EXTERNAL_IP_LOCAL' : 'EXTERNAL_IP', ipPort(ip, info.port)], ['IPVS_IPS', ip]);
  }
  for (const ip of ofFamily(info.loadBalancerVIPs)) {
    vip(ip, info.port, external);
    addresses.push(ip);
    entries.push(['LOAD_BALANCER', ipPort(ip, info.port)], ['IPVS_IPS', ip]);
    if (info.externalPolicyLocal) entries.push(['LOAD_BALANCER_LOCAL', ipPort(ip, info.port)]);
    const ranges = info.loadBalancerSourceRanges.filter((c) => familyOf(c.split('/')[0]!) === fam);
    if (ranges.length > 0) {
      entries.push(['LOAD_BALANCER_FW', ipPort(ip, info.port)]);
      for (const c of ranges) entries.push(['LOAD_BALANCER_SOURCE_CIDR', `${ip},${pl}:${info.port},${c}`]);
    }
  }
  if (info.nodePort > 0) {
    // A node port is served on each node address (there is no "any address" virtual server).
    for (const ip of opts.nodePortIPs) servers.push({ service: { ...base, address: ip, port: info.nodePort }, dests: external });
    if (proto === 'TCP' || proto === 'UDP') {
      entries.push([`NODE_PORT_${proto}`, String(info.nodePort)]);
      if (info.externalPolicyLocal) entries.push([`NODE_PORT_LOCAL_${proto}`, String(info.nodePort)]);
    }
  }
  if (info.healthCheckNodePort > 0) entries.push(['HEALTH_CHECK_NODE_PORT', String(info.healthCheckNodePort)]);
  // A pod reaching itself through the service must be masqueraded, or it answers itself directly.
  for (const e of view.allEndpoints) {
    if (e.isLocal && familyOf(e.ip) === fam) {
      const ip = canonicalAddress(e.ip);
      entries.push(['LOOP_BACK', `${ip},${pl}:${e.port},${ip}`]);
    }
  }
  return { servers, addresses, setEntries: entries };
}
