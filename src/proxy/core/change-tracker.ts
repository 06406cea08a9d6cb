// Records what changed since the last sync, per service, and applies it at
// sync time (kube-proxy's service and endpoints change trackers, merged): the
// source handlers only store the newest object and mark its service dirty;
// nothing is rendered until the sync loop asks. EndpointSlices are converted
// on arrival into the endpoints the views are made of (the raw slices, the
// bulk of a big cluster's objects, are not kept).
import type { EndpointSlice, ObjectIdentity, Service } from '../../api/types.js';
import type { IPFamily, ServicePortInfo, ServiceView } from '../model.js';
import { serviceKey, servicePorts, sliceEndpoints, sliceFamily, sliceServiceKey, type SlicePort, type TrackedEndpoint } from './convert.js';
import { categorize } from './topology.js';

export interface AppliedChanges {
  /** Service-port names (model keys) whose view changed or vanished, per family. */
  changed: Map<IPFamily, Set<string>>;
  /** Views before the change, for the conntrack cleanup (UDP endpoints that went away). */
  previous: Map<IPFamily, Map<string, ServiceView>>;
  serviceChanges: number;
  endpointChanges: number;
}

/** What the tracker keeps of an EndpointSlice. */
interface TrackedSlice {
  readonly service: string | null;
  readonly family: IPFamily | null;
  /** isLocal in the endpoints is for the tracker's current node name. */
  readonly ports: SlicePort[];
}

export class ChangeTracker {
  private readonly services = new Map<string, Service>();
  /** slice key "ns/name" → slice */
  private readonly slices = new Map<string, TrackedSlice>();
  /** service key → slice keys */
  private readonly slicesByService = new Map<string, Set<string>>();
  private readonly dirtyServices = new Set<string>();
  private readonly dirtyEndpoints = new Set<string>();
  /** The views last handed to backends, per family, by service-port name. */
  private readonly views = new Map<IPFamily, Map<string, ServiceView>>();
  /** Which service-port names each service produced last time, per family. */
  private readonly portsOf = new Map<IPFamily, Map<string, string[]>>();
  private nodeName: string;
  private zone = '';

  constructor(nodeName: string, private readonly families: readonly IPFamily[]) {
    this.nodeName = nodeName;
    for (const f of families) {
      this.views.set(f, new Map());
      this.portsOf.set(f, new Map());
    }
  }

  get pendingServices(): number {
    return this.dirtyServices.size;
  }

  get pendingEndpoints(): number {
    return this.dirtyEndpoints.size;
  }

  get pending(): boolean {
    return this.dirtyServices.size + this.dirtyEndpoints.size > 0;
  }

  upsertService(svc: Service): void {
    const key = serviceKey(svc.metadata.namespace, svc.metadata.name);
    this.services.set(key, svc);
    this.dirtyServices.add(key);
  }

  deleteService(svc: ObjectIdentity): void {
    const key = serviceKey(svc.metadata.namespace, svc.metadata.name);
    if (this.services.delete(key)) this.dirtyServices.add(key);
  }

  upsertSlice(slice: EndpointSlice): void {
    const key = serviceKey(slice.metadata.namespace, slice.metadata.name);
    const old = this.slices.get(key);
    const oldSvc = old?.service ?? null;
    const svc = sliceServiceKey(slice);
    if (oldSvc && oldSvc !== svc) {
      this.slicesByService.get(oldSvc)?.delete(key);
      this.dirtyEndpoints.add(oldSvc);
    }
    this.slices.set(key, { service: svc, family: sliceFamily(slice), ports: sliceEndpoints(slice, this.nodeName) });
    if (!svc) return;
    let set = this.slicesByService.get(svc);
    if (!set) this.slicesByService.set(svc, (set = new Set()));
    set.add(key);
    this.dirtyEndpoints.add(svc);
  }

  deleteSlice(slice: ObjectIdentity): void {
    const key = serviceKey(slice.metadata.namespace, slice.metadata.name);
    const old = this.slices.get(key);
    if (!old) return;
    this.slices.delete(key);
    const svc = old.service;
    if (!svc) return;
    this.slicesByService.get(svc)?.delete(key);
    this.dirtyEndpoints.add(svc);
  }

  /** The node's zone or name changed: every view may change (topology, locality). */
  setNode(nodeName: string, zone: string): void {
    if (nodeName === this.nodeName && zone === this.zone) return;
    if (nodeName !== this.nodeName) {
      for (const slice of this.slices.values())
        for (const p of slice.ports) p.endpoints = p.endpoints.map((ep) => ({ ...ep, isLocal: !!nodeName && ep.nodeName === nodeName }));
    }
    this.nodeName = nodeName;
    this.zone = zone;
    for (const k of this.services.keys()) this.dirtyServices.add(k);
  }

  /** Every service the tracker knows, marked dirty (used after a failed sync: the next one is full anyway). */
  view(family: IPFamily): ReadonlyMap<string, ServiceView> {
    return this.views.get(family)!;
  }

  /** Applies the pending changes and returns what changed. */
  apply(): AppliedChanges {
    const dirty = new Set([...this.dirtyServices, ...this.dirtyEndpoints]);
    const result: AppliedChanges = {
      changed: new Map(),
      previous: new Map(),
      serviceChanges: this.dirtyServices.size,
      endpointChanges: this.dirtyEndpoints.size,
    };
    this.dirtyServices.clear();
    this.dirtyEndpoints.clear();
    for (const family of this.families) {
      const views = this.views.get(family)!;
      const portsOf = this.portsOf.get(family)!;
      const changed = new Set<string>();
      const previous = new Map<string, ServiceView>();
      for (const key of dirty) {
        for (const name of portsOf.get(key) ?? []) {
          const v = views.get(name);
          if (v) previous.set(name, v);
          views.delete(name);
          changed.add(name);
        }
        portsOf.delete(key);
        const svc = this.services.get(key);
        if (!svc) continue;
        const ports = servicePorts(svc, family);
        if (ports.length === 0) continue;
        const eps = this.endpointsFor(key, family);
        const names: string[] = [];
        for (const info of ports) {
          const list = eps.get(`${info.portName}/${info.protocol}`) ?? [];
          views.set(info.name, categorize(info, list, this.zone, this.nodeName));
          names.push(info.name);
          changed.add(info.name);
        }
        portsOf.set(key, names);
      }
      result.changed.set(family, changed);
      result.previous.set(family, previous);
    }
    return result;
  }

  /** Endpoints of one service and family, merged over its slices, by "portName/protocol", deduplicated by ip:port. */
  private endpointsFor(svcKey: string, family: IPFamily): Map<string, TrackedEndpoint[]> {
    const out = new Map<string, Map<string, TrackedEndpoint>>();
    for (const sk of this.slicesByService.get(svcKey) ?? []) {
      const slice = this.slices.get(sk);
      if (!slice || slice.family !== family) continue;
      for (const { name: portName, protocol, endpoints } of slice.ports) {
        const k = `${portName}/${protocol}`;
        let m = out.get(k);
        if (!m) out.set(k, (m = new Map()));
        // The same endpoint in two slices (a slice being replaced): prefer the ready one.
        for (const ep of endpoints) {
          const id = `${ep.ip}:${ep.port}`;
          const prev = m.get(id);
          if (!prev || (!prev.ready && ep.ready)) m.set(id, ep);
        }
      }
    }
    return new Map([...out].map(([k, m]) => [k, [...m.values()]]));
  }
}

export type { ServicePortInfo };
