// The synthetic cluster the backend benchmarks program (proxy-sync, proxy-sync-nft):
// service i has cluster IP 10.96.0.0 + i, port 80, ten endpoints 11.0.0.0 + i*10 + j
// (one of ten on this node), and every tenth service a node port.
import type { ProxyState, ServiceView } from '../../src/proxy/model.js';
import { ep, svcInfo, view } from '../../test/helpers/model.js';

export const ENDPOINTS = 10;

export const ip4 = (base: number, n: number) => `${base}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

/** Service i; endpointShift moves its endpoints' addresses (a one-endpoint change when 1). */
export function syntheticService(i: number, endpointShift = 0): ServiceView {
  const info = svcInfo('bench', `svc-${i}`, { portName: 'http', clusterIP: ip4(10, 0x600000 + i), nodePort: i % 10 === 0 ? 30000 + ((i / 10) % 2768) : 0 });
  const eps = [];
  for (let j = 0; j < ENDPOINTS; j++) {
    const local = (i + j) % ENDPOINTS === 0;
    eps.push(ep(ip4(11, i * ENDPOINTS + j + endpointShift), 8080, local, { nodeName: local ? 'bench' : 'other' }));
  }
  return view(info, eps);
}

export function syntheticServices(n: number): Map<string, ServiceView> {
  const services = new Map<string, ServiceView>();
  for (let i = 0; i < n; i++) {
    const v = syntheticService(i);
    services.set(v.info.name, v);
  }
  return services;
}

/** The node's view of services (the map itself: the benches change it between syncs). */
export function stateOf(services: ReadonlyMap<string, ServiceView>): ProxyState {
  return { family: 4, node: { name: 'bench', ips: ['10.0.0.1'], zone: '', labels: {}, podCIDRs: [] }, services };
}
