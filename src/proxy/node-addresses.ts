// Address sets the backends match against: CIDR lists (--nodeport-addresses,
// --ipvs-exclude-cidrs, loadBalancerSourceRanges) and the node addresses where
// node ports are served.
import ipaddr from 'ipaddr.js';
import type { ProxyConfig } from './model.js';

/**
 * Whether an address lies in one of cidrs. An IPv4-mapped IPv6 address (how a dual-stack socket reports an IPv4
 * peer) counts as its IPv4 address; an address that does not parse lies in none.
 */
export function cidrMatcher(cidrs: readonly string[]): (ip: string) => boolean {
  const nets = cidrs.map((c) => ipaddr.parseCIDR(c));
  return (ip: string) => {
    if (nets.length === 0 || !ipaddr.isValid(ip)) return false;
    let a = ipaddr.parse(ip);
    if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address();
    return nets.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits));
  };
}

/**
 * Where node ports are served: the node's addresses of the config's family within --nodeport-addresses (all of them
 * when it is empty), canonical and sorted; with `localhost`, 127.0.0.1 too when it is allowed (IPv4 only).
 */
export function nodePortIPs(config: ProxyConfig, nodeIPs: readonly string[], opts: { localhost: boolean }): string[] {
  const allowed = config.nodePortAddresses.length === 0 ? () => true : cidrMatcher(config.nodePortAddresses);
  const want = config.family === 6 ? 'ipv6' : 'ipv4';
  const out = new Set<string>();
  for (const ip of nodeIPs) if (ipaddr.isValid(ip) && ipaddr.parse(ip).kind() === want && allowed(ip)) out.add(ipaddr.parse(ip).toString());
  if (opts.localhost && config.family === 4 && allowed('127.0.0.1')) out.add('127.0.0.1');
  return [...out].sort();
}
