// The proxy's one direction of flow: source events → change tracker → one
// rate-limited sync loop → one backend per IP family. Nothing is programmed
// before the source says its initial lists are complete, and a sync that
// fails is retried as a full sync.
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { LABEL_ZONE, type EndpointSlice, type Node, type ObjectIdentity, type Service } from '../../api/types.js';
import type { SourceHandler } from '../../sources/source.js';
import { cleanStaleConntrack, staleConntrackCommands, type ConntrackRunner } from '../conntrack.js';
import type { ProxyHealth } from '../health/proxy-health.js';
import type { ServiceHealthServers } from '../health/servers.js';
import { metrics } from '../metrics.js';
import type { IPFamily, NodeInfo, ProxyBackend, ServiceView } from '../model.js';
import { ChangeTracker } from './change-tracker.js';
import { endpointSliceProblem, serviceProblem } from './validate.js';
import { BoundedFrequencyRunner } from './runner.js';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface ProxierOptions {
  nodeName: string;
  backends: ReadonlyMap<IPFamily, ProxyBackend>;
  minSyncPeriodMs: number;
  syncPeriodMs: number;
  log: Logger;
  health?: ProxyHealth;
  serviceHealth?: ServiceHealthServers;
  /** Runs `conntrack`; null disables the UDP cleanup (e.g. the tool is not installed). */
  conntrack?: ConntrackRunner | null;
  /** Node addresses when the Node object has none (default: this namespace's interfaces). */
  localAddresses?: (family: IPFamily) => string[];
}

export function interfaceAddresses(family: IPFamily): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal || (family === 4 ? a.family !== 'IPv4' : a.family !== 'IPv6')) continue;
      if (family === 6 && a.address.toLowerCase().startsWith('fe80')) continue;
      out.push(a.address);
    }
  }
  return out;
}

export class Proxier implements SourceHandler {
  private readonly tracker: ChangeTracker;
  private readonly runner: BoundedFrequencyRunner;
  private readonly families: IPFamily[];
  private synced = false;
  private node: Node | null = null;
  private programmed = false;
  private readonly needFull = new Map<IPFamily, boolean>();
  private readonly lastFull = new Map<IPFamily, number>();
  private readonly firstQueued: { at: number } = { at: 0 };
  /** Resolved after every sync attempt; tests and the lab wait on it. */
  private waiters: Array<() => void> = [];
  syncCount = 0;

  constructor(private readonly opts: ProxierOptions) {
    this.families = [...opts.backends.keys()];
    this.tracker = new ChangeTracker(opts.nodeName, this.families);
    for (const f of this.families) this.needFull.set(f, true);
    this.runner = new BoundedFrequencyRunner(
      () => this.sync(),
      opts.minSyncPeriodMs,
      opts.syncPeriodMs,
      (err) => opts.log.error({ err: String(err) }, 'sync failed; retrying with a full sync'),
    );
  }

  // ---- SourceHandler ----
  onServiceUpsert(svc: Service): void {
    const problem = serviceProblem(svc);
    if (problem) {
      this.opts.log.warn({ service: `${svc.metadata?.namespace ?? 'default'}/${svc.metadata?.name}`, reason: problem }, 'ignoring invalid Service');
      // An object that became invalid stops being proxied.
      if (svc.metadata?.name) this.tracker.deleteService(svc);
    } else this.tracker.upsertService(svc);
    this.queue();
  }

  onServiceDelete(svc: ObjectIdentity): void {
    this.tracker.deleteService(svc);
    this.queue();
  }

  onEndpointSliceUpsert(slice: EndpointSlice): void {
    const problem = endpointSliceProblem(slice);
    if (problem) {
      this.opts.log.warn({ endpointSlice: `${slice.metadata?.namespace ?? 'default'}/${slice.metadata?.name}`, reason: problem }, 'ignoring invalid EndpointSlice');
      if (slice.metadata?.name) this.tracker.deleteSlice(slice);
    } else this.tracker.upsertSlice(slice);
    this.queue();
  }

  onEndpointSliceDelete(slice: ObjectIdentity): void {
    this.tracker.deleteSlice(slice);
    this.queue();
  }

  onNodeUpsert(node: Node): void {
    if (node.metadata.name !== this.opts.nodeName) return;
    this.node = node;
    this.tracker.setNode(this.opts.nodeName, node.metadata.labels?.[LABEL_ZONE] ?? '');
    // Node addresses feed node ports in every service: rewrite everything.
    for (const f of this.families) this.needFull.set(f, true);
    this.queue();
  }

  onNodeDelete(node: ObjectIdentity): void {
    if (node.metadata.name !== this.opts.nodeName) return;
    this.node = null;
    for (const f of this.families) this.needFull.set(f, true);
    this.queue();
  }

  onSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.opts.log.info({ services: this.tracker.pendingServices, endpoints: this.tracker.pendingEndpoints }, 'initial state complete; starting the sync loop');
    this.runner.start();
  }

  // ---- the loop ----
  start(): void {
    /* the loop starts at onSynced */
  }

  stop(): void {
    this.runner.stop();
  }

  /** Resolves after the next sync attempt finishes. */
  nextSync(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }

  view(family: IPFamily): ReadonlyMap<string, ServiceView> {
    return this.tracker.view(family);
  }

  private queue(): void {
    metrics.serviceChangesPending.set(this.tracker.pendingServices);
    metrics.endpointChangesPending.set(this.tracker.pendingEndpoints);
    metrics.syncProxyRulesLastQueuedTimestamp.set(Date.now() / 1000);
    if (!this.firstQueued.at) this.firstQueued.at = Date.now();
    this.opts.health?.queued();
    if (this.synced) this.runner.run();
  }

  private nodeInfo(family: IPFamily): NodeInfo {
    const fromNode = (this.node?.status?.addresses ?? [])
      .filter((a) => (a.type === 'InternalIP' || a.type === 'ExternalIP') && isIP(a.address) === family)
      .map((a) => a.address);
    const ips = fromNode.length ? fromNode : (this.opts.localAddresses ?? interfaceAddresses)(family);
    return {
      name: this.opts.nodeName,
      ips,
      zone: this.node?.metadata.labels?.[LABEL_ZONE] ?? '',
      labels: this.node?.metadata.labels ?? {},
      podCIDRs: (this.node?.spec?.podCIDRs ?? (this.node?.spec?.podCIDR ? [this.node.spec.podCIDR] : [])).filter((c) => isIP(c.split('/')[0]!) === family),
    };
  }

  private async sync(): Promise<void> {
    const started = performance.now();
    const applied = this.tracker.apply();
    metrics.serviceChangesTotal.inc(applied.serviceChanges);
    metrics.endpointChangesTotal.inc(applied.endpointChanges);
    metrics.serviceChangesPending.set(0);
    metrics.endpointChangesPending.set(0);
    let failure: unknown = null;
    let anyFull = false;
    try {
      for (const family of this.families) {
        const backend = this.opts.backends.get(family)!;
        const now = Date.now();
        const full = this.needFull.get(family)! || now - (this.lastFull.get(family) ?? 0) >= this.opts.syncPeriodMs;
        const views = this.tracker.view(family);
        try {
          const res = await backend.sync({ state: { family, node: this.nodeInfo(family), services: views }, changed: full ? null : applied.changed.get(family)! });
          this.needFull.set(family, false);
          if (res.full || full) {
            anyFull = true;
            this.lastFull.set(family, now);
          }
          this.opts.log.debug({ family, full: res.full || full, changed: applied.changed.get(family)!.size, services: views.size, counts: res.counts }, 'synced');
        } catch (err) {
          this.needFull.set(family, true);
          metrics.syncProxyRulesLastSyncFailures.inc({ mode: backend.mode });
          failure ??= err;
          continue;
        }
        if (this.opts.conntrack !== null) {
          const cmds = staleConntrackCommands(family, applied.changed.get(family)!, applied.previous.get(family)!, views);
          if (cmds.length) await cleanStaleConntrack(cmds, this.opts.conntrack);
        }
      }
      if (failure) throw failure;
      const seconds = (performance.now() - started) / 1000;
      metrics.syncProxyRulesDuration.observe(seconds);
      (anyFull ? metrics.syncFullProxyRulesDuration : metrics.syncPartialProxyRulesDuration).observe(seconds);
      metrics.syncProxyRulesLastTimestamp.set(Date.now() / 1000);
      if (!this.programmed) {
        // Once per process: when the node's rules first match the source (an operator's "is it up yet").
        this.programmed = true;
        const services = this.families.reduce((n, f) => n + this.tracker.view(f).size, 0);
        this.opts.log.info({ servicePorts: services, syncSeconds: +seconds.toFixed(3) }, 'first sync complete: rules programmed');
      }
      if (this.firstQueued.at) metrics.networkProgrammingDuration.observe((Date.now() - this.firstQueued.at) / 1000);
      this.firstQueued.at = 0;
      this.opts.health?.updated();
      this.opts.serviceHealth?.update(this.families.flatMap((f) => [...this.tracker.view(f).values()]));
      this.countLocalPolicies();
    } finally {
      this.syncCount++;
      const w = this.waiters;
      this.waiters = [];
      for (const r of w) r();
    }
  }

  private countLocalPolicies(): void {
    let internal = 0;
    let external = 0;
    for (const f of this.families) {
      for (const v of this.tracker.view(f).values()) {
        if (v.info.internalPolicyLocal && v.internalEndpoints.length === 0 && v.allEndpoints.length === 0) internal++;
        if (v.info.externalPolicyLocal && v.externalEndpoints.length === 0) external++;
      }
    }
    metrics.noLocalEndpointsTotal.set({ traffic_policy: 'internal' }, internal);
    metrics.noLocalEndpointsTotal.set({ traffic_policy: 'external' }, external);
  }
}
