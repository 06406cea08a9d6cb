// The nftables proxy layout (rules-templates/nftables/README.md): the
// desired objects for one ProxyState, split into what every sync shares
// (table, base chains, named sets) and what belongs to one service port
// (its chains and its elements in the shared sets), so a partial sync can
// diff per service.
import {
  concat,
  concatRegisters,
  ip,
  loadAddr,
  matchL4proto,
  loadPort,
  parseCidr,
  port,
  proto,
  u32host,
  verdict,
  type Chain,
  type Element,
  type Expr,
  type Rule,
  type SetDef,
} from '../../netlink/nftables/index.js';
import type { EndpointInfo, ProxyConfig, ServiceView } from '../model.js';

export const TABLE = 'podwire';
const R1 = 1;
const R9 = 9; // NFT_REG32_01: the 32-bit word after NFT_REG_1's first one

/** Names of the shared sets and maps. */
export const SET = {
  serviceIPs: 'service-ips',
  nodePorts: 'service-nodeports',
  noEndpointIPs: 'no-endpoint-services',
  noEndpointNodePorts: 'no-endpoint-nodeports',
  endpoints: 'endpoints',
  hairpin: 'hairpin',
  clusterCIDRs: 'cluster-cidrs',
  nodePortAddrs: 'nodeport-addresses',
  firewallIPs: 'firewall-ips',
  firewallAllow: 'firewall-allow',
} as const;
export type SetName = (typeof SET)[keyof typeof SET];

/**
 * Endpoint groups, one per service port and kind of traffic; a connection's slot
 * (ct mark) is group * 4096 + slot. The kind (bits 12-13) tells the shared DNAT
 * chain how to masquerade, so a service chain needs no rule of its own for it.
 */
export const GROUP_KIND = { internal: 0, external: 1, local: 2 } as const;
export type GroupKind = (typeof GROUP_KIND)[keyof typeof GROUP_KIND];
export function groupId(id: number, kind: GroupKind): number {
  return id * 4 + kind;
}
const KIND_MASK = 0x3 * 4096;
/** Slots of service ids >= 1; below are the affinity slot maps' own numbers. */
const SERVICE_SLOTS = 0xffffffff & ~(4 * 4096 - 1);

export interface ServiceObjects {
  /** Sets only this service uses (its affinity map). */
  readonly ownSets: readonly SetDef[];
  readonly chains: ReadonlyArray<{ chain: Chain; rules: Rule[] }>;
  /** Elements this service owns in the shared sets and in its own sets, by set name. */
  readonly elements: ReadonlyMap<string, Element[]>;
}

/**
 * Renders the layout for one config: the shared objects (table-wide sets, base
 * chains, fixed elements) and, on demand, one service port's objects. Rendering
 * is deterministic, so the backend keeps no rendered objects between syncs: it
 * re-renders a changed service's previous view to know what the kernel holds.
 */
export class LayoutRenderer {
  readonly family: 'ip' | 'ip6';
  readonly addrType: 'ipv4_addr' | 'ipv6_addr';
  readonly addrLen: number;
  readonly sets = new Map<SetName, SetDef>();
  private readonly masqMark: number;

  constructor(private readonly config: ProxyConfig) {
    this.family = config.family === 4 ? 'ip' : 'ip6';
    this.addrType = config.family === 4 ? 'ipv4_addr' : 'ipv6_addr';
    this.addrLen = config.family === 4 ? 4 : 16;
    this.masqMark = 2 ** config.masqueradeBit;
    const t = { family: this.family, table: TABLE };
    const a = this.addrType;
    const def = (name: SetName, s: Omit<SetDef, 'family' | 'table' | 'name'>) => this.sets.set(name, { ...t, name, ...s });
    def(SET.serviceIPs, { key: [a, 'inet_proto', 'inet_service'], data: 'verdict', comment: 'cluster, external and LB IPs' });
    def(SET.nodePorts, { key: ['inet_proto', 'inet_service'], data: 'verdict', comment: 'node ports' });
    def(SET.noEndpointIPs, { key: [a, 'inet_proto', 'inet_service'], comment: 'services without endpoints' });
    def(SET.noEndpointNodePorts, { key: ['inet_proto', 'inet_service'], comment: 'node ports without endpoints' });
    def(SET.endpoints, { key: ['mark'], data: [a, 'inet_service'], comment: 'group << 12 | slot : endpoint' });
    def(SET.hairpin, { key: [a, a], comment: 'endpoint . itself' });
    def(SET.clusterCIDRs, { key: [a], interval: true, comment: 'cluster CIDRs' });
    def(SET.nodePortAddrs, { key: [a], interval: true, comment: 'node port addresses' });
    def(SET.firewallIPs, { key: [a, 'inet_proto', 'inet_service'], comment: 'LB IPs with source ranges' });
    def(SET.firewallAllow, { key: [a, 'inet_proto', 'inet_service', a], interval: true, comment: 'LB IP . proto . port . allowed source' });
  }

  private rule(chain: string, exprs: Expr[], comment?: string): Rule {
    return { family: this.family, table: TABLE, chain, exprs, comment };
  }

  private chain(name: string, comment?: string): Chain {
    return { family: this.family, table: TABLE, name, comment };
  }

  /** `<daddr> . meta l4proto . th dport` into R1.. (the dispatch key). */
  private loadDispatchKey(): Expr[] {
    const [a, p, d] = concatRegisters([this.addrLen, 1, 2]);
    return [loadAddr(this.family, 'daddr', a!), { op: 'meta', key: 'l4proto', dreg: p! }, loadPort('dport', d!)];
  }

  private loadProtoPort(): Expr[] {
    const [p, d] = concatRegisters([1, 2]);
    return [{ op: 'meta', key: 'l4proto', dreg: p! }, loadPort('dport', d!)];
  }

  private setMasqMark(): Expr[] {
    const m = this.masqMark;
    return [
      { op: 'meta', key: 'mark', dreg: R1 },
      { op: 'bitwise', sreg: R1, dreg: R1, len: 4, mask: u32host(~m >>> 0), xor: u32host(m) },
      { op: 'meta-set', key: 'mark', sreg: R1 },
    ];
  }

  private fibLocal(): Expr[] {
    return [{ op: 'fib', flags: ['daddr'], result: 'type', dreg: R1 }, { op: 'cmp', sreg: R1, cmp: 'eq', data: u32host(2) }];
  }

  /** Where node ports are accepted: the configured CIDRs, else any local address but loopback. */
  private nodePortDest(): Expr[] {
    if (this.config.nodePortAddresses.length > 0) {
      return [loadAddr(this.family, 'daddr', R1), { op: 'lookup', set: SET.nodePortAddrs, sreg: R1 }];
    }
    const loop = this.family === 'ip' ? parseCidr('127.0.0.0/8') : parseCidr('::1/128');
    return [
      ...this.fibLocal(),
      loadAddr(this.family, 'daddr', R1),
      { op: 'range', sreg: R1, neq: true, from: loop.first, to: loop.last },
    ];
  }

  /** LB IPs with source ranges: a source outside them is dropped before any DNAT. */
  private firewall(): Expr[] {
    const regs = concatRegisters([this.addrLen, 1, 2, this.addrLen]);
    return [
      ...this.loadDispatchKey(),
      { op: 'lookup', set: SET.firewallIPs, sreg: R1 },
      // Loaded again: nft's reader takes registers a lookup used as consumed.
      ...this.loadDispatchKey(),
      loadAddr(this.family, 'saddr', regs[3]!),
      { op: 'lookup', set: SET.firewallAllow, sreg: R1, invert: true },
      verdict({ kind: 'drop' }),
    ];
  }

  baseChains(): Array<{ chain: Chain; rules: Rule[] }> {
    const hook = (name: string, type: 'nat' | 'filter', h: 'prerouting' | 'output' | 'postrouting' | 'input' | 'forward', priority: number): Chain => ({
      ...this.chain(name),
      hook: { type, hook: h, priority },
    });
    const m = this.masqMark;
    const markIs = (v: number): Expr[] => [
      { op: 'meta', key: 'mark', dreg: R1 },
      { op: 'bitwise', sreg: R1, dreg: R1, len: 4, mask: u32host(m), xor: u32host(0) },
      { op: 'cmp', sreg: R1, cmp: 'eq', data: u32host(v) },
    ];
    const [h1, h2] = concatRegisters([this.addrLen, this.addrLen]);
    const reject: Expr = { op: 'reject', type: 'icmp', code: this.family === 'ip' ? 3 : 4 };
    const rejectChecks = (chain: string): Rule[] => [
      this.rule(chain, [...this.loadDispatchKey(), { op: 'lookup', set: SET.noEndpointIPs, sreg: R1 }, reject]),
      this.rule(chain, [...this.nodePortDest(), ...this.loadProtoPort(), { op: 'lookup', set: SET.noEndpointNodePorts, sreg: R1 }, reject]),
    ];
    return [
      { chain: this.chain('services', 'dispatch by destination'), rules: [
        this.rule('services', this.firewall(), 'loadBalancerSourceRanges'),
        this.rule('services', [...this.loadDispatchKey(), { op: 'lookup', set: SET.serviceIPs, sreg: R1, dreg: 0 }]),
        this.rule('services', [...this.nodePortDest(), ...this.loadProtoPort(), { op: 'lookup', set: SET.nodePorts, sreg: R1, dreg: 0 }]),
      ] },
      { chain: this.chain('endpoint-dnat', 'masquerade by the group kind, the chosen endpoint by ct mark'), rules: [
        ...this.groupMasq(),
        ...(['tcp', 'udp', 'sctp'] as const).map((l4) =>
          // One rule per protocol: nft only writes a port mapping after a transport protocol match.
          this.rule('endpoint-dnat', [
            ...matchL4proto(l4),
            { op: 'ct', key: 'mark', dreg: R1 },
            { op: 'lookup', set: SET.endpoints, sreg: R1, dreg: R1 },
            { op: 'nat', type: 'dnat', family: this.family, addrMin: R1, protoMin: this.family === 'ip' ? R9 : 12 },
          ]),
        ),
      ] },
      // A service chain only picks the slot and returns here (no verdict, so changing its
      // rule does not make the kernel validate the whole table): the DNAT follows.
      ...(['nat-prerouting', 'nat-output'] as const).map((name) => ({
        chain: hook(name, 'nat', name === 'nat-prerouting' ? 'prerouting' : 'output', -100),
        rules: [
          this.rule(name, [verdict({ kind: 'jump', chain: 'services' })]),
          this.rule(name, [...this.ctMarkIs(SERVICE_SLOTS, 0, 'neq'), verdict({ kind: 'goto', chain: 'endpoint-dnat' })]),
        ],
      })),
      { chain: hook('nat-postrouting', 'nat', 'postrouting', 100), rules: [
        this.rule('nat-postrouting', [loadAddr(this.family, 'saddr', h1!), loadAddr(this.family, 'daddr', h2!), { op: 'lookup', set: SET.hairpin, sreg: R1 }, { op: 'masq' }], 'hairpin'),
        this.rule('nat-postrouting', [...markIs(0), verdict({ kind: 'return' })]),
        this.rule('nat-postrouting', [
          { op: 'meta', key: 'mark', dreg: R1 },
          { op: 'bitwise', sreg: R1, dreg: R1, len: 4, mask: u32host(0xffffffff), xor: u32host(m) },
          { op: 'meta-set', key: 'mark', sreg: R1 },
          { op: 'masq' },
        ], 'masquerade marked'),
      ] },
      { chain: hook('filter-forward', 'filter', 'forward', -10), rules: rejectChecks('filter-forward') },
      { chain: hook('filter-output', 'filter', 'output', -10), rules: rejectChecks('filter-output') },
      { chain: hook('filter-input', 'filter', 'input', -10), rules: rejectChecks('filter-input') },
    ];
  }

  private ctMarkIs(mask: number, value: number, cmp: 'eq' | 'neq' = 'eq'): Expr[] {
    return [
      { op: 'ct', key: 'mark', dreg: R1 },
      { op: 'bitwise', sreg: R1, dreg: R1, len: 4, mask: u32host(mask), xor: u32host(0) },
      { op: 'cmp', sreg: R1, cmp, data: u32host(value) },
    ];
  }

  /**
   * Masquerade marks by the group kind: cluster-IP traffic from outside the cluster
   * CIDRs (everything with --masquerade-all), external traffic always, ETP Local never.
   */
  private groupMasq(): Rule[] {
    const rules: Rule[] = [];
    const internal = this.ctMarkIs(KIND_MASK, GROUP_KIND.internal * 4096);
    if (this.config.masqueradeAll) {
      rules.push(this.rule('endpoint-dnat', [...internal, ...this.setMasqMark()]));
    } else if (this.config.clusterCIDRs.some((c) => (c.includes(':') ? 6 : 4) === this.config.family)) {
      rules.push(this.rule('endpoint-dnat', [...internal, loadAddr(this.family, 'saddr', R1), { op: 'lookup', set: SET.clusterCIDRs, sreg: R1, invert: true }, ...this.setMasqMark()]));
    }
    rules.push(this.rule('endpoint-dnat', [...this.ctMarkIs(KIND_MASK, GROUP_KIND.external * 4096), ...this.setMasqMark()]));
    return rules;
  }

  fixedElements(): Map<SetName, Element[]> {
    const ranges = (cidrs: readonly string[]) =>
      cidrs.map(parseCidr).filter((c) => c.family === this.config.family).map((c) => ({ key: c.first, keyEnd: c.last }));
    return new Map<SetName, Element[]>([
      [SET.clusterCIDRs, ranges(this.config.clusterCIDRs)],
      [SET.nodePortAddrs, ranges(this.config.nodePortAddresses)],
    ]);
  }

  service(v: ServiceView, id: number): ServiceObjects {
    const info = v.info;
    const p = proto(info.protocol.toLowerCase() as 'tcp' | 'udp' | 'sctp');
    const el = new Map<SetName, Element[]>();
    const push = (s: SetName, e: Element) => {
      const list = el.get(s) ?? [];
      list.push(e);
      el.set(s, list);
    };
    const chains: Array<{ chain: Chain; rules: Rule[] }> = [];
    const ownSets: SetDef[] = [];
    const affinity = info.affinityTimeoutSeconds > 0 ? id : undefined;
    const svcChain = `svc-${id}`;
    const extChain = `ext-${id}`;
    const hasExternal = info.nodePort > 0 || info.externalIPs.length > 0 || info.loadBalancerVIPs.length > 0;
    const inFamily = (a: string) => (a.includes(':') ? 6 : 4) === this.config.family;

    // Cluster IP → svc chain (internal endpoints), or reject.
    if (v.internalEndpoints.length > 0) {
      if (affinity !== undefined) {
        const own = this.affinityObjects(id, v.internalEndpoints, info.affinityTimeoutSeconds, info.name, info.protocol.toLowerCase() as 'tcp' | 'udp' | 'sctp');
        ownSets.push(...own.sets);
        chains.push(...own.chains);
        for (const [k, els] of own.elements) for (const e of els) push(k as SetName, e);
      }
      chains.push({ chain: this.chain(svcChain, info.name), rules: this.spread(svcChain, groupId(id, GROUP_KIND.internal), v.internalEndpoints, 'internal', affinity) });
      push(SET.serviceIPs, { key: concat(ip(info.clusterIP), p, port(info.port)), data: { kind: 'goto', chain: svcChain } });
    } else {
      push(SET.noEndpointIPs, { key: concat(ip(info.clusterIP), p, port(info.port)) });
    }
    // External destinations → ext chain (external endpoints, always masqueraded unless ETP Local).
    if (hasExternal) {
      const externals = [...info.externalIPs, ...info.loadBalancerVIPs].filter(inFamily);
      if (v.externalEndpoints.length > 0) {
        chains.push({ chain: this.chain(extChain, info.name), rules: this.spread(extChain, this.externalGroup(id, info), v.externalEndpoints, info.externalPolicyLocal ? 'local' : 'external', affinity && sameEndpoints(v.externalEndpoints, v.internalEndpoints) ? affinity : undefined) });
        for (const a of externals) push(SET.serviceIPs, { key: concat(ip(a), p, port(info.port)), data: { kind: 'goto', chain: extChain } });
        const ranges = info.loadBalancerSourceRanges.map(parseCidr).filter((r) => r.family === this.config.family);
        if (ranges.length > 0) {
          for (const vip of info.loadBalancerVIPs.filter(inFamily)) {
            const head = concat(ip(vip), p, port(info.port));
            push(SET.firewallIPs, { key: head });
            for (const r of ranges) push(SET.firewallAllow, { key: concat(head, r.first), keyEnd: concat(head, r.last) });
          }
        }
        if (info.nodePort > 0) push(SET.nodePorts, { key: concat(p, port(info.nodePort)), data: { kind: 'goto', chain: extChain } });
      } else if (v.allEndpoints.length === 0) {
        for (const a of externals) push(SET.noEndpointIPs, { key: concat(ip(a), p, port(info.port)) });
        if (info.nodePort > 0) push(SET.noEndpointNodePorts, { key: concat(p, port(info.nodePort)) });
      }
      // ETP Local with no local endpoint but endpoints elsewhere: no entry, the traffic is not served (dropped upstream by the client's timeout).
    }
    // Only a pod on this node can reach itself through this node's rules.
    for (const e of v.allEndpoints) {
      if (e.isLocal && inFamily(e.ip)) push(SET.hairpin, { key: concat(ip(e.ip), ip(e.ip)) });
    }
    const dedup = new Map<SetName, Element[]>();
    for (const [s, list] of el) {
      const seen = new Set<string>();
      dedup.set(s, list.filter((e) => (seen.has(e.key.toString('hex')) ? false : (seen.add(e.key.toString('hex')), true))));
    }
    const elements = new Map<string, Element[]>(dedup);
    const grouped = this.endpointElements(v, id, affinity !== undefined);
    elements.set(SET.endpoints, grouped);
    return { ownSets, chains, elements };
  }

  /** ETP Local keeps the client's address, unless --masquerade-all. */
  private externalGroup(id: number, info: ServiceView['info']): number {
    return groupId(id, info.externalPolicyLocal && !this.config.masqueradeAll ? GROUP_KIND.local : GROUP_KIND.external);
  }

  private endpointElements(v: ServiceView, id: number, affinity: boolean): Element[] {
    const out: Element[] = [];
    const group = (gid: number, eps: readonly EndpointInfo[]) =>
      eps.forEach((e, slot) => out.push({ key: u32host(slotId(gid, slot)), data: concat(ip(e.ip), port(e.port)) }));
    if (v.internalEndpoints.length > 0 && !affinity) group(groupId(id, GROUP_KIND.internal), v.internalEndpoints);
    const info = v.info;
    const sharesAffinity = affinity && sameEndpoints(v.externalEndpoints, v.internalEndpoints);
    if ((info.nodePort > 0 || info.externalIPs.length > 0 || info.loadBalancerVIPs.length > 0) && v.externalEndpoints.length > 0 && !sharesAffinity) group(this.externalGroup(id, info), v.externalEndpoints);
    return out;
  }

  /** Masquerade decision, then `dnat to <group> . numgen random mod N map @endpoints`. */
  /**
   * ClientIP affinity the way nft can print it back: one timed set of clients per
   * endpoint (named by the endpoint, so it survives other endpoints' changes), an
   * endpoint chain that refreshes it and DNATs, and a named slot vmap for new clients.
   */
  private affinityObjects(id: number, eps: readonly EndpointInfo[], timeoutS: number, svc: string, l4: 'tcp' | 'udp' | 'sctp') {
    const sets: SetDef[] = [{ family: this.family, table: TABLE, name: `slots-${id}`, key: ['mark'], data: 'verdict', comment: `slot : endpoint chain for ${svc}` }];
    const chains: Array<{ chain: Chain; rules: Rule[] }> = [];
    const slots: Element[] = [];
    eps.forEach((e, slot) => {
      const tag = `${e.ip.replace(/:/g, '_')}-${e.port}`;
      const aff = affinitySet(id, e);
      sets.push({ family: this.family, table: TABLE, name: aff, key: [this.addrType], dynamic: true, timeout: true, timeoutMs: timeoutS * 1000, comment: `clients of ${e.ip}:${e.port}` });
      const ch = `ep-${id}-${tag}`;
      chains.push({
        chain: this.chain(ch, `${svc} ${e.ip}:${e.port}`),
        rules: [
          this.rule(ch, [
            ...matchL4proto(l4),
            loadAddr(this.family, 'saddr', R1),
            { op: 'dynset', set: aff, dynop: 'update', sregKey: R1 },
            { op: 'immediate', dreg: R1, data: ip(e.ip) },
            { op: 'immediate', dreg: 2, data: port(e.port) },
            { op: 'nat', type: 'dnat', family: this.family, addrMin: R1, protoMin: 2 },
          ]),
        ],
      });
      slots.push({ key: u32host(slot), data: { kind: 'goto', chain: ch } });
    });
    return { sets, chains, elements: new Map<string, Element[]>([[`slots-${id}`, slots]]) };
  }

  private spread(chain: string, gid: number, eps: readonly EndpointInfo[], kind: 'internal' | 'external' | 'local', affinity?: number): Rule[] {
    const rules: Rule[] = [];
    if (affinity === undefined) {
      // The slot travels in ct mark to the one DNAT rule: every lookup rule is a binding of
      // the map, and the kernel walks all bindings per element added (quadratic at 10k services).
      rules.push(this.rule(chain, [{ op: 'numgen', dreg: R1, mod: eps.length, type: 'random', offset: slotId(gid, 0) }, { op: 'ct-set', key: 'mark', sreg: R1 }]));
      return rules;
    }
    if (kind === 'external' || this.config.masqueradeAll) {
      rules.push(this.rule(chain, this.setMasqMark()));
    } else if (kind === 'local') {
      // ETP Local keeps the client's address: the endpoint is on this node, replies come back through it.
    } else if (this.config.clusterCIDRs.some((c) => (c.includes(':') ? 6 : 4) === this.config.family)) {
      rules.push(this.rule(chain, [loadAddr(this.family, 'saddr', R1), { op: 'lookup', set: SET.clusterCIDRs, sreg: R1, invert: true }, ...this.setMasqMark()]));
    }
    // Known clients go back to their endpoint; new ones get a random slot.
    for (const e of eps) {
      rules.push(this.rule(chain, [loadAddr(this.family, 'saddr', R1), { op: 'lookup', set: affinitySet(affinity, e), sreg: R1 }, verdict({ kind: 'goto', chain: `ep-${affinity}-${e.ip.replace(/:/g, '_')}-${e.port}` })]));
    }
    // Through ct mark (as the other services): nft types a bare numgen as integer, the map's key is a mark.
    rules.push(this.rule(chain, [{ op: 'numgen', dreg: R1, mod: eps.length, type: 'random' }, { op: 'ct-set', key: 'mark', sreg: R1 }]));
    rules.push(this.rule(chain, [{ op: 'ct', key: 'mark', dreg: R1 }, { op: 'lookup', set: `slots-${affinity}`, sreg: R1, dreg: 0 }]));
    return rules;
  }
}

/** Stable small numbers per service port name: chain names and endpoint-group ids. */
export class ServiceIds {
  private readonly ids = new Map<string, number>();
  private next = 1;
  get(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.next++;
      this.ids.set(name, id);
    }
    return id;
  }
  forget(name: string): void {
    this.ids.delete(name);
  }
  /** Forgets names no longer in the state (ids are never reused). */
  retain(names: Iterable<string>): void {
    const keep = new Set(names);
    for (const k of [...this.ids.keys()]) if (!keep.has(k)) this.ids.delete(k);
  }
}

/** Same endpoints in the same slots: the two groups can share one affinity map. */
function sameEndpoints(a: readonly EndpointInfo[], b: readonly EndpointInfo[]): boolean {
  return a.length === b.length && a.every((e, i) => e.ip === b[i]!.ip && e.port === b[i]!.port);
}

function affinitySet(id: number, e: EndpointInfo): string {
  return `affinity-${id}-${e.ip.replace(/:/g, '_')}-${e.port}`;
}

/** The endpoints map key: 4096 slots per endpoint group. */
export const SLOTS_PER_GROUP = 4096;
function slotId(gid: number, slot: number): number {
  return gid * SLOTS_PER_GROUP + slot;
}
