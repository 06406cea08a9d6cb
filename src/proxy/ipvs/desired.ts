// The desired state of the whole node, kept per service port with reference
// counts, so a partial sync re-renders only the service ports that changed
// and learns exactly which virtual servers, addresses and set members moved.
import { destKeyString, serviceKeyString, type RealServer, type VirtualServer } from '../../netlink/ipvs.js';
import type { SetId } from './names.js';
import type { PortRender } from './render.js';

export interface DesiredServer {
  readonly service: VirtualServer;
  /** By destKeyString. */
  readonly dests: ReadonlyMap<string, RealServer>;
  readonly owner: string;
}

export interface Delta {
  /** Virtual servers (serviceKeyString) that may differ from the kernel now. */
  readonly servers: Set<string>;
  readonly addressesAdded: string[];
  readonly addressesRemoved: string[];
  readonly setAdded: Array<readonly [SetId, string]>;
  readonly setRemoved: Array<readonly [SetId, string]>;
}

class RefCount<K> {
  readonly counts = new Map<K, number>();
  private readonly before = new Map<K, boolean>();

  private touch(k: K): void {
    if (!this.before.has(k)) this.before.set(k, (this.counts.get(k) ?? 0) > 0);
  }
  inc(k: K): void {
    this.touch(k);
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }
  dec(k: K): void {
    this.touch(k);
    const n = (this.counts.get(k) ?? 0) - 1;
    if (n > 0) this.counts.set(k, n);
    else this.counts.delete(k);
  }
  /** What appeared and disappeared since the last call. */
  take(): { added: K[]; removed: K[] } {
    const added: K[] = [];
    const removed: K[] = [];
    for (const [k, was] of this.before) {
      const is = this.counts.has(k);
      if (is && !was) added.push(k);
      else if (!is && was) removed.push(k);
    }
    this.before.clear();
    return { added, removed };
  }
}

const SEP = '\u0000';

export class DesiredIndex {
  private readonly ports = new Map<string, PortRender>();
  readonly servers = new Map<string, DesiredServer>();
  private readonly addrs = new RefCount<string>();
  private readonly members = new RefCount<string>();
  private touched = new Set<string>();

  get addresses(): Iterable<string> {
    return this.addrs.counts.keys();
  }

  /** Every set member, by set. */
  setMembers(): Map<SetId, string[]> {
    const out = new Map<SetId, string[]>();
    for (const k of this.members.counts.keys()) {
      const i = k.indexOf(SEP);
      const id = k.slice(0, i) as SetId;
      let list = out.get(id);
      if (!list) out.set(id, (list = []));
      list.push(k.slice(i + 1));
    }
    return out;
  }

  has(name: string): boolean {
    return this.ports.has(name);
  }

  /** Replaces one service port's render (null: the port is gone). */
  update(name: string, render: PortRender | null): void {
    const old = this.ports.get(name);
    if (old) {
      for (const s of old.servers) {
        const k = serviceKeyString(s.service);
        if (this.servers.get(k)?.owner === name) this.servers.delete(k);
        this.touched.add(k);
      }
      for (const a of old.addresses) this.addrs.dec(a);
      for (const [id, e] of old.setEntries) this.members.dec(id + SEP + e);
      this.ports.delete(name);
    }
    if (!render) return;
    this.ports.set(name, render);
    for (const s of render.servers) {
      const k = serviceKeyString(s.service);
      this.servers.set(k, { service: s.service, dests: new Map(s.dests.map((d) => [destKeyString(d), d])), owner: name });
      this.touched.add(k);
    }
    for (const a of render.addresses) this.addrs.inc(a);
    for (const [id, e] of render.setEntries) this.members.inc(id + SEP + e);
  }

  /** The changes since the last takeDelta. */
  takeDelta(): Delta {
    const a = this.addrs.take();
    const m = this.members.take();
    const split = (k: string): readonly [SetId, string] => {
      const i = k.indexOf(SEP);
      return [k.slice(0, i) as SetId, k.slice(i + 1)];
    };
    const servers = this.touched;
    this.touched = new Set();
    return { servers, addressesAdded: a.added, addressesRemoved: a.removed, setAdded: m.added.map(split), setRemoved: m.removed.map(split) };
  }
}
