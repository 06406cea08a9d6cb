// Pure logic of the IPVS backend: what one service port renders, the
// reference-counted desired index, the plan for one virtual server, and the
// parsers of what a full sync reads back (/proc/net/ip_vs, ipset save, iptables-save).
import { describe, expect, it } from 'vitest';
import type { RealServerStatus } from '../../src/netlink/ipvs.js';
import { DesiredIndex } from '../../src/proxy/ipvs/desired.js';
import { planServer } from '../../src/proxy/ipvs/reconcile.js';
import { renderPort } from '../../src/proxy/ipvs/render.js';
import { parseIpsetSave, parseIpsetTerse, renderSetRepair, wantedMembers } from '../../src/proxy/ipvs/ipset.js';
import { ownedRules, renderRestore } from '../../src/proxy/ipvs/rules.js';
import { parseProcIpvs, splitProcIpvs } from '../../src/proxy/ipvs/snapshot.js';
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
    const r = renderPort(view(info({ ipvsScheduler: 'mh' }), []), opts);
    expect(r.servers[0]!.service.scheduler).toBe('mh');
    expect(r.setEntries).toContainEqual(['NO_ENDPOINTS', '10.96.0.10,tcp:80']);
    const bad = renderPort(view(info({ ipvsScheduler: 'bogus' }), []), opts);
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

describe('full-sync read-back', () => {
  // As the VM's kernel (6.1) prints them.
  const proc = [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn',
    'SCTP  0A60000B:0050 rr  ',
    'TCP  0A60000A:0050 rr  ',
    '  -> 0A010002:1F90      Masq    3      2          7         ',
    'TCP  [fd00:0096:0000:0000:0000:0000:0000:000a]:01BB sh persistent 75000 80000000',
    '  -> [fd00:0001:0000:0000:0000:0000:0000:0002]:20FB      Masq    1      0          0         ',
    'UDP  0A60000A:0035 rr  persistent 150000 FFFFFFFF',
    '  -> 0A010003:0035      Masq    1      0          0         ',
    'FWM  00000005 rr ',
    '  -> 0A010004:0000      Route   1      0          0         ',
    '',
  ].join('\n');

  it('/proc/net/ip_vs gives every real server by virtual server, fwmark services left out', () => {
    const m = parseProcIpvs(proc);
    expect([...m.keys()]).toEqual(['SCTP/10.96.0.11:80', 'TCP/10.96.0.10:80', 'TCP/[fd00:96::a]:443', 'UDP/10.96.0.10:53']);
    expect(m.get('SCTP/10.96.0.11:80')).toEqual([]);
    expect(m.get('TCP/10.96.0.10:80')).toEqual([
      { family: 4, address: '10.1.0.2', port: 8080, forward: 'masq', weight: 3, upperThreshold: 0, lowerThreshold: 0, activeConns: 2, inactiveConns: 7, persistConns: 0 },
    ]);
    expect(m.get('TCP/[fd00:96::a]:443')!.map((d) => [d.family, d.address, d.port])).toEqual([[6, 'fd00:1::2', 8443]]);
    expect(m.get('UDP/10.96.0.10:53')!.map((d) => `${d.address}:${d.port}`)).toEqual(['10.1.0.3:53']);
    // The blocks a full sync compares as text: exactly each virtual server's real-server lines.
    const blocks = splitProcIpvs(proc);
    expect(blocks.get('SCTP/10.96.0.11:80')).toBe('');
    expect(blocks.get('TCP/10.96.0.10:80')).toBe('  -> 0A010002:1F90      Masq    3      2          7         \n');
  });

  const save = [
    'create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x67a0f35b',
    'add KUBE-LOAD-BALANCER-SOURCE-CIDR 10.0.0.1,sctp:80,10.2.0.0/24',
    'add KUBE-LOAD-BALANCER-SOURCE-CIDR 10.0.0.1,tcp:80,10.2.0.2',
    'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535',
    'add KUBE-NODE-PORT-TCP 30080',
    'create KUBE-CLUSTER-IP hash:ip,port family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x226280fb',
    '',
  ].join('\n');

  it('ipset save against the desired members: nothing to send when they match (nets as ipset prints them)', () => {
    const saved = parseIpsetSave(save);
    expect(saved.get('KUBE-NODE-PORT-TCP')).toEqual({ type: 'bitmap:port', family: undefined, members: new Set(['30080']) });
    const want = new Map([
      ['LOAD_BALANCER_SOURCE_CIDR', ['10.0.0.1,tcp:80,10.2.0.2/32', '10.0.0.1,sctp:80,10.2.0.5/24']],
      ['NODE_PORT_TCP', ['30080']],
    ] as const);
    const r = renderSetRepair(4, wantedMembers(want), saved);
    // Every other set is missing (built and swapped in, empty); KUBE-CLUSTER-IP has the wrong family.
    expect(r.text).toContain('swap PW-TMP-4-0 KUBE-CLUSTER-IP');
    expect(r.text).not.toMatch(/^(add|del) KUBE-(NODE-PORT-TCP|LOAD-BALANCER-SOURCE-CIDR) /m);
    expect(r.changes).toBe(0);
  });

  it('ipset save against the desired members: only the differences', () => {
    const saved = parseIpsetSave(save);
    const want = new Map([
      ['LOAD_BALANCER_SOURCE_CIDR', ['10.0.0.1,tcp:80,10.2.0.2/32', '10.0.0.1,tcp:80,10.3.0.0/16']],
      ['NODE_PORT_TCP', ['30080', '30081']],
    ] as const);
    const lines = renderSetRepair(4, wantedMembers(want), saved).text.split('\n').filter((l) => / KUBE-(NODE-PORT-TCP|LOAD-BALANCER-SOURCE-CIDR) /.test(l));
    expect(lines).toEqual([
      'del KUBE-LOAD-BALANCER-SOURCE-CIDR 10.0.0.1,sctp:80,10.2.0.0/24 -exist',
      'add KUBE-LOAD-BALANCER-SOURCE-CIDR 10.0.0.1,tcp:80,10.3.0.0/16 -exist',
      'add KUBE-NODE-PORT-TCP 30081 -exist',
    ]);
  });

  it('ipset list -t: type, family and number of entries per set', () => {
    const terse = [
      'Name: KUBE-CLUSTER-IP',
      'Type: hash:ip,port',
      'Revision: 6',
      'Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1b0b0e83',
      'Size in memory: 6784',
      'References: 2',
      'Number of entries: 12',
      'Name: KUBE-NODE-PORT-TCP',
      'Type: bitmap:port',
      'Revision: 3',
      'Header: range 0-65535',
      'Size in memory: 8264',
      'References: 1',
      'Number of entries: 0',
      '',
    ].join('\n');
    expect([...parseIpsetTerse(terse)]).toEqual([
      ['KUBE-CLUSTER-IP', { type: 'hash:ip,port', family: 'inet', entries: 12 }],
      ['KUBE-NODE-PORT-TCP', { type: 'bitmap:port', family: undefined, entries: 0 }],
    ]);
  });

  it("iptables-save: podwire's part is its chains' rules and its jumps, per table", () => {
    const saved = [
      '*mangle',
      ':PREROUTING ACCEPT [0:0]',
      '-A PREROUTING -j KUBE-SERVICES-NOT-OURS',
      'COMMIT',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':KUBE-SERVICES - [0:0]',
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A PREROUTING -j SOMEONE-ELSE',
      '-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ',
      'COMMIT',
      '*filter',
      '-A KUBE-NODE-PORT -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT',
      'COMMIT',
      '',
    ].join('\n');
    expect(ownedRules(saved).split('\n')).toEqual([
      '*nat',
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ',
      '*filter',
      '-A KUBE-NODE-PORT -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT',
    ]);
  });
});
