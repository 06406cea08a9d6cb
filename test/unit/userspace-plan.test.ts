import { describe, expect, it } from 'vitest';
import type { EndpointInfo, ProxyConfig, ProxyState, ServicePortInfo, ServiceView } from '../../src/proxy/model.js';
import { nodePortIPs } from '../../src/proxy/node-addresses.js';
import { planPort, sourceMatcher } from '../../src/proxy/userspace/plan.js';

function info(over: Partial<ServicePortInfo> = {}): ServicePortInfo {
  return {
    name: 'ns/s:p', namespace: 'ns', service: 's', portName: 'p', protocol: 'TCP', clusterIP: '10.96.0.10', port: 80,
    nodePort: 0, externalIPs: [], loadBalancerVIPs: [], loadBalancerSourceRanges: [], affinityTimeoutSeconds: 0,
    externalPolicyLocal: false, internalPolicyLocal: false, healthCheckNodePort: 0, ...over,
  };
}

const ep = (ip: string): EndpointInfo => ({ ip, port: 8080, ready: true, serving: true, terminating: false, nodeName: 'n1', zone: '', isLocal: true });

function view(i: ServicePortInfo, internal: EndpointInfo[], external: EndpointInfo[] = internal): ServiceView {
  return { info: i, internalEndpoints: internal, externalEndpoints: external, allEndpoints: [...new Set([...internal, ...external])] };
}

const config = (over: Partial<ProxyConfig> = {}): ProxyConfig => ({ family: 4, clusterCIDRs: [], masqueradeAll: false, masqueradeBit: 14, nodePortAddresses: [], localhostNodePorts: false, ...over });
const state = (ips: string[]): ProxyState => ({ family: 4, node: { name: 'n1', ips, zone: '', labels: {}, podCIDRs: [] }, services: new Map() });

describe('userspace plan', () => {
  it('a cluster IP with endpoints: one listener on it, the address held', () => {
    const p = planPort(view(info(), [ep('10.244.1.2')]), []);
    expect(p.listeners.map((l) => [l.key, l.destination])).toEqual([['TCP 10.96.0.10 80', 'internal']]);
    expect(p.addresses).toEqual(['10.96.0.10']);
  });

  it('no endpoints: no listener, but every address is still held (so clients are refused, not routed away)', () => {
    const p = planPort(view(info({ externalIPs: ['203.0.113.5'], nodePort: 30080 }), []), ['10.0.0.11']);
    expect(p.listeners).toEqual([]);
    expect(p.addresses).toEqual(['10.96.0.10', '203.0.113.5']);
  });

  it('external destinations use the external endpoints; LB VIPs carry their source ranges', () => {
    const i = info({ protocol: 'UDP', nodePort: 30053, externalIPs: ['203.0.113.5'], loadBalancerVIPs: ['203.0.113.9'], loadBalancerSourceRanges: ['10.0.0.100/32'] });
    const p = planPort(view(i, [ep('10.244.2.2')], [ep('10.244.1.2')]), ['10.0.0.11', '127.0.0.1']);
    expect(p.listeners.map((l) => `${l.key} ${l.destination} ${l.sourceRanges.join(',')}`)).toEqual([
      'UDP 10.96.0.10 80 internal ',
      'UDP 203.0.113.5 80 external ',
      'UDP 203.0.113.9 80 external 10.0.0.100/32',
      'UDP 10.0.0.11 30053 external ',
      'UDP 127.0.0.1 30053 external ',
    ]);
  });

  it('ETP Local with no local endpoint: the cluster IP is served, the node port is not', () => {
    const p = planPort(view(info({ nodePort: 30080, externalPolicyLocal: true }), [ep('10.244.2.2')], []), ['10.0.0.11']);
    expect(p.listeners.map((l) => l.key)).toEqual(['TCP 10.96.0.10 80']);
  });

  it('SCTP gets addresses but no listener', () => {
    const p = planPort(view(info({ protocol: 'SCTP' }), [ep('10.244.1.2')]), []);
    expect(p.listeners).toEqual([]);
    expect(p.addresses).toEqual(['10.96.0.10']);
  });

  it('IPv6 addresses are canonical', () => {
    const p = planPort(view(info({ clusterIP: 'fd00:96:0:0::a' }), [ep('fd00:244:1::2')]), []);
    expect(p.listeners[0]?.address).toBe('fd00:96::a');
  });

  it('node port addresses: the node IPs, filtered by --nodeport-addresses, plus 127.0.0.1 when localhost node ports are on', () => {
    expect(nodePortIPs(config(), ['10.0.0.11', '192.168.5.1'], { localhost: false })).toEqual(['10.0.0.11', '192.168.5.1']);
    expect(nodePortIPs(config({ nodePortAddresses: ['10.0.0.0/24'] }), ['10.0.0.11', '192.168.5.1'], { localhost: false })).toEqual(['10.0.0.11']);
    expect(nodePortIPs(config({ localhostNodePorts: true }), ['10.0.0.11'], { localhost: true })).toEqual(['10.0.0.11', '127.0.0.1']);
    expect(nodePortIPs(config({ localhostNodePorts: true, nodePortAddresses: ['10.0.0.0/24'] }), ['10.0.0.11'], { localhost: true })).toEqual(['10.0.0.11']);
  });

  it('source ranges: inside passes, outside fails, v4-mapped addresses are read as IPv4', () => {
    expect(sourceMatcher([])).toBeNull();
    const m = sourceMatcher(['10.0.0.100/32', '192.168.0.0/16'])!;
    expect(m('10.0.0.100')).toBe(true);
    expect(m('10.0.0.101')).toBe(false);
    expect(m('192.168.44.1')).toBe(true);
    expect(m('::ffff:10.0.0.100')).toBe(true);
    expect(m('not an ip')).toBe(false);
  });
});
