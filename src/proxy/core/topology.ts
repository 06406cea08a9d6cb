// Which endpoints serve which traffic: the one policy every backend shares
// (kube-proxy's CategorizeEndpoints). Ready endpoints first; when none are
// ready, serving+terminating ones, so connections drain instead of failing;
// internalTrafficPolicy / externalTrafficPolicy Local keep the node's own;
// topology hints narrow cluster traffic to this node (trafficDistribution
// PreferSameNode) or this zone, when every ready endpoint carries such hints.
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

/**
 * Which hints narrow cluster traffic, as kube-proxy decides: node hints
 * (trafficDistribution PreferSameNode) when every ready endpoint has them and
 * one is for this node; else zone hints when every ready endpoint has them and
 * one is for this zone; else none.
 */
function topologyFilter(endpoints: readonly TrackedEndpoint[], zone: string, nodeName: string): ((ep: TrackedEndpoint) => boolean) | null {
  let allNode = true;
  let forNode = false;
  let allZone = true;
  let forZone = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if (!ep.nodeHints) allNode = false;
    else if (nodeName && ep.nodeHints.includes(nodeName)) forNode = true;
    if (!ep.zoneHints) allZone = false;
    else if (zone && ep.zoneHints.includes(zone)) forZone = true;
  }
  if (allNode && forNode) return (ep) => ep.nodeHints!.includes(nodeName);
  if (allZone && forZone) return (ep) => ep.zoneHints!.includes(zone);
  return null;
}

/** Strips the tracking fields, so backends see plain EndpointInfo (most endpoints have none: no copy). */
function plain(ep: TrackedEndpoint): EndpointInfo {
  if (!('zoneHints' in ep) && !('nodeHints' in ep)) return ep;
  const { zoneHints: _z, nodeHints: _n, ...rest } = ep;
  return rest;
}

export function categorize(svc: ServicePortInfo, endpoints: readonly TrackedEndpoint[], zone: string, nodeName = ''): ServiceView {
  let cluster: TrackedEndpoint[] = [];
  let local: TrackedEndpoint[] = [];
  let useTopology = false;
  let useTerminatingLocal = false;
  if (usesClusterEndpoints(svc)) {
    const hinted = topologyFilter(endpoints, zone, nodeName);
    useTopology = hinted !== null;
    cluster = endpoints.filter((ep) => ep.ready && (!hinted || hinted(ep)));
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
