// The IPVS proxy backend: reads the kernel's IPVS table and converges it to
// the desired state, touching only what differs. A full sync compares every
// virtual server (and so repairs `ipvsadm -C`), the addresses on kube-ipvs0,
// every ipset and the fixed iptables rules, each read back in one go (one
// service dump + /proc/net/ip_vs, one address dump, `ipset list -t`, one
// iptables-save), re-renders only the service ports whose view changed and
// re-compares only the virtual servers whose /proc text changed since they
// last matched, so an idle full sync parses and writes next to nothing. A partial sync renders and compares
// only the changed service ports (plus any real servers still draining), so
// its cost does not grow with the number of services.
import { writeFileSync } from 'node:fs';
import { Ipvs, describeOp, familyOf, type IpvsOp } from '../../netlink/ipvs.js';
import { native } from '../../netlink/native.js';
import { RouteNetlink } from '../../netlink/rtnetlink.js';
import { detectFlavour, iptablesTool, type Flavour, type IptablesTool } from '../iptables/exec.js';
import type { IPFamily, ProxyBackend, ProxyConfig, ServiceView, SyncRequest, SyncResult } from '../model.js';
import { DesiredIndex, type DesiredServer } from './desired.js';
import { destroySets, ipsetRestore, readSets, renderSetDelta, renderSetRepair, wantedMembers } from './ipset.js';
import { reconcileHostAddresses } from '../address-link.js';
import { cidrMatcher, nodePortIPs } from '../node-addresses.js';
import { ensureDummy, hostCidr } from './link.js';
import { IPVS_DUMMY_LINK } from './names.js';
import { planServer, serviceDiffers, type KernelServer } from './reconcile.js';
import { renderPort } from './render.js';
import { removeRules, syncRules } from './rules.js';
import { entryDests, readKernelTable } from './snapshot.js';

export interface IpvsBackendOptions {
  netnsPath?: string;
  /** --ipvs-scheduler (default rr); a Service's ipvs.podwire.io/scheduler annotation overrides it. */
  scheduler?: string;
  strictARP?: boolean;
  /** Virtual servers in these CIDRs are never touched (someone else's). */
  excludeCIDRs?: string[];
  /** Seconds; 0 or absent leaves the kernel's value. */
  tcpTimeout?: number;
  tcpFinTimeout?: number;
  udpTimeout?: number;
  /** iptables flavour; detected from the node's rules when absent. */
  flavour?: Flavour;
  /** How often draining real servers are re-checked between syncs (ms, default 5000). */
  drainCheckMs?: number;
}

/** A virtual server found as desired: what was wanted, and the kernel's /proc text of its real servers then. */
interface MatchedServer {
  readonly want: DesiredServer;
  readonly destText: string;
  readonly draining: number;
}

export class IpvsBackend implements ProxyBackend {
  readonly mode = 'ipvs' as const;
  readonly family: IPFamily;
  private readonly config: ProxyConfig;
  private readonly opts: IpvsBackendOptions;
  /** --ipvs-exclude-cidrs: virtual servers and addresses there are someone else's (never touched). */
  private readonly excluded: (address: string) => boolean;
  private ipvs: Ipvs | null = null;
  private rt: RouteNetlink | null = null;
  private tool: IptablesTool | null = null;
  private index = new DesiredIndex();
  /** The view each service port in the index was rendered from, and the options it was rendered with. */
  private rendered = new Map<string, ServiceView>();
  private renderKey = '';
  /** Virtual servers the last full sync found as desired, with the /proc text they had then. */
  private matched = new Map<string, MatchedServer>();
  /** podwire's iptables rules as they read back after the last write (rules.ts syncRules). */
  private rulesSeen: string | null = null;
  /** Virtual servers with real servers at weight 0, waiting for connections to end. */
  private readonly draining = new Set<string>();
  private drainTimer: NodeJS.Timeout | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private setupDone = false;

  constructor(config: ProxyConfig, opts: IpvsBackendOptions = {}) {
    this.config = config;
    this.family = config.family;
    this.opts = opts;
    this.excluded = cidrMatcher(opts.excludeCIDRs ?? []);
  }

  sync(req: SyncRequest): Promise<SyncResult> {
    const run = this.queue.then(() => this.syncNow(req));
    this.queue = run.catch(() => {});
    return run;
  }

  private writeSysctl(path: string, value: string): void {
    if (this.opts.netnsPath) native().writeFileInNetns(this.opts.netnsPath, path, value);
    else writeFileSync(path, value);
  }

  private setup(): void {
    if (this.setupDone) return;
    this.ipvs ??= Ipvs.open(this.opts.netnsPath);
    this.rt ??= RouteNetlink.open(this.opts.netnsPath);
    // conntrack=1: IPVS connections get conntrack entries, so iptables can masquerade them (hairpin, node ports).
    // expire_nodest_conn: packets of a connection whose real server is gone are dropped at once, not blackholed.
    this.writeSysctl('/proc/sys/net/ipv4/vs/conntrack', '1');
    this.writeSysctl('/proc/sys/net/ipv4/vs/expire_nodest_conn', '1');
    this.writeSysctl('/proc/sys/net/ipv4/vs/expire_quiescent_template', '1');
    this.writeSysctl(this.family === 6 ? '/proc/sys/net/ipv6/conf/all/forwarding' : '/proc/sys/net/ipv4/ip_forward', '1');
    if (this.opts.strictARP) {
      this.writeSysctl('/proc/sys/net/ipv4/conf/all/arp_ignore', '1');
      this.writeSysctl('/proc/sys/net/ipv4/conf/all/arp_announce', '2');
    }
    const t = { tcp: this.opts.tcpTimeout ?? 0, tcpFin: this.opts.tcpFinTimeout ?? 0, udp: this.opts.udpTimeout ?? 0 };
    if (t.tcp || t.tcpFin || t.udp) this.ipvs.setTimeouts(t);
    this.setupDone = true;
  }


  private kernelServer(key: string): KernelServer | undefined {
    const want = this.index.servers.get(key);
    const probe = want?.service ?? parseServiceKey(key);
    if (!probe) return undefined;
    const service = this.ipvs!.getService(probe);
    return service ? { service, dests: this.ipvs!.listDestinations(service) } : undefined;
  }

  private async syncNow(req: SyncRequest): Promise<SyncResult> {
    this.setup();
    const ipvs = this.ipvs!;
    const rt = this.rt!;
    const npIPs = nodePortIPs(this.config, req.state.node.ips, { localhost: false });
    const renderOpts = { family: this.family, scheduler: this.opts.scheduler ?? 'rr', nodePortIPs: npIPs };
    const renderKey = `${renderOpts.scheduler}|${npIPs.join(',')}`;
    const full = req.changed === null || renderKey !== this.renderKey;
    const render = (name: string, view: ServiceView | undefined) => {
      this.index.update(name, view ? renderPort(view, renderOpts) : null);
      if (view) this.rendered.set(name, view);
      else this.rendered.delete(name);
    };
    let ipsetChanges = 0;
    let addressChanges = 0;
    let rulesRewritten = false;
    const linkIndex = ensureDummy(rt);
    const ops: IpvsOp[] = [];
    const nowDraining = new Set<string>();
    const plan = (key: string, have: KernelServer | undefined) => {
      const p = planServer(this.index.servers.get(key), have);
      ops.push(...p.ops);
      if (p.draining > 0) nowDraining.add(key);
    };

    if (full) {
      if (renderKey !== this.renderKey) {
        this.index = new DesiredIndex();
        this.rendered.clear();
        this.renderKey = renderKey;
      }
      // Views are replaced, never mutated, when a service or its endpoints change: an unchanged view keeps its render.
      for (const [name, view] of req.state.services) if (this.rendered.get(name) !== view) render(name, view);
      for (const name of [...this.rendered.keys()]) if (!req.state.services.has(name)) render(name, undefined);
      this.index.takeDelta();
      const kernel = readKernelTable(ipvs, this.opts.netnsPath, this.family, (a) => this.excluded(a));
      const matched = new Map<string, MatchedServer>();
      for (const [k, want] of this.index.servers) {
        const e = kernel.get(k);
        const seen = this.matched.get(k);
        // The same desired server, and the kernel shows the very text it showed when they last matched: still matched.
        if (e && e.destText !== null && seen && seen.want === want && seen.destText === e.destText && !serviceDiffers(want.service, e.service)) {
          matched.set(k, seen);
          if (seen.draining > 0) nowDraining.add(k);
          continue;
        }
        const p = planServer(want, e && { service: e.service, dests: entryDests(ipvs, e) });
        ops.push(...p.ops);
        if (p.draining > 0) nowDraining.add(k);
        if (p.ops.length === 0 && e && e.destText !== null) matched.set(k, { want, destText: e.destText, draining: p.draining });
      }
      this.matched = matched;
      for (const [k, e] of kernel) if (!this.index.servers.has(k)) plan(k, { service: e.service, dests: [] });
      // Addresses: exactly the desired ones on kube-ipvs0.
      addressChanges += reconcileHostAddresses(rt, linkIndex, this.family, this.index.addresses, (a) => this.excluded(a.address));
      const wanted = wantedMembers(this.index.setMembers());
      const sets = renderSetRepair(this.family, wanted, await readSets(this.opts.netnsPath, this.family, wanted));
      await ipsetRestore(this.opts.netnsPath, sets.text);
      ipsetChanges = sets.changes;
      this.tool ??= iptablesTool(this.opts.flavour ?? (await detectFlavour(this.family, this.opts.netnsPath)), this.family, this.opts.netnsPath);
      const rules = await syncRules(this.tool, this.config, this.rulesSeen);
      this.rulesSeen = rules.last;
      rulesRewritten = rules.rewritten;
    } else {
      for (const name of req.changed!) render(name, req.state.services.get(name));
      const delta = this.index.takeDelta();
      for (const k of this.draining) delta.servers.add(k);
      for (const k of delta.servers) this.matched.delete(k);
      for (const k of delta.servers) {
        const have = this.kernelServer(k);
        if (have && this.excluded(have.service.address)) continue;
        plan(k, have);
      }
      for (const a of delta.addressesRemoved) rt.deleteAddress(linkIndex, hostCidr(a));
      for (const a of delta.addressesAdded) rt.addAddress(linkIndex, hostCidr(a), { noDad: true, replace: true });
      addressChanges = delta.addressesRemoved.length + delta.addressesAdded.length;
      await ipsetRestore(this.opts.netnsPath, renderSetDelta(this.family, delta.setAdded, delta.setRemoved));
      ipsetChanges = delta.setAdded.length + delta.setRemoved.length;
    }

    const failed = ipvs.applyAll(ops);
    this.draining.clear();
    for (const k of nowDraining) this.draining.add(k);
    this.scheduleDrainCheck();
    if (failed.length > 0) {
      const f = failed[0]!;
      throw new Error(`IPVS sync: ${describeOp(f.op)} failed: ${f.error.code}${f.error.extack ? ` (${f.error.extack})` : ''}${failed.length > 1 ? ` (and ${failed.length - 1} more)` : ''}`);
    }
    return {
      full,
      counts: {
        'ipvs virtual servers': this.index.servers.size,
        'ipvs changes': ops.length,
        'ipvs draining': this.draining.size,
        'address changes': addressChanges,
        'ipset changes': ipsetChanges,
        'rules rewritten': rulesRewritten ? 1 : 0,
      },
    };
  }

  private scheduleDrainCheck(): void {
    if (this.drainTimer || this.draining.size === 0) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = null;
      this.queue = this.queue.then(() => this.drainPass()).catch(() => {});
    }, this.opts.drainCheckMs ?? 5000);
    this.drainTimer.unref();
  }

  /** Re-checks draining real servers: deletes those whose connections have ended. */
  drainPass(): void {
    if (!this.ipvs) return;
    const ops: IpvsOp[] = [];
    const still = new Set<string>();
    for (const k of this.draining) {
      const p = planServer(this.index.servers.get(k), this.kernelServer(k));
      ops.push(...p.ops.filter((o) => o.op === 'delete-dest' || o.op === 'edit-dest'));
      if (p.draining > 0) still.add(k);
    }
    this.ipvs.applyAll(ops);
    this.draining.clear();
    for (const k of still) this.draining.add(k);
    this.scheduleDrainCheck();
  }

  async cleanup(): Promise<void> {
    await this.queue;
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = null;
    const ipvs = this.ipvs ?? Ipvs.open(this.opts.netnsPath);
    const ops: IpvsOp[] = ipvs
      .listServices()
      .filter((s) => s.family === this.family && !this.excluded(s.address))
      .map((s) => ({ op: 'delete-service', service: s }));
    ipvs.applyAll(ops);
    const tool = this.tool ?? iptablesTool(this.opts.flavour ?? (await detectFlavour(this.family, this.opts.netnsPath)), this.family, this.opts.netnsPath);
    await removeRules(tool);
    await destroySets(this.opts.netnsPath, this.family);
    const rt = this.rt ?? RouteNetlink.open(this.opts.netnsPath);
    rt.deleteLinkByName(IPVS_DUMMY_LINK);
    ipvs.close();
    rt.close();
    this.ipvs = null;
    this.rt = null;
    this.setupDone = false;
    this.index = new DesiredIndex();
    this.rendered.clear();
    this.renderKey = '';
    this.rulesSeen = null;
    this.matched.clear();
    this.draining.clear();
  }
}

function parseServiceKey(key: string): { family: 4 | 6; protocol: 'TCP' | 'UDP' | 'SCTP'; address: string; port: number } | null {
  const m = /^(TCP|UDP|SCTP)\/(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(key);
  if (!m) return null;
  const address = m[2] ?? m[3]!;
  return { family: familyOf(address), protocol: m[1] as 'TCP' | 'UDP' | 'SCTP', address, port: Number(m[4]) };
}
