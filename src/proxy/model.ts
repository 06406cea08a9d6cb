// "What this node must serve": the data model every proxy backend renders.
//
// The core (change trackers + topology) turns Kubernetes objects into this
// model, one ProxyState per IP family, as kube-proxy's metaproxier does. A
// backend sees nothing Kubernetes-shaped: no Service, no EndpointSlice.
import type { Protocol } from '../api/types.js';

export type { Protocol };
export type IPFamily = 4 | 6;

/** One port of one Service, for one IP family. */
export interface ServicePortInfo {
  /** Unique key, kube-proxy's ServicePortName: "namespace/name:portName" (portName may be empty). */
  readonly name: string;
  readonly namespace: string;
  readonly service: string;
  readonly portName: string;
  readonly protocol: Protocol;
  readonly clusterIP: string;
  readonly port: number;
  /** 0 when the service has no node port. */
  readonly nodePort: number;
  readonly externalIPs: readonly string[];
  /** Load-balancer ingress IPs the node captures (ipMode VIP). ipMode Proxy IPs are left out, as in kube-proxy. */
  readonly loadBalancerVIPs: readonly string[];
  /** CIDRs allowed to reach the load-balancer IPs; empty: everyone. */
  readonly loadBalancerSourceRanges: readonly string[];
  /** sessionAffinity ClientIP timeout in seconds; 0: no affinity. */
  readonly affinityTimeoutSeconds: number;
  /** externalTrafficPolicy Local (only for services with external destinations). */
  readonly externalPolicyLocal: boolean;
  /** internalTrafficPolicy Local. */
  readonly internalPolicyLocal: boolean;
  /** The ETP Local health-check port, 0 when none. */
  readonly healthCheckNodePort: number;
  /** IPVS mode only: the Service's `ipvs.podwire.io/scheduler` annotation, when set. */
  readonly ipvsScheduler?: string;
}

/** One endpoint (address + port) of one service port. */
export interface EndpointInfo {
  readonly ip: string;
  readonly port: number;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName: string;
  readonly zone: string;
  /** On this node. */
  readonly isLocal: boolean;
}

/** A service port with its endpoints already chosen by the shared policy (topology.ts). */
export interface ServiceView {
  readonly info: ServicePortInfo;
  /** Endpoints for traffic to the cluster IP (internalTrafficPolicy, topology hints, terminating fallback applied). */
  readonly internalEndpoints: readonly EndpointInfo[];
  /** Endpoints for traffic to a node port, external IP or load-balancer IP (externalTrafficPolicy applied). */
  readonly externalEndpoints: readonly EndpointInfo[];
  /** internalEndpoints ∪ externalEndpoints: what the node may send to at all. Empty: reject the service. */
  readonly allEndpoints: readonly EndpointInfo[];
}

export interface NodeInfo {
  readonly name: string;
  /** The node's own addresses of this family (from the Node object, or the interfaces). */
  readonly ips: readonly string[];
  readonly zone: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly podCIDRs: readonly string[];
}

/** Settings a backend needs, already split per family. */
export interface ProxyConfig {
  readonly family: IPFamily;
  /** --cluster-cidr of this family: traffic from outside it to a cluster IP is masqueraded. Empty: no such rule. */
  readonly clusterCIDRs: readonly string[];
  readonly masqueradeAll: boolean;
  /** The fwmark bit for KUBE-MARK-MASQ (kube-proxy's --iptables-masquerade-bit, default 14). */
  readonly masqueradeBit: number;
  /** --nodeport-addresses of this family; empty: every local address. */
  readonly nodePortAddresses: readonly string[];
  /** Accept node ports on 127.0.0.1 (kube-proxy's iptables default; needs route_localnet). */
  readonly localhostNodePorts: boolean;
}

export interface ProxyState {
  readonly family: IPFamily;
  readonly node: NodeInfo;
  /** By ServicePortInfo.name. */
  readonly services: ReadonlyMap<string, ServiceView>;
}

export interface SyncRequest {
  readonly state: ProxyState;
  /**
   * Service ports whose service or endpoints changed (or that were removed) since the
   * last successful sync. null: the backend must rewrite everything (a full sync).
   */
  readonly changed: ReadonlySet<string> | null;
}

export interface SyncResult {
  /** Whether this sync rewrote everything (a backend may upgrade a partial request). */
  readonly full: boolean;
  /** Backend-specific sizes for metrics and logs, e.g. { 'nat rules': 1234 }. */
  readonly counts?: Readonly<Record<string, number>>;
}

export type ProxyMode = 'iptables' | 'nftables' | 'ipvs' | 'userspace';

export interface ProxyBackend {
  readonly mode: ProxyMode;
  readonly family: IPFamily;
  /** Brings the kernel to req.state. Throws on failure; the core retries with a full sync. */
  sync(req: SyncRequest): Promise<SyncResult>;
  /** Removes everything this backend ever programmed (--cleanup, or switching modes). */
  cleanup(): Promise<void>;
}
