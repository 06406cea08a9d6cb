// The synthetic cluster the API-server benchmarks serve: N ClusterIP services,
// each with one EndpointSlice of E ready endpoints spread over 500 nodes and
// three zones, and the Node the proxy runs as (node-0).
import type { FakeObject } from '../../test/helpers/fake-apiserver.js';

export interface ClusterObjects {
  services: FakeObject[];
  slices: FakeObject[];
  node: FakeObject;
}

export function clusterObjects(n: number, eps: number): ClusterObjects {
  const services: FakeObject[] = [];
  const slices: FakeObject[] = [];
  for (let i = 0; i < n; i++) {
    const ns = `ns${i % 100}`;
    const name = `svc-${i}`;
    const ip = `10.96.${(i >> 8) & 255}.${i & 255}`;
    services.push({
      metadata: { name, namespace: ns, uid: `uid-s-${i}`, labels: { app: name } },
      spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ipFamilies: ['IPv4'], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }], selector: { app: name }, sessionAffinity: 'None' },
    });
    slices.push({
      metadata: { name: `${name}-abcde`, namespace: ns, uid: `uid-e-${i}`, labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
      addressType: 'IPv4',
      endpoints: Array.from({ length: eps }, (_, j) => ({
        addresses: [`10.${128 + ((i >> 12) & 63)}.${(i >> 4) & 255}.${((i & 15) << 4) + j}`],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: `node-${(i + j) % 500}`,
        zone: `zone-${j % 3}`,
        targetRef: { kind: 'Pod', namespace: ns, name: `${name}-pod-${j}`, uid: `uid-p-${i}-${j}` },
      })),
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
  }
  const node: FakeObject = {
    metadata: { name: 'node-0', labels: { 'topology.kubernetes.io/zone': 'zone-0' } },
    spec: { podCIDR: '10.244.0.0/24' },
    status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] },
  };
  return { services, slices, node };
}
