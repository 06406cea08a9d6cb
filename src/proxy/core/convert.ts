// Turns Kubernetes objects into the backend model (model.ts): one
// ServicePortInfo per service port and IP family, and endpoints per port.
import { isIP } from 'node:net';
import { LABEL_SERVICE_NAME, LABEL_SERVICE_PROXY_NAME, LABEL_HEADLESS, type EndpointSlice, type Service } from '../../api/types.js';
import type { EndpointInfo, IPFamily, Protocol, ServicePortInfo } from '../model.js';

export function serviceKey(namespace: string | undefined, name: string): string {
  return `${namespace || 'default'}/${name}`;
}

export function portKey(svcKey: string, portName: string): string {
  return `${svcKey}:${portName}`;
}

/** Services kube-proxy leaves alone: headless, ExternalName, or owned by another proxy. */
export function isProxied(svc: Service): boolean {
  const labels = svc.metadata.labels ?? {};
  if (LABEL_SERVICE_PROXY_NAME in labels || LABEL_HEADLESS in labels) return false;
  if (svc.spec.type === 'ExternalName') return false;
  const ips = clusterIPs(svc);
  return ips.length > 0;
}

function clusterIPs(svc: Service): string[] {
  const ips = svc.spec.clusterIPs?.length ? svc.spec.clusterIPs : svc.spec.clusterIP ? [svc.spec.clusterIP] : [];
  return ips.filter((ip) => ip && ip !== 'None' && isIP(ip));
}

function ofFamily(ips: readonly string[] | undefined, family: IPFamily): string[] {
  return (ips ?? []).filter((ip) => isIP(ip) === family);
}

function cidrsOfFamily(cidrs: readonly string[] | undefined, family: IPFamily): string[] {
  return (cidrs ?? []).map((c) => c.trim()).filter((c) => isIP(c.split('/')[0]!) === family);
}

/** The service's ports for one family (empty when it has no cluster IP of that family or is not proxied). */
export function servicePorts(svc: Service, family: IPFamily): ServicePortInfo[] {
  if (!isProxied(svc)) return [];
  const clusterIP = clusterIPs(svc).find((ip) => isIP(ip) === family);
  if (!clusterIP) return [];
  const spec = svc.spec;
  const namespace = svc.metadata.namespace || 'default';
  const name = svc.metadata.name;
  const type = spec.type ?? 'ClusterIP';
  const externalIPs = ofFamily(spec.externalIPs, family);
  const lbVIPs =
    type === 'LoadBalancer'
      ? ofFamily(
          (svc.status?.loadBalancer?.ingress ?? []).filter((i) => i.ip && i.ipMode !== 'Proxy').map((i) => i.ip!),
          family,
        )
      : [];
  const externallyAccessible = (p: { nodePort?: number }) => externalIPs.length > 0 || lbVIPs.length > 0 || (!!p.nodePort && type !== 'ClusterIP');
  const scheduler = svc.metadata.annotations?.['ipvs.podwire.io/scheduler'];
  const affinity = spec.sessionAffinity === 'ClientIP' ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800) : 0;
  return (spec.ports ?? []).map((p) => {
    const portName = p.name ?? '';
    const nodePort = type === 'NodePort' || type === 'LoadBalancer' ? (p.nodePort ?? 0) : 0;
    const etpLocal = spec.externalTrafficPolicy === 'Local' && externallyAccessible({ nodePort });
    return {
      name: portKey(serviceKey(namespace, name), portName),
      namespace,
      service: name,
      portName,
      protocol: (p.protocol ?? 'TCP') as Protocol,
      clusterIP,
      port: p.port,
      nodePort,
      externalIPs,
      loadBalancerVIPs: lbVIPs,
      loadBalancerSourceRanges: lbVIPs.length ? cidrsOfFamily(spec.loadBalancerSourceRanges, family) : [],
      affinityTimeoutSeconds: affinity,
      externalPolicyLocal: etpLocal,
      internalPolicyLocal: spec.internalTrafficPolicy === 'Local',
      healthCheckNodePort: etpLocal && type === 'LoadBalancer' ? (spec.healthCheckNodePort ?? 0) : 0,
      ...(scheduler ? { ipvsScheduler: scheduler } : {}),
    };
  });
}

/**
 * An endpoint as the tracker keeps it. Only an endpoint with topology hints
 * carries zoneHints (stripped before backends see it); the others are handed
 * to backends as they are, so a view allocates no endpoint objects.
 */
export interface TrackedEndpoint extends EndpointInfo {
  readonly zoneHints?: readonly string[] | null;
  /** hints.forNodes (trafficDistribution PreferSameNode). */
  readonly nodeHints?: readonly string[] | null;
}

/** The service an EndpointSlice belongs to, or null. */
export function sliceServiceKey(slice: EndpointSlice): string | null {
  const svc = slice.metadata.labels?.[LABEL_SERVICE_NAME];
  return svc ? serviceKey(slice.metadata.namespace, svc) : null;
}

/** One port of a slice with its endpoints. */
export interface SlicePort {
  readonly name: string;
  readonly protocol: Protocol;
  endpoints: TrackedEndpoint[];
}

/**
 * The endpoints one slice contributes, per port (an array, not a Map: a slice
 * has one or two ports, and 10,000s of small Maps cost megabytes). The
 * EndpointSlice contract: ready defaults to true, serving to ready, terminating to false.
 */
export function sliceEndpoints(slice: EndpointSlice, nodeName: string): SlicePort[] {
  const out: SlicePort[] = [];
  if (slice.addressType === 'FQDN') return out;
  for (const p of slice.ports ?? []) {
    if (!p.port) continue;
    const eps: TrackedEndpoint[] = [];
    for (const e of slice.endpoints ?? []) {
      const ip = e.addresses?.[0];
      if (!ip) continue;
      const ready = e.conditions?.ready ?? true;
      const serving = e.conditions?.serving ?? ready;
      const terminating = e.conditions?.terminating ?? false;
      const hints = e.hints?.forZones?.map((z) => z.name) ?? [];
      const nodeHints = e.hints?.forNodes?.map((n) => n.name) ?? [];
      const ep: TrackedEndpoint = {
        ip,
        port: p.port,
        ready,
        serving,
        terminating,
        nodeName: e.nodeName ?? '',
        zone: e.zone ?? '',
        isLocal: !!nodeName && e.nodeName === nodeName,
      };
      eps.push(hints.length || nodeHints.length ? { ...ep, ...(hints.length ? { zoneHints: hints } : {}), ...(nodeHints.length ? { nodeHints } : {}) } : ep);
    }
    out.push({ name: p.name ?? '', protocol: p.protocol ?? 'TCP', endpoints: eps });
  }
  return out;
}

export function sliceFamily(slice: EndpointSlice): IPFamily | null {
  return slice.addressType === 'IPv4' ? 4 : slice.addressType === 'IPv6' ? 6 : null;
}
