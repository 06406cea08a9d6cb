// Which endpoints serve which traffic: the one policy every backend shares
// (kube-proxy's CategorizeEndpoints). Ready endpoints first; when none are
// ready, serving+terminating ones, so connections drain instead of failing;
// internalTrafficPolicy / externalTrafficPolicy Local keep the node's own;
// topology hints narrow cluster traffic to the node's zone when every ready
// endpoint carries hints and one is for this zone.
import type { EndpointInfo, ServicePortInfo, ServiceView } from '../model.js';
import type { TrackedEndpoint } from './convert.js';

function externallyAccessible(svc: ServicePortInfo): boolean {
  return svc.nodePort > 0 || svc.externalIPs.length > 0 || svc.loadBalancerVIPs.length > 0;
}

function usesClusterEndpoints(svc: ServicePortInfo): boolean {
  return !svc.internalPolicyLocal || (externallyAccessible(svc) && !svc.externalPolicyLocal);
}

function usesLocalEndpoints(svc: ServicePortInfo): boolean {
  return svc.internalPolicyLocal || (externallyAccessible(svc) && svc.externalPolicyLocal);
}

function canUseTopology(endpoints: readonly TrackedEndpoint[], zone: string): boolean {
  if (!zone) return false;
  let forZone = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if (!ep.zoneHints) return false;
    if (ep.zoneHints.includes(zone)) forZone = true;
  }
  return forZone;
}

/** Strips the tracking fields, so backends see plain EndpointInfo (most endpoints have none: no copy). */
function plain(ep: TrackedEndpoint): EndpointInfo {
  if (!('zoneHints' in ep)) return ep;
  const { zoneHints: _ignored, ...rest } = ep;
  return rest;
}

export function categorize(svc: ServicePortInfo, endpoints: readonly TrackedEndpoint[], zone: string): ServiceView {
  let cluster: TrackedEndpoint[] = [];
  let local: TrackedEndpoint[] = [];
  let useTopology = false;
  let useTerminatingLocal = false;
  if (usesClusterEndpoints(svc)) {
    useTopology = canUseTopology(endpoints, zone);
    cluster = endpoints.filter((ep) => ep.ready && (!useTopology || ep.zoneHints!.includes(zone)));
    if (cluster.length === 0) cluster = endpoints.filter((ep) => ep.serving && ep.terminating);
  }
  if (usesLocalEndpoints(svc)) {
    local = endpoints.filter((ep) => ep.isLocal && ep.ready);
    if (local.length === 0) {
      local = endpoints.filter((ep) => ep.isLocal && ep.serving && ep.terminating);
      useTerminatingLocal = local.length > 0;
    }
  }
  const internal = svc.internalPolicyLocal ? local : cluster;
  const external = svc.externalPolicyLocal ? local : cluster;
  let all: TrackedEndpoint[];
  if (!usesLocalEndpoints(svc)) all = cluster;
  else if (!usesClusterEndpoints(svc)) all = local;
  else if (!useTopology && !useTerminatingLocal) all = cluster;
  else all = [...new Set([...cluster, ...local])];
  // One output array per distinct input list (internal, external and all are usually the same list).
  // An endpoint in several lists stays one object.
  const converted = new Map<readonly TrackedEndpoint[], readonly EndpointInfo[]>();
  const stripped = new Map<TrackedEndpoint, EndpointInfo>();
  const one = (ep: TrackedEndpoint) => {
    let p = stripped.get(ep);
    if (!p) stripped.set(ep, (p = plain(ep)));
    return p;
  };
  const conv = (list: TrackedEndpoint[]) => {
    let out = converted.get(list);
    if (!out) converted.set(list, (out = list.map(one)));
    return out;
  };
  return { info: svc, internalEndpoints: conv(internal), externalEndpoints: conv(external), allEndpoints: conv(all) };
}
