// --proxy-mode=userspace: the daemon is the proxy. Each sync reconciles the
// listening sockets (one per address:port of every service port with
// endpoints) and the service addresses on podwire-us0; endpoint changes are
// swapped into live listeners in place.
import type { Logger } from '../core/proxier.js';
import type { IPFamily, ProxyBackend, ProxyConfig, ServiceView, SyncRequest, SyncResult } from '../model.js';
import { AddressLink, USERSPACE_LINK } from './addresses.js';
import { Balancer } from './balancer.js';
import { nodePortIPs } from '../node-addresses.js';
import { planPort, sourceMatcher, type ListenerSpec, type PortPlan } from './plan.js';
import type { Listener, Route } from './route.js';
import { TcpListener, type ConnectionSet } from './tcp.js';
import { UdpListener } from './udp.js';

export interface UserspaceOptions {
  /** How long an idle UDP session keeps its upstream socket (kube-proxy's --udp-timeout, default 250 ms). */
  udpIdleTimeoutMs?: number;
  log: Logger;
}

/** One service port as this backend serves it. */
interface PortState {
  view: ServiceView;
  readonly internal: Balancer;
  readonly external: Balancer;
  /** Keys of the listeners this port owns. */
  readonly listeners: Set<string>;
  addresses: string[];
}

export class UserspaceProxier implements ProxyBackend {
  readonly mode = 'userspace' as const;
  readonly family: IPFamily;
  private readonly udpIdleMs: number;
  private readonly log: Logger;
  private readonly link: AddressLink;
  private readonly ports = new Map<string, PortState>();
  private readonly listeners = new Map<string, { owner: string; listener: Listener }>();
  /** Service ports whose addresses are held, per address (two services may share an external IP). */
  private readonly addressRefs = new Map<string, Set<string>>();
  /** Service ports with a listener that could not be opened: full syncs try again. */
  private readonly retry = new Set<string>();
  /** The last bind error per listener key, so a failure that persists is logged once. */
  private readonly bindErrors = new Map<string, string>();
  private readonly sctpLogged = new Set<string>();
  private readonly connections: ConnectionSet = new Set();
  private nodePortKey: string | null = null;
  private linkKindLogged = '';
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly config: ProxyConfig,
    opts: UserspaceOptions,
  ) {
    this.family = config.family;
    this.udpIdleMs = opts.udpIdleTimeoutMs ?? 250;
    this.log = opts.log;
    this.link = new AddressLink(config.family);
  }

  sync(req: SyncRequest): Promise<SyncResult> {
    const run = this.queue.then(() => this.syncNow(req));
    this.queue = run.catch(() => {});
    return run;
  }

  private async syncNow(req: SyncRequest): Promise<SyncResult> {
    const state = req.state;
    // Without a Node object the core reports every interface address, podwire-us0's too: those are services, not the node.
    const onLink = this.link.current();
    const npIPs = nodePortIPs(this.config, state.node.ips, { localhost: this.config.localhostNodePorts }).filter((ip) => !onLink.has(ip));
    const npKey = npIPs.join(',');
    // Node addresses feed every node port listener: a change there rewrites everything.
    const full = req.changed === null || npKey !== this.nodePortKey;
    const rebuildAll = npKey !== this.nodePortKey;
    this.nodePortKey = npKey;

    const names = new Set<string>();
    if (full) {
      for (const [name, view] of state.services) {
        // Views are replaced, never mutated, on change: the same object needs no work.
        if (rebuildAll || this.retry.has(name) || this.ports.get(name)?.view !== view) names.add(name);
      }
      for (const name of this.ports.keys()) if (!state.services.has(name)) names.add(name);
    } else {
      for (const name of req.changed!) names.add(name);
    }

    // 1. Close listeners that are no longer wanted, and move address references.
    const plans = new Map<string, PortPlan>();
    const addressesAdded = new Set<string>();
    const addressesDropped = new Set<string>();
    for (const name of names) {
      const view = state.services.get(name);
      const plan = view ? planPort(view, npIPs) : null;
      if (plan && view) plans.set(name, plan);
      this.noteSctp(name, view);
      const port = this.ports.get(name);
      const wantKeys = new Set(plan?.listeners.map((l) => l.key));
      if (port) {
        for (const key of [...port.listeners]) {
          if (wantKeys.has(key)) continue;
          this.closeListener(key);
          port.listeners.delete(key);
        }
      }
      const before = port?.addresses ?? [];
      const after = plan?.addresses ?? [];
      for (const a of before) if (!after.includes(a) && this.unref(a, name)) addressesDropped.add(a);
      for (const a of after) if (!before.includes(a) && this.ref(a, name)) addressesAdded.add(a);
      if (port) port.addresses = after;
      if (!view) {
        this.ports.delete(name);
        this.retry.delete(name);
      }
    }

    // 2. Addresses first, so that new listeners can bind them.
    let addressChanges = 0;
    if (full) {
      addressChanges = this.link.reconcile(new Set(this.addressRefs.keys()));
      if (this.link.kind !== this.linkKindLogged) {
        this.linkKindLogged = this.link.kind;
        this.log.info({ link: USERSPACE_LINK, kind: this.link.kind, family: this.family }, 'userspace: service addresses on their own link');
      }
    } else {
      for (const a of addressesDropped) if (!this.addressRefs.has(a)) this.link.remove(a);
      for (const a of addressesAdded) this.link.add(a);
      addressChanges = addressesDropped.size + addressesAdded.size;
    }

    // 3. Swap endpoints into what stays, open what is new.
    const opening: Array<Promise<boolean>> = [];
    for (const [name, plan] of plans) {
      const view = state.services.get(name)!;
      const port = this.portState(name, view);
      port.addresses = plan.addresses;
      this.retry.delete(name);
      for (const spec of plan.listeners) opening.push(this.ensureListener(name, port, spec));
    }
    const opened = await Promise.all(opening);
    let tcp = 0;
    let udp = 0;
    for (const { listener } of this.listeners.values()) listener instanceof TcpListener ? tcp++ : udp++;
    return {
      full,
      counts: {
        'userspace tcp listeners': tcp,
        'userspace udp listeners': udp,
        'userspace listen failures': opened.filter((ok) => !ok).length,
        'address changes': addressChanges,
        'service addresses': this.addressRefs.size,
      },
    };
  }

  private portState(name: string, view: ServiceView): PortState {
    const affinityMs = view.info.affinityTimeoutSeconds * 1000;
    let port = this.ports.get(name);
    if (!port) {
      port = { view, internal: new Balancer({ affinityTimeoutMs: affinityMs }), external: new Balancer({ affinityTimeoutMs: affinityMs }), listeners: new Set(), addresses: [] };
      this.ports.set(name, port);
    }
    port.view = view;
    port.internal.update(view.internalEndpoints, affinityMs);
    port.external.update(view.externalEndpoints, affinityMs);
    return port;
  }

  /** Points an existing listener at the port's current endpoints, or opens it; false when it could not be opened. */
  private async ensureListener(name: string, port: PortState, spec: ListenerSpec): Promise<boolean> {
    const route: Route = { name, balancer: spec.destination === 'internal' ? port.internal : port.external, allow: sourceMatcher(spec.sourceRanges) };
    const have = this.listeners.get(spec.key);
    if (have) {
      if (have.owner !== name) return this.failed(name, spec.key, `already served for ${have.owner}`);
      have.listener.route = route;
      have.listener.endpointsChanged();
      return true;
    }
    const listener =
      spec.protocol === 'TCP'
        ? new TcpListener(spec.key, spec.address, spec.port, route, this.connections, this.log)
        : new UdpListener(spec.key, spec.address, spec.port, route, this.udpIdleMs, this.log);
    // Claimed before binding, so a second port wanting the same socket in this sync sees the conflict.
    this.listeners.set(spec.key, { owner: name, listener });
    port.listeners.add(spec.key);
    try {
      await listener.listen();
    } catch (err) {
      this.listeners.delete(spec.key);
      port.listeners.delete(spec.key);
      return this.failed(name, spec.key, String(err));
    }
    if (this.bindErrors.delete(spec.key)) this.log.info({ service: name, listener: spec.key }, 'userspace: listening again');
    return true;
  }

  private failed(name: string, key: string, why: string): false {
    this.retry.add(name);
    if (this.bindErrors.get(key) !== why) {
      this.bindErrors.set(key, why);
      this.log.warn({ service: name, listener: key, err: why }, 'userspace: cannot listen; retrying at the next full sync');
    }
    return false;
  }

  private closeListener(key: string): void {
    const have = this.listeners.get(key);
    if (!have) return;
    this.listeners.delete(key);
    this.bindErrors.delete(key);
    have.listener.close();
  }

  /** True when the address gained its first reference. */
  private ref(address: string, name: string): boolean {
    let s = this.addressRefs.get(address);
    const first = !s;
    if (!s) this.addressRefs.set(address, (s = new Set()));
    s.add(name);
    return first;
  }

  /** True when the address lost its last reference. */
  private unref(address: string, name: string): boolean {
    const s = this.addressRefs.get(address);
    if (!s) return false;
    s.delete(name);
    if (s.size > 0) return false;
    this.addressRefs.delete(address);
    return true;
  }

  private noteSctp(name: string, view: ServiceView | undefined): void {
    if (view?.info.protocol !== 'SCTP') {
      this.sctpLogged.delete(name);
      return;
    }
    if (this.sctpLogged.has(name)) return;
    this.sctpLogged.add(name);
    this.log.warn({ service: name, family: this.family }, 'userspace: Node.js has no SCTP sockets; this SCTP port is not proxied');
  }

  async cleanup(): Promise<void> {
    await this.queue;
    for (const key of [...this.listeners.keys()]) this.closeListener(key);
    for (const s of this.connections) s.destroy();
    this.connections.clear();
    this.ports.clear();
    this.addressRefs.clear();
    this.retry.clear();
    this.sctpLogged.clear();
    this.nodePortKey = null;
    this.link.destroy();
    this.link.close();
  }
}
