import { describe, expect, it } from 'vitest';
import type { EndpointSlice, Service } from '../../src/api/types.js';
import { ChangeTracker } from '../../src/proxy/core/change-tracker.js';
import { servicePorts } from '../../src/proxy/core/convert.js';
import { endpointSliceProblem, serviceProblem } from '../../src/proxy/core/validate.js';

function service(name: string, over: Partial<Service['spec']> = {}, labels: Record<string, string> = {}): Service {
  return { metadata: { name, namespace: 'ns', labels }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }], ...over } };
}

function slice(name: string, svc: string, ips: string[], over: Partial<EndpointSlice> = {}): EndpointSlice {
  return {
    metadata: { name, namespace: 'ns', labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: ips.map((ip) => ({ addresses: [ip], nodeName: ip.endsWith('.1') ? 'n1' : 'n2' })),
    ...over,
  };
}

describe('ChangeTracker', () => {
  it('reports the changed service ports and merges all slices of a service', () => {
    const t = new ChangeTracker('n1', [4]);
    t.upsertService(service('web'));
    t.upsertSlice(slice('web-a', 'web', ['10.0.0.1']));
    t.upsertSlice(slice('web-b', 'web', ['10.0.0.2']));
    const a = t.apply();
    expect([...a.changed.get(4)!]).toEqual(['ns/web:http']);
    const v = t.view(4).get('ns/web:http')!;
    expect(v.allEndpoints.map((e) => e.ip).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(v.allEndpoints.find((e) => e.ip === '10.0.0.1')!.isLocal).toBe(true);
    expect(t.pending).toBe(false);
  });

  it('keeps slices in its own form: a renamed node re-derives which endpoints are local', () => {
    const t = new ChangeTracker('n1', [4]);
    t.upsertService(service('web'));
    const raw = slice('web-a', 'web', ['10.0.0.1', '10.0.0.2']);
    t.upsertSlice(raw);
    raw.endpoints = []; // the tracker does not read the caller's object again
    t.apply();
    const local = () => t.view(4).get('ns/web:http')!.allEndpoints.filter((e) => e.isLocal).map((e) => e.ip);
    expect(local()).toEqual(['10.0.0.1']);
    t.setNode('n2', '');
    expect([...t.apply().changed.get(4)!]).toEqual(['ns/web:http']);
    expect(local()).toEqual(['10.0.0.2']);
    // A delete needs only the identity (what a relist synthesises).
    t.deleteSlice({ metadata: { name: 'web-a', namespace: 'ns' } });
    t.apply();
    expect(t.view(4).get('ns/web:http')!.allEndpoints).toEqual([]);
  });

  it('reads hints.forNodes from slices: trafficDistribution PreferSameNode keeps traffic on the node', () => {
    const t = new ChangeTracker('n1', [4]);
    t.upsertService(service('web'));
    const s = slice('web-a', 'web', ['10.0.0.1', '10.0.0.2']);
    s.endpoints[0]!.hints = { forNodes: [{ name: 'n1' }], forZones: [{ name: 'a' }] };
    s.endpoints[1]!.hints = { forNodes: [{ name: 'n2' }], forZones: [{ name: 'a' }] };
    t.upsertSlice(s);
    t.apply();
    expect(t.view(4).get('ns/web:http')!.internalEndpoints.map((e) => e.ip)).toEqual(['10.0.0.1']);
  });

  it('reports nothing when nothing changed, and only the touched service otherwise', () => {
    const t = new ChangeTracker('n1', [4]);
    t.upsertService(service('a'));
    t.upsertService(service('b', { clusterIP: '10.96.0.11' }));
    t.apply();
    expect(t.apply().changed.get(4)!.size).toBe(0);
    t.upsertSlice(slice('b-1', 'b', ['10.0.0.2']));
    expect([...t.apply().changed.get(4)!]).toEqual(['ns/b:http']);
  });

  it('removes a deleted service and keeps its old view for conntrack', () => {
    const t = new ChangeTracker('n1', [4]);
    t.upsertService(service('web', { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }));
    t.upsertSlice(slice('w', 'web', ['10.0.0.1'], { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }));
    t.apply();
    t.deleteService(service('web'));
    const a = t.apply();
    expect(t.view(4).size).toBe(0);
    expect(a.previous.get(4)!.get('ns/web:dns')!.allEndpoints[0]!.ip).toBe('10.0.0.1');
  });

  it('drops endpoints of a deleted slice', () => {
    const t = new ChangeTracker('n1', [4]);
    t.upsertService(service('web'));
    t.upsertSlice(slice('a', 'web', ['10.0.0.1']));
    t.upsertSlice(slice('b', 'web', ['10.0.0.2']));
    t.apply();
    t.deleteSlice(slice('a', 'web', []));
    t.apply();
    expect(t.view(4).get('ns/web:http')!.allEndpoints.map((e) => e.ip)).toEqual(['10.0.0.2']);
  });

  it('keeps families apart: IPv6 slices feed only the IPv6 view', () => {
    const t = new ChangeTracker('n1', [4, 6]);
    t.upsertService(service('web', { clusterIPs: ['10.96.0.10', 'fd00::10'], ipFamilies: ['IPv4', 'IPv6'] }));
    t.upsertSlice(slice('v4', 'web', ['10.0.0.1']));
    t.upsertSlice(slice('v6', 'web', ['fd00:1::1'], { addressType: 'IPv6' }));
    t.apply();
    expect(t.view(4).get('ns/web:http')!.allEndpoints.map((e) => e.ip)).toEqual(['10.0.0.1']);
    expect(t.view(6).get('ns/web:http')!.info.clusterIP).toBe('fd00::10');
    expect(t.view(6).get('ns/web:http')!.allEndpoints.map((e) => e.ip)).toEqual(['fd00:1::1']);
  });
});

describe('servicePorts (conversion)', () => {
  it('does not proxy headless, ExternalName or foreign-proxy services', () => {
    expect(servicePorts(service('h', { clusterIP: 'None' }), 4)).toEqual([]);
    expect(servicePorts(service('e', { type: 'ExternalName', externalName: 'x.example' }), 4)).toEqual([]);
    expect(servicePorts(service('f', {}, { 'service.kubernetes.io/service-proxy-name': 'other' }), 4)).toEqual([]);
  });

  it('keeps only ipMode VIP load-balancer IPs, and affinity with its default timeout', () => {
    const s: Service = {
      ...service('lb', { type: 'LoadBalancer', sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 80, nodePort: 30080 }], externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 }),
      status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }, { ip: '192.0.2.11', ipMode: 'Proxy' }] } },
    };
    const [p] = servicePorts(s, 4);
    expect(p!.loadBalancerVIPs).toEqual(['192.0.2.10']);
    expect(p!.nodePort).toBe(30080);
    expect(p!.affinityTimeoutSeconds).toBe(10800);
    expect(p!.externalPolicyLocal).toBe(true);
    expect(p!.healthCheckNodePort).toBe(32000);
  });

  it('carries the per-Service IPVS scheduler annotation', () => {
    const s = service('m');
    s.metadata.annotations = { 'ipvs.podwire.io/scheduler': 'mh' };
    expect(servicePorts(s, 4)[0]!.ipvsScheduler).toBe('mh');
    expect(servicePorts(service('n'), 4)[0]!.ipvsScheduler).toBeUndefined();
  });

  it('ignores externalTrafficPolicy Local on a service with no external destination', () => {
    const [p] = servicePorts(service('c', { externalTrafficPolicy: 'Local' }), 4);
    expect(p!.externalPolicyLocal).toBe(false);
  });
});

describe('validation', () => {
  it('names the problem', () => {
    expect(serviceProblem(service('x', { clusterIP: '10.96.0.999' }))).toMatch(/not an IP/);
    // Go's rules, as the API server's: no zones, no leading zeros.
    expect(serviceProblem(service('x', { clusterIP: 'fd00::1%eth0' }))).toMatch(/not an IP/);
    expect(serviceProblem(service('x', { clusterIP: '10.96.0.010' }))).toMatch(/not an IP/);
    expect(serviceProblem(service('x', { ports: [{ port: 70000 }] }))).toMatch(/out of range/);
    expect(serviceProblem(service('x', { ports: [{ port: 80, protocol: 'ICMP' as 'TCP' }] }))).toMatch(/not TCP, UDP or SCTP/);
    expect(serviceProblem(service('ok'))).toBeNull();
    expect(endpointSliceProblem(slice('s', 'web', ['fd00::1']))).toMatch(/not IPv4/);
    expect(endpointSliceProblem(slice('s', 'web', ['10.0.0.1']))).toBeNull();
  });
});
