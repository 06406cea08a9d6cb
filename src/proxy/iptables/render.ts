// Turns a ProxyState into iptables-restore text in kube-proxy's layout. Pure:
// no I/O, so every feature is unit-tested on the text. Each service renders
// to a few flat strings: its rules in the shared chains (KUBE-SERVICES,
// KUBE-NODEPORTS, the filter chains), which a partial sync adds and deletes
// line by line, and its own chains, rewritten whole when it changed.
import type { EndpointInfo, IPFamily, ProxyConfig, ServiceView } from '../model.js';
import { endpointChain, endpointString, serviceChains, servicePortName } from './names.js';
import { iptablesTemplates, type Templates } from './templates.js';

/** Chains podwire owns that are not per service. */
export const NAT_CHAINS = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-MARK-MASQ', 'KUBE-POSTROUTING'] as const;
export const FILTER_CHAINS = ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-FORWARD', 'KUBE-PROXY-FIREWALL'] as const;
export const CANARY_CHAIN = 'KUBE-PROXY-CANARY';
/** Only with more than one cluster CIDR in the family: marks what comes from none of them. */
export const OFF_CLUSTER_CHAIN = 'KUBE-MASQ-OFF-CLUSTER';

/** What one service renders to. Every text is restore lines, each ending in '\n' ('' when none). */
export interface ServiceRules {
  /** Its own nat chains (KUBE-SVC-/SVL-/EXT-/FW-/SEP-), in the order they are declared. */
  readonly chains: readonly string[];
  /** The rules of its own chains. */
  readonly own: string;
  readonly ownLines: number;
  /** Its `-A` lines in KUBE-SERVICES and KUBE-NODEPORTS (nat). */
  readonly natEntries: string;
  readonly natEntryLines: number;
  /** Its `-A` lines in podwire's filter chains (refusals, firewall drops, health-check accepts). */
  readonly filterEntries: string;
  readonly filterEntryLines: number;
}

/** The rules that do not belong to any one service. */
export interface FixedRules {
  /** Fixed nat chains to declare (NAT_CHAINS, plus OFF_CLUSTER_CHAIN when used). */
  readonly natChains: readonly string[];
  /** KUBE-MARK-MASQ, KUBE-POSTROUTING (and KUBE-MASQ-OFF-CLUSTER). */
  readonly nat: string;
  /** The jump(s) to KUBE-NODEPORTS, which must stay the last rules of KUBE-SERVICES. */
  readonly natTail: string;
  readonly filter: string;
  readonly natLines: number;
  readonly filterLines: number;
}

function hostMask(family: IPFamily): string {
  return family === 4 ? '/32' : '/128';
}

function mark(config: ProxyConfig): { mark: string; markBit: string } {
  const bit = `0x${(1 << config.masqueradeBit).toString(16)}`;
  return { mark: `${bit}/${bit}`, markBit: bit };
}

const shareTables = new Map<number, string[]>();

/** For n endpoints, rule i's 1/(n-i) with kube-proxy's 10 decimals (each takes its share of what is left); cached. */
function probabilities(n: number): readonly string[] {
  let t = shareTables.get(n);
  if (!t) {
    t = [];
    for (let i = 0; i < n; i++) t.push((1 / (n - i)).toFixed(10));
    if (n <= 1024) shareTables.set(n, t);
  }
  return t;
}

/** Text pieces of one block, joined once (a flat string, no per-line strings). */
class Block {
  readonly pieces: string[] = [];
  lines = 0;
  take(): string {
    const s = this.pieces.join('');
    this.pieces.length = 0;
    this.lines = 0;
    return s;
  }
}

export class IptablesRenderer {
  private readonly t: Templates;
  // Reused between services: rendering 10k services allocates only the strings it returns.
  private readonly natB = new Block();
  private readonly filterB = new Block();
  private readonly ownB = new Block();

  constructor(private readonly config: ProxyConfig, templates?: Templates) {
    this.t = templates ?? iptablesTemplates();
  }

  /** Whether node ports are also served on 127.0.0.1 (needs route_localnet=1). */
  localhostNodePorts(): boolean {
    const c = this.config;
    if (c.family !== 4 || !c.localhostNodePorts) return false;
    return c.nodePortAddresses.length === 0 || c.nodePortAddresses.some((a) => a.startsWith('127.'));
  }

  /** Several cluster CIDRs in the family: "off-cluster" is a chain of RETURNs, not a `! -s`. */
  private offClusterChain(): boolean {
    return !this.config.masqueradeAll && this.config.clusterCIDRs.length > 1;
  }

  fixed(): FixedRules {
    const c = this.config;
    const m = mark(c);
    const t = this.t;
    const nat = new Block();
    const filter = new Block();
    const tail = new Block();
    nat.lines += t.append('static.nat', m, nat.pieces);
    if (this.offClusterChain()) {
      for (const cidr of c.clusterCIDRs) nat.lines += t.append('static.nat.offCluster', { cidr }, nat.pieces);
      nat.lines += t.append('static.nat.offClusterMark', {}, nat.pieces);
    }
    filter.lines += t.append('static.filter', m, filter.pieces);
    if (this.localhostNodePorts()) filter.lines += t.append('static.filter.localnet', {}, filter.pieces);
    if (c.nodePortAddresses.length === 0) {
      tail.lines += t.append(c.family === 4 && !this.localhostNodePorts() ? 'nodeports.localNoLoopback' : 'nodeports.local', {}, tail.pieces);
    } else {
      for (const a of c.nodePortAddresses) {
        if (c.family === 4 && a.startsWith('127.') && !this.localhostNodePorts()) continue;
        tail.lines += t.append('nodeports.address', { ip: a.includes('/') ? a : a + hostMask(c.family) }, tail.pieces);
      }
    }
    const natLines = nat.lines + tail.lines;
    const filterLines = filter.lines;
    return {
      natChains: this.offClusterChain() ? [...NAT_CHAINS, OFF_CLUSTER_CHAIN] : NAT_CHAINS,
      nat: nat.take(),
      natTail: tail.take(),
      filter: filter.take(),
      natLines,
      filterLines,
    };
  }

  /** One service's rules. */
  service(v: ServiceView): ServiceRules {
    const c = this.config;
    const t = this.t;
    const nat = this.natB;
    const filter = this.filterB;
    const info = v.info;
    const svc = servicePortName(info);
    const proto = info.protocol === 'TCP' ? 'tcp' : info.protocol === 'UDP' ? 'udp' : info.protocol.toLowerCase();
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
    if (hasInternal) nat.lines += t.append('svc.clusterIP', { ...base, ip: cip, chain: internalChain }, nat.pieces);
    else {
      const [verdict, why] = hasEndpoints ? ['DROP', 'has no local endpoints'] : ['REJECT', 'has no endpoints'];
      filter.lines += t.append('filter.clusterIP', { ...base, ip: cip, verdict, why }, filter.pieces);
    }
    if (usesExt) {
      for (const ip of info.externalIPs) nat.lines += t.append('svc.externalIP', { ...base, ip: ip + mask, chain: chains.ext }, nat.pieces);
      for (const ip of info.loadBalancerVIPs) nat.lines += t.append('svc.loadBalancer', { ...base, ip: ip + mask, chain: usesFw ? chains.fw : chains.ext }, nat.pieces);
      if (info.nodePort > 0) nat.lines += t.append('svc.nodePort', { ...base, nodePort: info.nodePort, chain: chains.ext }, nat.pieces);
      if (usesFw) for (const ip of info.loadBalancerVIPs) filter.lines += t.append('filter.firewall', { ...base, ip: ip + mask, chain: chains.fw }, filter.pieces);
    }
    if (hasExternalDest && !hasExternal) {
      // No endpoint for external traffic: REJECT when there is none at all, DROP when only none local (ETP Local).
      const [verdict, why] = hasEndpoints ? ['DROP', 'has no local endpoints'] : ['REJECT', 'has no endpoints'];
      for (const ip of info.externalIPs) filter.lines += t.append('filter.externalIP', { ...base, ip: ip + mask, verdict, why }, filter.pieces);
      for (const ip of info.loadBalancerVIPs) filter.lines += t.append('filter.loadBalancer', { ...base, ip: ip + mask, verdict, why }, filter.pieces);
      if (info.nodePort > 0) filter.lines += t.append('filter.nodePort', { ...base, nodePort: info.nodePort, verdict, why }, filter.pieces);
    }
    if (info.healthCheckNodePort > 0) filter.lines += t.append('filter.healthCheck', { svc, nodePort: info.healthCheckNodePort }, filter.pieces);

    const names: string[] = [];
    const out = this.ownB;
    if (hasEndpoints) {
      // Each endpoint's KUBE-SEP- name (a sha256) and "ip:port" once.
      const epNames = new Map<EndpointInfo, { sep: string; endpoint: string }>();
      const named = (ep: EndpointInfo) => {
        let e = epNames.get(ep);
        if (e === undefined) epNames.set(ep, (e = { sep: endpointChain(info, ep), endpoint: endpointString(ep) }));
        return e;
      };
      // One vars object for the per-endpoint lines, filled in place: 10k services render ~300k of them.
      const ev = { svc, chain: '', sep: '', endpoint: '', probability: '', timeout: info.affinityTimeoutSeconds, proto, ip: '' };
      // The SVC (cluster-wide) and SVL (node-local) chains, each with the endpoints chosen for it.
      const policyChain = (chain: string, endpoints: readonly EndpointInfo[], masq: boolean) => {
        if (names.includes(chain)) return;
        names.push(chain);
        if (masq) {
          const vars = { ...base, chain, ip: cip };
          if (c.masqueradeAll) out.lines += t.append('chain.masqAll', vars, out.pieces);
          else if (this.offClusterChain()) out.lines += t.append('chain.masqOffClusters', vars, out.pieces);
          else if (c.clusterCIDRs[0]) out.lines += t.append('chain.masqOffCluster', { ...vars, cidr: c.clusterCIDRs[0] }, out.pieces);
        }
        const n = endpoints.length;
        ev.chain = chain;
        if (info.affinityTimeoutSeconds > 0)
          for (const ep of endpoints) {
            const e = named(ep);
            ev.sep = e.sep;
            ev.endpoint = e.endpoint;
            out.lines += t.append('chain.affinity', ev, out.pieces);
          }
        const shares = probabilities(n);
        for (let i = 0; i < n; i++) {
          const e = named(endpoints[i]!);
          ev.sep = e.sep;
          ev.endpoint = e.endpoint;
          if (i < n - 1) {
            ev.probability = shares[i]!;
            out.lines += t.append('chain.spread', ev, out.pieces);
          } else out.lines += t.append('chain.last', ev, out.pieces);
        }
      };
      const svcEndpoints = info.internalPolicyLocal ? v.externalEndpoints : v.internalEndpoints;
      const svlEndpoints = info.internalPolicyLocal ? v.internalEndpoints : v.externalEndpoints;
      const endpointsOf = (chain: string) => (chain === chains.svc ? svcEndpoints : svlEndpoints);
      if (hasInternal) policyChain(internalChain, endpointsOf(internalChain), true);
      if (usesExt) {
        // ETP Local still sends pods and the node itself to the internal chain, which must then exist.
        if (info.externalPolicyLocal) policyChain(internalChain, endpointsOf(internalChain), true);
        policyChain(externalChain, endpointsOf(externalChain), externalChain === internalChain);
        names.push(chains.ext);
        if (!info.externalPolicyLocal) out.lines += t.append('ext.cluster', { svc, chain: chains.ext, target: externalChain }, out.pieces);
        else {
          for (const cidr of c.clusterCIDRs) out.lines += t.append('ext.localPods', { svc, chain: chains.ext, cidr, internal: internalChain }, out.pieces);
          out.lines += t.append('ext.local', { svc, chain: chains.ext, internal: internalChain, target: externalChain }, out.pieces);
        }
        if (usesFw) {
          names.push(chains.fw);
          for (const cidr of [...info.loadBalancerSourceRanges, ...info.loadBalancerVIPs.map((ip) => ip + mask)])
            out.lines += t.append('fw.allow', { svc, chain: chains.fw, cidr, target: chains.ext }, out.pieces);
        }
      }
      // One KUBE-SEP- per endpoint the node may send to.
      const written = new Set<string>();
      const dnat = info.affinityTimeoutSeconds > 0 ? 'sep.dnatAffinity' : 'sep.dnat';
      for (const ep of v.allEndpoints) {
        const e = named(ep);
        if (written.has(e.sep)) continue;
        written.add(e.sep);
        names.push(e.sep);
        ev.sep = e.sep;
        ev.endpoint = e.endpoint;
        // Hairpin: only a pod on this node can reach this node's rules as its own backend, except through the
        // ETP Local "pod traffic" shortcut, which skips masquerade for remote pods too.
        if (ep.isLocal || info.externalPolicyLocal) {
          ev.ip = ep.ip + mask;
          out.lines += t.append('sep.hairpin', ev, out.pieces);
        }
        out.lines += t.append(dnat, ev, out.pieces);
      }
    }
    const counts = { ownLines: out.lines, natEntryLines: nat.lines, filterEntryLines: filter.lines };
    return { chains: names, ...counts, own: out.take(), natEntries: nat.take(), filterEntries: filter.take() };
  }
}
