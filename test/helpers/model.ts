// Hand-built ProxyStates (what the core hands a backend) for the backends' unit,
// kernel and in-VM tests.
import type { EndpointInfo, IPFamily, NodeInfo, ProxyConfig, ProxyState, ServicePortInfo, ServiceView } from '../../src/proxy/model.js';

export function config(over: Partial<ProxyConfig> = {}): ProxyConfig {
  return { family: 4, clusterCIDRs: ['10.244.0.0/16'], masqueradeAll: false, masqueradeBit: 14, nodePortAddresses: [], localhostNodePorts: false, ...over };
}

export function svcInfo(namespace: string, service: string, over: Partial<ServicePortInfo> = {}): ServicePortInfo {
  const portName = over.portName ?? 'p80';
  return {
    name: `${namespace}/${service}:${portName}`,
    namespace,
    service,
    portName,
    protocol: 'TCP',
    clusterIP: '10.96.0.10',
    port: 80,
    nodePort: 0,
    externalIPs: [],
    loadBalancerVIPs: [],
    loadBalancerSourceRanges: [],
    affinityTimeoutSeconds: 0,
    externalPolicyLocal: false,
    internalPolicyLocal: false,
    healthCheckNodePort: 0,
    ...over,
  };
}

export function ep(ip: string, port = 8080, isLocal = true, over: Partial<EndpointInfo> = {}): EndpointInfo {
  return { ip, port, ready: true, serving: true, terminating: false, nodeName: isLocal ? 'node-1' : 'node-2', zone: '', isLocal, ...over };
}

/** A view as the shared policy would make it: ETP/ITP Local keep only local endpoints. */
export function view(info: ServicePortInfo, endpoints: EndpointInfo[]): ServiceView {
  const local = endpoints.filter((e) => e.isLocal);
  return viewOf(info, info.internalPolicyLocal ? local : endpoints, info.externalPolicyLocal ? local : endpoints);
}

/** A view with the endpoints for each kind of traffic given (the same endpoint counted once in allEndpoints). */
export function viewOf(info: ServicePortInfo, internalEndpoints: EndpointInfo[], externalEndpoints: EndpointInfo[] = internalEndpoints): ServiceView {
  const all = [...new Map([...internalEndpoints, ...externalEndpoints].map((e) => [`${e.ip}|${e.port}`, e])).values()];
  return { info, internalEndpoints, externalEndpoints, allEndpoints: all };
}

export function state(views: ServiceView[], family: IPFamily = 4, nodeIPs: string[] = ['10.0.0.11'], node: Partial<NodeInfo> = {}): ProxyState {
  return {
    family,
    node: { name: 'node-1', ips: nodeIPs, zone: '', labels: {}, podCIDRs: [], ...node },
    services: new Map(views.map((v) => [v.info.name, v])),
  };
}
