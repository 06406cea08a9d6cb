// The names other tools and people see: ipsets (kube-proxy's, so dashboards
// and runbooks written for kube-proxy's IPVS mode keep working), the dummy
// link, and the per-Service scheduler annotation.
import type { IPFamily } from '../model.js';

/** The dummy interface holding every service address, so the kernel accepts packets to them locally. */
export const IPVS_DUMMY_LINK = 'kube-ipvs0';

/**
 * Per-Service scheduler: `ipvs.podwire.io/scheduler: mh` on a Service picks
 * that IPVS scheduler for all its ports (kubernetes#118784 asks kube-proxy for
 * this); the core copies it into ServicePortInfo as `ipvsScheduler`.
 */
export const SCHEDULER_ANNOTATION = 'ipvs.podwire.io/scheduler';

export type SetKind = 'hash:ip' | 'hash:ip,port' | 'hash:ip,port,ip' | 'hash:ip,port,net' | 'bitmap:port';

export interface SetSpec {
  /** Placeholder in rules.tpl. */
  readonly id: SetId;
  readonly v4: string;
  readonly v6: string;
  readonly kind: SetKind;
  readonly comment: string;
}

export type SetId =
  | 'CLUSTER_IP'
  | 'LOOP_BACK'
  | 'EXTERNAL_IP'
  | 'EXTERNAL_IP_LOCAL'
  | 'LOAD_BALANCER'
  | 'LOAD_BALANCER_LOCAL'
  | 'LOAD_BALANCER_FW'
  | 'LOAD_BALANCER_SOURCE_CIDR'
  | 'NODE_PORT_TCP'
  | 'NODE_PORT_LOCAL_TCP'
  | 'NODE_PORT_UDP'
  | 'NODE_PORT_LOCAL_UDP'
  | 'HEALTH_CHECK_NODE_PORT'
  | 'IPVS_IPS'
  | 'NO_ENDPOINTS';

const spec = (id: SetId, v4: string, kind: SetKind, comment: string, v6?: string): SetSpec => ({
  id,
  v4,
  v6: v6 ?? v4.replace(/^([A-Z]+)-/, '$1-6-'),
  kind,
  comment,
});

/** Every ipset the IPVS mode owns. ipset names are at most 31 characters, hence the one short v6 name. */
export const SETS: readonly SetSpec[] = [
  spec('CLUSTER_IP', 'KUBE-CLUSTER-IP', 'hash:ip,port', 'Kubernetes service cluster ip + port for masquerade purpose'),
  spec('LOOP_BACK', 'KUBE-LOOP-BACK', 'hash:ip,port,ip', 'Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose'),
  spec('EXTERNAL_IP', 'KUBE-EXTERNAL-IP', 'hash:ip,port', 'Kubernetes service external ip + port for masquerade and filter purpose'),
  spec('EXTERNAL_IP_LOCAL', 'KUBE-EXTERNAL-IP-LOCAL', 'hash:ip,port', 'Kubernetes service external ip + port with externalTrafficPolicy=local'),
  spec('LOAD_BALANCER', 'KUBE-LOAD-BALANCER', 'hash:ip,port', 'Kubernetes service lb portal'),
  spec('LOAD_BALANCER_LOCAL', 'KUBE-LOAD-BALANCER-LOCAL', 'hash:ip,port', 'Kubernetes service load balancer ip + port with externalTrafficPolicy=local'),
  spec('LOAD_BALANCER_FW', 'KUBE-LOAD-BALANCER-FW', 'hash:ip,port', 'Kubernetes service load balancer ip + port for load balancer with sourceRange'),
  spec('LOAD_BALANCER_SOURCE_CIDR', 'KUBE-LOAD-BALANCER-SOURCE-CIDR', 'hash:ip,port,net', 'Kubernetes service load balancer ip + port + source cidr for packet filter purpose', 'KUBE-6-LOAD-BALANCER-SRC-CIDR'),
  spec('NODE_PORT_TCP', 'KUBE-NODE-PORT-TCP', 'bitmap:port', 'Kubernetes nodeport TCP port for masquerade purpose'),
  spec('NODE_PORT_LOCAL_TCP', 'KUBE-NODE-PORT-LOCAL-TCP', 'bitmap:port', 'Kubernetes nodeport TCP port with externalTrafficPolicy=local'),
  spec('NODE_PORT_UDP', 'KUBE-NODE-PORT-UDP', 'bitmap:port', 'Kubernetes nodeport UDP port for masquerade purpose'),
  spec('NODE_PORT_LOCAL_UDP', 'KUBE-NODE-PORT-LOCAL-UDP', 'bitmap:port', 'Kubernetes nodeport UDP port with externalTrafficPolicy=local'),
  spec('HEALTH_CHECK_NODE_PORT', 'KUBE-HEALTH-CHECK-NODE-PORT', 'bitmap:port', 'Health check node port'),
  spec('IPVS_IPS', 'KUBE-IPVS-IPS', 'hash:ip', 'IPVS service addresses, to filter everything else sent to them'),
  spec('NO_ENDPOINTS', 'PODWIRE-NO-ENDPOINTS', 'hash:ip,port', 'podwire: service ip + port without endpoints, rejected'),
];

export function setName(id: SetId, family: IPFamily): string {
  const s = SETS.find((x) => x.id === id)!;
  return family === 6 ? s.v6 : s.v4;
}
