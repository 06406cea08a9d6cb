// Pure logic of the IPVS backend: what one service port renders, the
// reference-counted desired index, and the plan for one virtual server.
import { describe, expect, it } from 'vitest';
import type { RealServerStatus } from '../../src/netlink/ipvs.js';
import { DesiredIndex } from '../../src/proxy/ipvs/desired.js';
import { planServer } from '../../src/proxy/ipvs/reconcile.js';
import { renderPort } from '../../src/proxy/ipvs/render.js';
import { renderRestore } from '../../src/proxy/ipvs/rules.js';
import type { EndpointInfo, ProxyConfig, ServicePortInfo, ServiceView } from '../../src/proxy/model.js';

const info = (over: Partial<ServicePortInfo> = {}): ServicePortInfo => ({
  name: 'default/web:http', namespace: 'default', service: 'web', portName: 'http', protocol: 'TCP', clusterIP: '10.96.0.10', port: 80,
  nodePort: 0, externalIPs: [], loadBalancerVIPs: [], loadBalancerSourceRanges: [], affinityTimeoutSeconds: 0,
  externalPolicyLocal: false, internalPolicyLocal: false, healthCheckNodePort: 0, ...over,
});
const ep = (ip: string, isLocal = false): EndpointInfo => ({ ip, port: 8080, ready: true, serving: true, terminating: false, nodeName: 'n', zone: '', isLocal });
const view = (i: ServicePortInfo, eps: EndpointInfo[]): ServiceView => ({ info: i, internalEndpoints: eps, externalEndpoints: eps, allEndpoints: eps });
const opts = { family: 4 as const, scheduler: 'rr', nodePortIPs: ['192.168.1.5'] };
const status = (address: string, weight: number, activeConns = 0, inactiveConns = 0): RealServerStatus => ({
  family: 4, address, port: 8080, weight, forward: 'masq', upperThreshold: 0, lowerThreshold: 0, activeConns, inactiveConns, persistConns: 0,
});

describe('renderPort', () => {
  it('gives a cluster IP, node port, external and LB virtual servers with their set members', () => {
    const r = renderPort(
      view(info({ nodePort: 30080, externalIPs: ['1.2.3.4'], loadBalancerVIPs: ['5.6.7.8'], loadBalancerSourceRanges: ['9.0.0.0/8'], affinityTimeoutSeconds: 60, externalPolicyLocal: true }), [ep('10.1.0.2', true)]),
      opts,
    );
    expect(r.servers.map((s) => `${s.service.address}:${s.service.port}/${s.service.flags}/${s.service.timeout}`)).toEqual([
      '10.96.0.10:80/1/60',
      '1.2.3.4:80/1/60',
      '5.6.7.8:80/1/60',
      '192.168.1.5:30080/1/60',
    ]);
    expect(r.addresses).toEqual(['10.96.0.10', '1.2.3.4', '5.6.7.8']);
    expect(r.setEntries).toContainEqual(['LOAD_BALANCER_SOURCE_CIDR', '5.6.7.8,tcp:80,9.0.0.0/8']);
    expect(r.setEntries).toContainEqual(['NODE_PORT_LOCAL_TCP', '30080']);
    expect(r.setEntries).toContainEqual(['EXTERNAL_IP_LOCAL', '1.2.3.4,tcp:80']);
    expect(r.setEntries).toContainEqual(['LOOP_BACK', '10.1.0.2,tcp:8080,10.1.0.2']);
    expect(r.setEntries.some(([id]) => id === 'NO_ENDPOINTS')).toBe(false);
  });

  it('marks a service without endpoints for rejection, and honours the scheduler annotation', () => {
    const r = renderPort(view({ ...info(), ipvsScheduler: 'mh' } as ServicePortInfo, []), opts);
    expect(r.servers[0]!.service.scheduler).toBe('mh');
    expect(r.setEntries).toContainEqual(['NO_ENDPOINTS', '10.96.0.10,tcp:80']);
    const bad = renderPort(view({ ...info(), ipvsScheduler: 'bogus' } as ServicePortInfo, []), opts);
    expect(bad.servers[0]!.service.scheduler).toBe('rr');
  });
});

describe('DesiredIndex', () => {
  it('reports an address only when its last user goes', () => {
    const idx = new DesiredIndex();
    idx.update('a', renderPort(view(info({ name: 'a' }), [ep('10.1.0.2')]), opts));
    idx.update('b', renderPort(view(info({ name: 'b', port: 81 }), [ep('10.1.0.2')]), opts));
    expect(idx.takeDelta().addressesAdded).toEqual(['10.96.0.10']);
    idx.update('a', null);
    const d = idx.takeDelta();
    expect(d.addressesRemoved).toEqual([]);
    expect([...d.servers]).toEqual(['TCP/10.96.0.10:80']);
    idx.update('b', null);
    expect(idx.takeDelta().addressesRemoved).toEqual(['10.96.0.10']);
  });
});

describe('planServer', () => {
  const want = () => {
    const idx = new DesiredIndex();
    idx.update('a', renderPort(view(info(), [ep('10.1.0.2'), ep('10.1.0.3')]), opts));
    return idx.servers.get('TCP/10.96.0.10:80')!;
  };
  it('adds a missing server with its destinations', () => {
    expect(planServer(want(), undefined).ops.map((o) => o.op)).toEqual(['add-service', 'add-dest', 'add-dest']);
  });
  it('touches nothing when the kernel matches', () => {
    const w = want();
    expect(planServer(w, { service: w.service, dests: [status('10.1.0.2', 1), status('10.1.0.3', 1)] }).ops).toEqual([]);
  });
  it('drains a busy TCP destination at weight 0 and deletes an idle one', () => {
    const w = want();
    const p = planServer(w, { service: w.service, dests: [status('10.1.0.2', 1), status('10.1.0.3', 1), status('10.1.0.4', 1, 1, 0), status('10.1.0.5', 1)] });
    expect(p.draining).toBe(1);
    expect(p.ops).toEqual([
      { op: 'edit-dest', service: w.service, dest: { address: '10.1.0.4', port: 8080, weight: 0, forward: 'masq' } },
      { op: 'delete-dest', service: w.service, dest: status('10.1.0.5', 1) },
    ]);
    const again = planServer(w, { service: w.service, dests: [status('10.1.0.2', 1), status('10.1.0.3', 1), status('10.1.0.4', 0, 0, 0)] });
    expect(again.ops.map((o) => o.op)).toEqual(['delete-dest']);
  });
  it('edits the service when the scheduler changed, and deletes an unwanted server', () => {
    const w = want();
    expect(planServer(w, { service: { ...w.service, scheduler: 'lc' }, dests: [status('10.1.0.2', 1), status('10.1.0.3', 1)] }).ops.map((o) => o.op)).toEqual(['edit-service']);
    expect(planServer(undefined, { service: w.service, dests: [] }).ops.map((o) => o.op)).toEqual(['delete-service']);
  });
});

describe('rules', () => {
  const config: ProxyConfig = { family: 6, clusterCIDRs: ['fd00:1::/64'], masqueradeAll: false, masqueradeBit: 14, nodePortAddresses: [], localhostNodePorts: false };
  it('renders a fixed ruleset over the family sets and inserts only missing jumps', () => {
    const text = renderRestore(config, '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n');
    expect(text).toContain('! -s fd00:1::/64 -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-6-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ');
    expect(text).not.toContain('-I PREROUTING 1');
    expect(text).toContain('-I OUTPUT 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
    expect(text).toContain('--or-mark 0x4000');
  });
});
