// What one service port needs on this node in userspace mode (pure): the
// sockets to listen on, which endpoint list each one balances over, and the
// service addresses that must be local (on podwire-us0).
import ipaddr from 'ipaddr.js';
import type { IPFamily, ServiceView } from '../model.js';
import { cidrMatcher } from '../node-addresses.js';

export type Destination = 'internal' | 'external';

export interface ListenerSpec {
  /** "TCP 10.96.0.10 80": unique per socket. */
  readonly key: string;
  readonly protocol: 'TCP' | 'UDP';
  readonly address: string;
  readonly port: number;
  /** internal: the cluster IP (internalEndpoints); external: node ports, external IPs, LB VIPs (externalEndpoints). */
  readonly destination: Destination;
  /** Load-balancer source ranges (LB VIP listeners only); empty: everyone. */
  readonly sourceRanges: readonly string[];
}

export interface PortPlan {
  readonly listeners: ListenerSpec[];
  /** Addresses to hold on the link: cluster IP, external IPs, LB VIPs (also without endpoints, so a SYN meets a RST). */
  readonly addresses: string[];
}

export function listenerKey(protocol: string, address: string, port: number): string {
  return `${protocol} ${address} ${port}`;
}

function canonical(ip: string): string {
  return ipaddr.parse(ip).toString();
}

export function familyOf(ip: string): IPFamily {
  return ipaddr.parse(ip).kind() === 'ipv6' ? 6 : 4;
}

/**
 * The plan of one service port. A port with no endpoints for a destination
 * gets no listener there: the kernel refuses the client at once. SCTP ports
 * get nothing (Node has no SCTP sockets); the caller says so in the log.
 */
export function planPort(view: ServiceView, nodePortIPs: readonly string[]): PortPlan {
  const info = view.info;
  const addresses = [...new Set([info.clusterIP, ...info.externalIPs, ...info.loadBalancerVIPs].map(canonical))];
  if (info.protocol !== 'TCP' && info.protocol !== 'UDP') return { listeners: [], addresses };
  const protocol = info.protocol;
  const listeners = new Map<string, ListenerSpec>();
  const add = (address: string, port: number, destination: Destination, sourceRanges: readonly string[] = []) => {
    const key = listenerKey(protocol, address, port);
    // An address listed twice (external IP also an LB VIP): the first, least restricted, wins.
    if (!listeners.has(key)) listeners.set(key, { key, protocol, address, port, destination, sourceRanges });
  };
  if (view.internalEndpoints.length > 0) add(canonical(info.clusterIP), info.port, 'internal');
  if (view.externalEndpoints.length > 0) {
    for (const ip of info.externalIPs) add(canonical(ip), info.port, 'external');
    for (const ip of info.loadBalancerVIPs) add(canonical(ip), info.port, 'external', info.loadBalancerSourceRanges);
    if (info.nodePort > 0) for (const ip of nodePortIPs) add(ip, info.nodePort, 'external');
  }
  return { listeners: [...listeners.values()], addresses };
}

/** A matcher for load-balancer source ranges; null when everyone may connect. */
export function sourceMatcher(ranges: readonly string[]): ((ip: string) => boolean) | null {
  return ranges.length === 0 ? null : cidrMatcher(ranges);
}
