import { describe, expect, it } from 'vitest';
import { endpointChain, serviceChains } from '../../src/proxy/iptables/names.js';
import { IptablesRenderer } from '../../src/proxy/iptables/render.js';
import { config, ep, state, svcInfo, view } from '../helpers/model.js';

const lines = (text: string) => (text === '' ? [] : text.slice(0, -1).split('\n'));

/** Every line a full sync writes for these services (the fixed chains, entries, own chains), by table. */
function renderAll(views: ReturnType<typeof view>[], cfg = config()) {
  const ren = new IptablesRenderer(cfg);
  const f = ren.fixed();
  const services = new Map([...state(views, cfg.family).services].map(([name, v]) => [name, ren.service(v)]));
  const rs = [...services.values()];
  const natShared = [...lines(f.nat), ...rs.flatMap((x) => lines(x.natEntries)), ...lines(f.natTail)];
  const nat = [...natShared, ...rs.flatMap((x) => lines(x.own))];
  const filter = [...lines(f.filter), ...rs.flatMap((x) => lines(x.filterEntries))];
  return { nat, filter, r: { natShared, services, fixed: f } };
}

describe('chain names', () => {
  it('hash service ports and endpoints as kube-proxy does', () => {
    // Values from kube-proxy's proxier_test.go for ns1/svc1:p80 tcp.
    const info = svcInfo('ns1', 'svc1');
    expect(serviceChains(info).svc).toBe('KUBE-SVC-XPGD46QRK7WJZT7O');
    expect(serviceChains(info).ext).toBe('KUBE-EXT-XPGD46QRK7WJZT7O');
    expect(endpointChain(info, { ip: '10.180.0.1', port: 80 })).toMatch(/^KUBE-SEP-[A-Z2-7]{16}$/);
    expect(endpointChain(info, { ip: '10.180.0.1', port: 80 })).not.toBe(endpointChain(info, { ip: '10.180.0.2', port: 80 }));
  });
});

describe('IptablesRenderer', () => {
  const info = svcInfo('ns1', 'svc1');
  const svc = serviceChains(info).svc;

  it('ClusterIP: entry in KUBE-SERVICES, off-cluster masquerade, probability spreading, SEP DNAT', () => {
    const eps = [ep('10.244.1.2'), ep('10.244.1.3'), ep('10.244.2.2', 8080, false)];
    const { nat } = renderAll([view(info, eps)]);
    expect(nat).toContain(`-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j ${svc}`);
    expect(nat).toContain(`-A ${svc} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ`);
    const spread = nat.filter((l) => l.startsWith(`-A ${svc} `) && l.includes(' -> '));
    expect(spread).toHaveLength(3);
    expect(spread[0]).toContain('--probability 0.3333333333');
    expect(spread[1]).toContain('--probability 0.5000000000');
    expect(spread[2]).not.toContain('statistic');
    const sep = endpointChain(info, eps[0]!);
    expect(nat).toContain(`-A ${sep} -m comment --comment "ns1/svc1:p80" -s 10.244.1.2/32 -j KUBE-MARK-MASQ`);
    expect(nat).toContain(`-A ${sep} -m comment --comment "ns1/svc1:p80" -m tcp -p tcp -j DNAT --to-destination 10.244.1.2:8080`);
    // The remote endpoint cannot hairpin through this node: no masquerade rule for it.
    expect(nat.filter((l) => l.includes('-s 10.244.2.2/32'))).toHaveLength(0);
    expect(nat[nat.length - 1 - nat.filter((l) => !l.startsWith('-A KUBE-SERVICES') && !l.startsWith('-A KUBE-NODEPORTS')).length]).toBeDefined();
  });

  it('ends KUBE-SERVICES with the node-port jump (LOCAL, no loopback unless localhostNodePorts)', () => {
    const { r } = renderAll([view(info, [ep('10.244.1.2')])]);
    const tail = r.natShared.filter((l) => l.startsWith('-A KUBE-SERVICES')).at(-1)!;
    expect(tail).toContain('-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS');
    expect(new IptablesRenderer(config({ localhostNodePorts: true })).localhostNodePorts()).toBe(true);
    const lr = renderAll([], config({ localhostNodePorts: true }));
    expect(lr.r.natShared.at(-1)).toContain('-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
    expect(lr.filter.some((l) => l.includes('block incoming localnet connections'))).toBe(true);
    const addrs = renderAll([], config({ nodePortAddresses: ['10.0.0.11', '192.168.0.0/24'] })).r;
    expect(addrs.natShared.filter((l) => l.endsWith('-j KUBE-NODEPORTS'))).toEqual([
      expect.stringContaining('-d 10.0.0.11/32 -j KUBE-NODEPORTS'),
      expect.stringContaining('-d 192.168.0.0/24 -j KUBE-NODEPORTS'),
    ]);
  });

  it('no endpoints: REJECT in filter for every destination, no nat rule', () => {
    const np = svcInfo('ns1', 'svc1', { nodePort: 30080, externalIPs: ['203.0.113.5'], loadBalancerVIPs: ['203.0.113.9'] });
    const { nat, filter, r } = renderAll([view(np, [])]);
    expect(nat.filter((l) => l.includes('ns1/svc1'))).toHaveLength(0);
    expect(r.services.get(np.name)?.chains).toEqual([]);
    expect(filter).toContain('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP has no endpoints" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j REJECT');
    expect(filter.filter((l) => l.startsWith('-A KUBE-EXTERNAL-SERVICES') && l.endsWith('-j REJECT'))).toHaveLength(3);
  });

  it('NodePort, externalIPs, LoadBalancer with source ranges: EXT masquerades, FW allows ranges, filter drops the rest', () => {
    const lb = svcInfo('ns1', 'svc1', { nodePort: 30080, externalIPs: ['203.0.113.5'], loadBalancerVIPs: ['203.0.113.9'], loadBalancerSourceRanges: ['10.0.0.100/32'] });
    const ch = serviceChains(lb);
    const { nat, filter } = renderAll([view(lb, [ep('10.244.1.2')])]);
    expect(nat).toContain(`-A KUBE-NODEPORTS -m comment --comment "ns1/svc1:p80" -m tcp -p tcp --dport 30080 -j ${ch.ext}`);
    expect(nat).toContain(`-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 external IP" -m tcp -p tcp -d 203.0.113.5/32 --dport 80 -j ${ch.ext}`);
    expect(nat).toContain(`-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp -p tcp -d 203.0.113.9/32 --dport 80 -j ${ch.fw}`);
    expect(nat).toContain(`-A ${ch.ext} -m comment --comment "masquerade traffic for ns1/svc1:p80 external destinations" -j KUBE-MARK-MASQ`);
    expect(nat).toContain(`-A ${ch.ext} -j ${ch.svc}`);
    expect(nat).toContain(`-A ${ch.fw} -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 10.0.0.100/32 -j ${ch.ext}`);
    expect(nat).toContain(`-A ${ch.fw} -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 203.0.113.9/32 -j ${ch.ext}`);
    expect(filter).toContain(`-A KUBE-PROXY-FIREWALL -m comment --comment "ns1/svc1:p80 traffic not accepted by ${ch.fw}" -m tcp -p tcp -d 203.0.113.9/32 --dport 80 -j DROP`);
  });

  it('ETP Local: SVL with local endpoints, pods and LOCAL sources to the cluster chain, DROP when none local', () => {
    const l = svcInfo('ns1', 'svc1', { nodePort: 30080, externalPolicyLocal: true, healthCheckNodePort: 32000 });
    const ch = serviceChains(l);
    const { nat, filter } = renderAll([view(l, [ep('10.244.1.2'), ep('10.244.2.2', 8080, false)])]);
    expect(nat).toContain(`-A ${ch.ext} -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -s 10.244.0.0/16 -j ${ch.svc}`);
    expect(nat).toContain(`-A ${ch.ext} -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j ${ch.svc}`);
    expect(nat).toContain(`-A ${ch.ext} -j ${ch.svl}`);
    expect(nat.filter((l2) => l2.startsWith(`-A ${ch.svl} `))).toHaveLength(1);
    expect(nat.filter((l2) => l2.startsWith(`-A ${ch.svc} `) && l2.includes(' -> '))).toHaveLength(2);
    expect(filter).toContain('-A KUBE-NODEPORTS -m comment --comment "ns1/svc1:p80 health check node port" -m tcp -p tcp --dport 32000 -j ACCEPT');
    const none = renderAll([view(l, [ep('10.244.2.2', 8080, false)])]);
    expect(none.filter).toContain('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP');
    // Pods still reach the remote endpoint through the node port.
    expect(none.nat).toContain(`-A ${ch.ext} -j ${ch.svl}`);
  });

  it('ITP Local: cluster IP goes to SVL; DROP when no local endpoint', () => {
    const l = svcInfo('ns1', 'svc1', { internalPolicyLocal: true });
    const ch = serviceChains(l);
    const { nat } = renderAll([view(l, [ep('10.244.1.2'), ep('10.244.2.2', 8080, false)])]);
    expect(nat).toContain(`-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j ${ch.svl}`);
    expect(nat.some((x) => x.startsWith(`-A ${ch.svc} `))).toBe(false);
    const none = renderAll([view(l, [ep('10.244.2.2', 8080, false)])]);
    expect(none.filter).toContain('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP has no local endpoints" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j DROP');
  });

  it('sessionAffinity ClientIP: recent checks before spreading, --set in the SEP', () => {
    const a = svcInfo('ns1', 'svc1', { affinityTimeoutSeconds: 10800 });
    const eps = [ep('10.244.1.2'), ep('10.244.1.3')];
    const { nat } = renderAll([view(a, eps)]);
    const sep = endpointChain(a, eps[0]!);
    const lines = nat.filter((l) => l.startsWith(`-A ${serviceChains(a).svc} `));
    expect(lines[1]).toBe(`-A ${serviceChains(a).svc} -m comment --comment "ns1/svc1:p80 -> 10.244.1.2:8080" -m recent --name ${sep} --rcheck --seconds 10800 --reap -j ${sep}`);
    expect(nat).toContain(`-A ${sep} -m comment --comment "ns1/svc1:p80" -m recent --name ${sep} --set -m tcp -p tcp -j DNAT --to-destination 10.244.1.2:8080`);
  });

  it('masqueradeAll marks every cluster-IP packet', () => {
    const { nat } = renderAll([view(info, [ep('10.244.1.2')])], config({ masqueradeAll: true }));
    expect(nat).toContain(`-A ${svc} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j KUBE-MARK-MASQ`);
  });

  it('UDP and SCTP render with their protocol match', () => {
    for (const protocol of ['UDP', 'SCTP'] as const) {
      const p = svcInfo('ns1', 'svc1', { protocol });
      const { nat } = renderAll([view(p, [ep('10.244.1.2')])]);
      const low = protocol.toLowerCase();
      expect(nat).toContain(`-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m ${low} -p ${low} -d 10.96.0.10/32 --dport 80 -j ${serviceChains(p).svc}`);
      expect(nat.some((l) => l.includes(`-m ${low} -p ${low} -j DNAT --to-destination 10.244.1.2:8080`))).toBe(true);
      expect(serviceChains(p).svc).not.toBe(svc);
    }
  });

  it('IPv6: /128, bracketed DNAT targets, no loopback node-port exclusion', () => {
    const v6 = svcInfo('ns1', 'svc1', { clusterIP: 'fd00:96::10' });
    const { nat, r } = renderAll([view(v6, [ep('fd00:244:1::2')])], config({ family: 6, clusterCIDRs: ['fd00:244::/48'] }));
    expect(nat).toContain(`-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d fd00:96::10/128 --dport 80 -j ${svc}`);
    expect(nat.some((l) => l.endsWith('-j DNAT --to-destination [fd00:244:1::2]:8080'))).toBe(true);
    expect(r.natShared.at(-1)).toContain('--dst-type LOCAL -j KUBE-NODEPORTS');
  });

  it('one service renders its entries, its own chains and their names apart (what a partial sync diffs)', () => {
    const np = svcInfo('ns1', 'svc1', { nodePort: 30080 });
    const eps = [ep('10.244.1.2'), ep('10.244.2.2', 8080, false)];
    const r = new IptablesRenderer(config()).service(view(np, eps));
    const ch = serviceChains(np);
    expect(r.chains).toEqual([ch.svc, ch.ext, endpointChain(np, eps[0]!), endpointChain(np, eps[1]!)]);
    expect(lines(r.natEntries)).toEqual([
      `-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j ${ch.svc}`,
      `-A KUBE-NODEPORTS -m comment --comment "ns1/svc1:p80" -m tcp -p tcp --dport 30080 -j ${ch.ext}`,
    ]);
    expect(r.natEntryLines).toBe(2);
    expect(r.filterEntries).toBe('');
    expect(lines(r.own)).toHaveLength(r.ownLines);
    expect(lines(r.own).every((l) => r.chains.some((c) => l.startsWith(`-A ${c} `)))).toBe(true);
  });

  it('several cluster CIDRs of the family: masquerade what comes from none of them', () => {
    const cidrs = ['10.244.0.0/16', '10.245.0.0/16'];
    const { nat, r } = renderAll([view(info, [ep('10.244.1.2')])], config({ clusterCIDRs: cidrs }));
    expect(r.fixed.natChains).toContain('KUBE-MASQ-OFF-CLUSTER');
    // One RETURN per cluster CIDR, then the mark for everything else.
    expect(nat.filter((l) => l.startsWith('-A KUBE-MASQ-OFF-CLUSTER '))).toEqual([
      '-A KUBE-MASQ-OFF-CLUSTER -m comment --comment "from the cluster CIDR 10.244.0.0/16: no masquerade" -s 10.244.0.0/16 -j RETURN',
      '-A KUBE-MASQ-OFF-CLUSTER -m comment --comment "from the cluster CIDR 10.245.0.0/16: no masquerade" -s 10.245.0.0/16 -j RETURN',
      '-A KUBE-MASQ-OFF-CLUSTER -j KUBE-MARK-MASQ',
    ]);
    expect(nat).toContain(`-A ${svc} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j KUBE-MASQ-OFF-CLUSTER`);
    expect(nat.some((l) => l.includes('! -s '))).toBe(false);
    // ETP Local: pods of every cluster CIDR take the shortcut to the cluster-wide chain.
    const l = svcInfo('ns1', 'svc2', { nodePort: 30080, externalPolicyLocal: true });
    const ext = renderAll([view(l, [ep('10.244.1.2')])], config({ clusterCIDRs: cidrs })).nat;
    expect(ext.filter((x) => x.includes('pod traffic for ns1/svc2:p80'))).toEqual(cidrs.map((cidr) =>
      `-A ${serviceChains(l).ext} -m comment --comment "pod traffic for ns1/svc2:p80 external destinations" -s ${cidr} -j ${serviceChains(l).svc}`));
    // One CIDR: the `! -s` form, no extra chain.
    const one = renderAll([view(info, [ep('10.244.1.2')])], config({ clusterCIDRs: cidrs.slice(0, 1) }));
    expect(one.r.fixed.natChains).not.toContain('KUBE-MASQ-OFF-CLUSTER');
    expect(one.nat.some((x) => x.includes('KUBE-MASQ-OFF-CLUSTER'))).toBe(false);
    expect(one.nat.filter((x) => x.includes('! -s 10.244.0.0/16 -j KUBE-MARK-MASQ'))).toHaveLength(1);
  });
});
