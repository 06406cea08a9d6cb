// Turns a ProxyState into iptables-restore text in kube-proxy's layout. Pure:
// no I/O, so every feature is unit-tested on the text. The caller says which
// services' own chains to (re)write; KUBE-SERVICES, KUBE-NODEPORTS and the
// filter chains are always rendered whole (they are small and shared).
import type { IPFamily, ProxyConfig, ServiceView } from '../model.js';
import { endpointChain, endpointString, serviceChains, servicePortName } from './names.js';
import { iptablesTemplates, type Templates } from './templates.js';

/** Chains podwire owns that are not per service. */
export const NAT_CHAINS = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-MARK-MASQ', 'KUBE-POSTROUTING'] as const;
export const FILTER_CHAINS = ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-FORWARD', 'KUBE-PROXY-FIREWALL'] as const;
export const CANARY_CHAIN = 'KUBE-PROXY-CANARY';

/** What one service renders to in its own nat chains. */
export interface ServiceRules {
  /** Chain names this service owns (declared and filled). */
  readonly chains: string[];
  readonly lines: string[];
}

export interface Rendered {
  /** nat lines for KUBE-SERVICES/KUBE-NODEPORTS and the fixed chains. */
  readonly natShared: string[];
  readonly filter: string[];
  /** Per service port name, for the services that were asked for. */
  readonly services: Map<string, ServiceRules>;
}

function hostMask(family: IPFamily): string {
  return family === 4 ? '/32' : '/128';
}

function mark(config: ProxyConfig): { mark: string; markBit: string } {
  const bit = `0x${(1 << config.masqueradeBit).toString(16)}`;
  return { mark: `${bit}/${bit}`, markBit: bit };
}

/** 1/(n-i) with kube-proxy's 10 decimals: each rule takes its share of what is left. */
function probability(n: number, i: number): string {
  return (1 / (n - i)).toFixed(10);
}

export class IptablesRenderer {
  private readonly t: Templates;

  constructor(private readonly config: ProxyConfig, templates?: Templates) {
    this.t = templates ?? iptablesTemplates();
  }

  /** Whether node ports are also served on 127.0.0.1 (needs route_localnet=1). */
  localhostNodePorts(): boolean {
    const c = this.config;
    if (c.family !== 4 || !c.localhostNodePorts) return false;
    return c.nodePortAddresses.length === 0 || c.nodePortAddresses.some((a) => a.startsWith('127.'));
  }

  /** The rules every sync writes, plus the own chains of the services named in `rewrite` (all when null). */
  render(services: ReadonlyMap<string, ServiceView>, rewrite: ReadonlySet<string> | null): Rendered {
    const c = this.config;
    const m = mark(c);
    const natShared: string[] = [];
    const filter: string[] = [];
    const out = new Map<string, ServiceRules>();
    const t = this.t;
    t.render('static.nat', m, natShared);
    t.render('static.filter', m, filter);
    if (this.localhostNodePorts()) t.render('static.filter.localnet', {}, filter);

    // Sorted so two syncs of the same state write the same text.
    const names = [...services.keys()].sort();
    for (const name of names) {
      const v = services.get(name)!;
      const own = rewrite === null || rewrite.has(name);
      this.renderService(v, natShared, filter, own ? out : null);
    }
    this.renderNodePortsTail(natShared);
    return { natShared, filter, services: out };
  }

  private renderNodePortsTail(nat: string[]): void {
    const c = this.config;
    if (c.nodePortAddresses.length === 0) {
      this.t.render(c.family === 4 && !this.localhostNodePorts() ? 'nodeports.localNoLoopback' : 'nodeports.local', {}, nat);
      return;
    }
    for (const a of c.nodePortAddresses) {
      if (c.family === 4 && a.startsWith('127.') && !this.localhostNodePorts()) continue;
      this.t.render('nodeports.address', { ip: a.includes('/') ? a : a + hostMask(c.family) }, nat);
    }
  }

  private renderService(v: ServiceView, nat: string[], filter: string[], own: Map<string, ServiceRules> | null): void {
    const c = this.config;
    const t = this.t;
    const info = v.info;
    const svc = servicePortName(info);
    const proto = info.protocol.toLowerCase();
    const chains = serviceChains(info);
    const mask = hostMask(c.family);
    const hasEndpoints = v.allEndpoints.length > 0;
    const hasInternal = v.internalEndpoints.length > 0;
    const hasExternal = v.externalEndpoints.length > 0;
    const hasExternalDest = info.nodePort > 0 || info.externalIPs.length > 0 || info.loadBalancerVIPs.length > 0;
    const internalChain = info.internalPolicyLocal ? chains.svl : chains.svc;
    const externalChain = info.externalPolicyLocal ? chains.svl : chains.svc;
    const usesExt = hasEndpoints && hasExternalDest;
    const usesFw = usesExt && info.loadBalancerSourceRanges.length > 0 && info.loadBalancerVIPs.length > 0;
    const base = { svc, proto, port: info.port };
    const cip = info.clusterIP + mask;

    // Entry points (nat) or refusals (filter).
    if (hasInternal) t.render('svc.clusterIP', { ...base, ip: cip, chain: internalChain }, nat);
    else {
      const [verdict, why] = hasEndpoints ? ['DROP', 'has no local endpoints'] : ['REJECT', 'has no endpoints'];
      t.render('filter.clusterIP', { ...base, ip: cip, verdict, why }, filter);
    }
    if (usesExt) {
      for (const ip of info.externalIPs) t.render('svc.externalIP', { ...base, ip: ip + mask, chain: chains.ext }, nat);
      for (const ip of info.loadBalancerVIPs) t.render('svc.loadBalancer', { ...base, ip: ip + mask, chain: usesFw ? chains.fw : chains.ext }, nat);
      if (info.nodePort > 0) t.render('svc.nodePort', { ...base, nodePort: info.nodePort, chain: chains.ext }, nat);
      if (usesFw) for (const ip of info.loadBalancerVIPs) t.render('filter.firewall', { ...base, ip: ip + mask, chain: chains.fw }, filter);
    }
    if (hasExternalDest && !hasExternal) {
      // No endpoint for external traffic: REJECT when there is none at all, DROP when only none local (ETP Local).
      const [verdict, why] = hasEndpoints ? ['DROP', 'has no local endpoints'] : ['REJECT', 'has no endpoints'];
      for (const ip of info.externalIPs) t.render('filter.externalIP', { ...base, ip: ip + mask, verdict, why }, filter);
      for (const ip of info.loadBalancerVIPs) t.render('filter.loadBalancer', { ...base, ip: ip + mask, verdict, why }, filter);
      if (info.nodePort > 0) t.render('filter.nodePort', { ...base, nodePort: info.nodePort, verdict, why }, filter);
    }
    if (info.healthCheckNodePort > 0) t.render('filter.healthCheck', { svc, nodePort: info.healthCheckNodePort }, filter);

    if (!own) return;
    const rules: ServiceRules = { chains: [], lines: [] };
    own.set(info.name, rules);
    if (!hasEndpoints) return;
    const lines = rules.lines;

    // The SVC (cluster-wide) and SVL (node-local) chains, each with the endpoints chosen for it.
    const written = new Set<string>();
    const policyChain = (chain: string, endpoints: ServiceView['internalEndpoints'], masq: boolean) => {
      if (written.has(chain)) return;
      written.add(chain);
      rules.chains.push(chain);
      if (masq) {
        if (c.masqueradeAll) t.render('chain.masqAll', { ...base, chain, ip: cip }, lines);
        else if (c.clusterCIDRs[0]) t.render('chain.masqOffCluster', { ...base, chain, ip: cip, cidr: c.clusterCIDRs[0] }, lines);
      }
      const seps = endpoints.map((ep) => ({ sep: endpointChain(info, ep), endpoint: endpointString(ep) }));
      if (info.affinityTimeoutSeconds > 0)
        for (const s of seps) t.render('chain.affinity', { svc, chain, ...s, timeout: info.affinityTimeoutSeconds }, lines);
      seps.forEach((s, i) => {
        if (i < seps.length - 1) t.render('chain.spread', { svc, chain, ...s, probability: probability(seps.length, i) }, lines);
        else t.render('chain.last', { svc, chain, ...s }, lines);
      });
    };
    const svcEndpoints = info.internalPolicyLocal ? v.externalEndpoints : v.internalEndpoints;
    const svlEndpoints = info.internalPolicyLocal ? v.internalEndpoints : v.externalEndpoints;
    const internalUsed = hasInternal;
    if (internalUsed) policyChain(internalChain, internalChain === chains.svc ? svcEndpoints : svlEndpoints, true);
    if (usesExt) {
      // ETP Local still sends pods and the node itself to the internal chain, which must then exist.
      if (info.externalPolicyLocal) policyChain(internalChain, internalChain === chains.svc ? svcEndpoints : svlEndpoints, true);
      policyChain(externalChain, externalChain === chains.svc ? svcEndpoints : svlEndpoints, externalChain === internalChain);
      rules.chains.push(chains.ext);
      if (!info.externalPolicyLocal) t.render('ext.cluster', { svc, chain: chains.ext, target: externalChain }, lines);
      else {
        if (c.clusterCIDRs[0]) t.render('ext.localPods', { svc, chain: chains.ext, cidr: c.clusterCIDRs[0], internal: internalChain }, lines);
        t.render('ext.local', { svc, chain: chains.ext, internal: internalChain, target: externalChain }, lines);
      }
      if (usesFw) {
        rules.chains.push(chains.fw);
        for (const cidr of [...info.loadBalancerSourceRanges, ...info.loadBalancerVIPs.map((ip) => ip + mask)])
          t.render('fw.allow', { svc, chain: chains.fw, cidr, target: chains.ext }, lines);
      }
    }
    // One KUBE-SEP- per endpoint the node may send to.
    for (const ep of v.allEndpoints) {
      const sep = endpointChain(info, ep);
      if (rules.chains.includes(sep)) continue;
      rules.chains.push(sep);
      // Hairpin: only a pod on this node can reach this node's rules as its own backend, except through the
      // ETP Local "pod traffic" shortcut, which skips masquerade for remote pods too.
      if (ep.isLocal || info.externalPolicyLocal) t.render('sep.hairpin', { svc, sep, ip: ep.ip + mask }, lines);
      t.render(info.affinityTimeoutSeconds > 0 ? 'sep.dnatAffinity' : 'sep.dnat', { svc, sep, proto, endpoint: endpointString(ep) }, lines);
    }
  }
}
