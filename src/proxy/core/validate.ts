// Checks a Service or EndpointSlice before the proxy uses it, with a reason a
// person can act on. Invalid objects are logged and skipped, never programmed.
import type { EndpointSlice, Service } from '../../api/types.js';
// Go's address rules, as the API server's: a zoned address ("fe80::1%eth0",
// which node:net takes) is refused here rather than by the renderers.
import { isIP } from '../../netlink/ip.js';

const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);

function validPort(p: unknown): boolean {
  return typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
}

/** null when the service can be proxied as far as its shape goes; otherwise why not. */
export function serviceProblem(svc: Service): string | null {
  if (!svc.metadata?.name) return 'metadata.name is missing';
  const spec = svc.spec;
  if (!spec || typeof spec !== 'object') return 'spec is missing';
  const ips = spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  for (const ip of ips) {
    if (ip !== 'None' && ip !== '' && !isIP(ip)) return `spec.clusterIP "${ip}" is not an IP address`;
  }
  for (const [i, p] of (spec.ports ?? []).entries()) {
    if (!validPort(p.port)) return `spec.ports[${i}].port ${JSON.stringify(p.port)} is out of range 1-65535`;
    if (p.protocol !== undefined && !PROTOCOLS.has(p.protocol)) return `spec.ports[${i}].protocol "${p.protocol}" is not TCP, UDP or SCTP`;
    if (p.nodePort !== undefined && p.nodePort !== 0 && !validPort(p.nodePort)) return `spec.ports[${i}].nodePort ${JSON.stringify(p.nodePort)} is out of range`;
  }
  for (const ip of spec.externalIPs ?? []) if (!isIP(ip)) return `spec.externalIPs "${ip}" is not an IP address`;
  for (const c of spec.loadBalancerSourceRanges ?? []) {
    const [addr, len] = c.split('/');
    if (!addr || !isIP(addr.trim()) || (len !== undefined && !/^\d+$/.test(len))) return `spec.loadBalancerSourceRanges "${c}" is not a CIDR`;
  }
  if (spec.healthCheckNodePort !== undefined && spec.healthCheckNodePort !== 0 && !validPort(spec.healthCheckNodePort)) {
    return `spec.healthCheckNodePort ${spec.healthCheckNodePort} is out of range`;
  }
  const t = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (t !== undefined && (!Number.isInteger(t) || t < 1 || t > 86400)) return `sessionAffinityConfig.clientIP.timeoutSeconds ${t} is not in 1-86400`;
  return null;
}

export function endpointSliceProblem(slice: EndpointSlice): string | null {
  if (!slice.metadata?.name) return 'metadata.name is missing';
  if (!['IPv4', 'IPv6', 'FQDN'].includes(slice.addressType)) return `addressType "${slice.addressType}" is not IPv4, IPv6 or FQDN`;
  if (!Array.isArray(slice.endpoints)) return 'endpoints must be a list';
  for (const [i, p] of (slice.ports ?? []).entries()) {
    if (p.port !== undefined && !validPort(p.port)) return `ports[${i}].port ${JSON.stringify(p.port)} is out of range 1-65535`;
    if (p.protocol !== undefined && !PROTOCOLS.has(p.protocol)) return `ports[${i}].protocol "${p.protocol}" is not TCP, UDP or SCTP`;
  }
  for (const [i, e] of slice.endpoints.entries()) {
    if (!Array.isArray(e.addresses) || e.addresses.length === 0) return `endpoints[${i}].addresses is empty`;
    if (slice.addressType !== 'FQDN') {
      for (const a of e.addresses) if (isIP(a) !== (slice.addressType === 'IPv4' ? 4 : 6)) return `endpoints[${i}] address "${a}" is not ${slice.addressType}`;
    }
  }
  return null;
}
