import { describe, expect, it } from 'vitest';
import type { TrackedEndpoint } from '../../src/proxy/core/convert.js';
import { categorize } from '../../src/proxy/core/topology.js';
import type { ServicePortInfo } from '../../src/proxy/model.js';

function svc(over: Partial<ServicePortInfo> = {}): ServicePortInfo {
  return {
    name: 'ns/s:p', namespace: 'ns', service: 's', portName: 'p', protocol: 'TCP', clusterIP: '10.96.0.1', port: 80,
    nodePort: 0, externalIPs: [], loadBalancerVIPs: [], loadBalancerSourceRanges: [], affinityTimeoutSeconds: 0,
    externalPolicyLocal: false, internalPolicyLocal: false, healthCheckNodePort: 0, ...over,
  };
}

function ep(ip: string, over: Partial<TrackedEndpoint> = {}): TrackedEndpoint {
  return { ip, port: 8080, ready: true, serving: true, terminating: false, nodeName: 'n1', zone: 'a', isLocal: true, zoneHints: null, ...over };
}

const ips = (l: readonly { ip: string }[]) => l.map((e) => e.ip).sort();

describe('categorize (the shared endpoint policy)', () => {
  it('uses ready endpoints for cluster traffic', () => {
    const v = categorize(svc(), [ep('1'), ep('2', { ready: false, serving: false })], '');
    expect(ips(v.internalEndpoints)).toEqual(['1']);
    expect(ips(v.allEndpoints)).toEqual(['1']);
  });

  it('falls back to serving+terminating endpoints when none is ready', () => {
    const v = categorize(svc(), [ep('1', { ready: false, serving: true, terminating: true }), ep('2', { ready: false, serving: false, terminating: true })], '');
    expect(ips(v.internalEndpoints)).toEqual(['1']);
  });

  it('has no endpoints when nothing is ready or serving', () => {
    const v = categorize(svc(), [ep('1', { ready: false, serving: false })], '');
    expect(v.allEndpoints).toEqual([]);
  });

  it('internalTrafficPolicy Local keeps only local endpoints for cluster IP traffic', () => {
    const v = categorize(svc({ internalPolicyLocal: true }), [ep('1'), ep('2', { isLocal: false })], '');
    expect(ips(v.internalEndpoints)).toEqual(['1']);
    expect(ips(v.allEndpoints)).toEqual(['1']);
  });

  it('externalTrafficPolicy Local: external traffic local only, internal traffic everywhere', () => {
    const v = categorize(svc({ nodePort: 30080, externalPolicyLocal: true }), [ep('1'), ep('2', { isLocal: false })], '');
    expect(ips(v.externalEndpoints)).toEqual(['1']);
    expect(ips(v.internalEndpoints)).toEqual(['1', '2']);
    expect(ips(v.allEndpoints)).toEqual(['1', '2']);
  });

  it('ETP Local with no local endpoints leaves external traffic nowhere to go', () => {
    const v = categorize(svc({ nodePort: 30080, externalPolicyLocal: true }), [ep('2', { isLocal: false })], '');
    expect(v.externalEndpoints).toEqual([]);
    expect(ips(v.internalEndpoints)).toEqual(['2']);
  });

  it('ETP Local falls back to local terminating endpoints and still lists them as reachable', () => {
    const v = categorize(svc({ nodePort: 30080, externalPolicyLocal: true }), [ep('1', { ready: false, terminating: true }), ep('2', { isLocal: false })], '');
    expect(ips(v.externalEndpoints)).toEqual(['1']);
    expect(ips(v.internalEndpoints)).toEqual(['2']);
    expect(ips(v.allEndpoints)).toEqual(['1', '2']);
  });

  it('topology hints narrow cluster traffic to the node zone when every ready endpoint has hints', () => {
    const eps = [ep('1', { zoneHints: ['a'] }), ep('2', { zoneHints: ['b'], isLocal: false })];
    expect(ips(categorize(svc(), eps, 'a').internalEndpoints)).toEqual(['1']);
    expect(ips(categorize(svc(), eps, 'b').internalEndpoints)).toEqual(['2']);
  });

  it('ignores hints when one ready endpoint has none, or none is for this zone', () => {
    expect(ips(categorize(svc(), [ep('1', { zoneHints: ['a'] }), ep('2')], 'a').internalEndpoints)).toEqual(['1', '2']);
    expect(ips(categorize(svc(), [ep('1', { zoneHints: ['a'] }), ep('2', { zoneHints: ['a'] })], 'c').internalEndpoints)).toEqual(['1', '2']);
  });

  it('node hints (PreferSameNode) win over zone hints when every ready endpoint has one and one is for this node', () => {
    const eps = [ep('1', { nodeHints: ['n1'], zoneHints: ['a'] }), ep('2', { nodeHints: ['n2'], zoneHints: ['a'], isLocal: false })];
    expect(ips(categorize(svc(), eps, 'a', 'n1').internalEndpoints)).toEqual(['1']);
    expect(ips(categorize(svc(), eps, 'a', 'n2').internalEndpoints)).toEqual(['2']);
    // No node hint for this node: the zone hints apply (both are for zone a).
    expect(ips(categorize(svc(), eps, 'a', 'n3').internalEndpoints)).toEqual(['1', '2']);
    // One ready endpoint without a node hint: node hints are ignored, zone hints still narrow.
    const mixed = [ep('1', { nodeHints: ['n1'], zoneHints: ['a'] }), ep('2', { zoneHints: ['b'] })];
    expect(ips(categorize(svc(), mixed, 'b', 'n1').internalEndpoints)).toEqual(['2']);
    // Not-ready endpoints do not count.
    const unready = [ep('1', { nodeHints: ['n1'] }), ep('2', { ready: false })];
    expect(ips(categorize(svc(), unready, '', 'n1').internalEndpoints)).toEqual(['1']);
  });

  it('hands backends plain EndpointInfo without tracking fields', () => {
    const v = categorize(svc(), [ep('1', { zoneHints: ['a'], nodeHints: ['n1'] })], 'a', 'n1');
    expect(Object.keys(v.internalEndpoints[0]!)).not.toContain('zoneHints');
    expect(Object.keys(v.internalEndpoints[0]!)).not.toContain('nodeHints');
  });
});
