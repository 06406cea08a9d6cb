// What the allocator needs from a reservation store (disk on a node, memory in tests).

export interface Reservation {
  ip: string;
  containerID: string;
  /** Empty for reservations in host-local's old format (container ID only). */
  ifname: string;
}

export interface Store {
  /** Reserves ip for (id, ifname) and records it as the range set's last; false when it is taken. */
  reserve(id: string, ifname: string, ip: string, rangeSetIndex: number): boolean;
  lastReserved(rangeSetIndex: number): string | null;
  all(): Reservation[];
  /** Removes one reservation (no error when already gone). */
  release(ip: string): void;
}

/** host-local matches "<id>\r\n<ifname>", and the old "<id>" alone when nothing has the new form. */
export function reservationsOf(store: Store, id: string, ifname: string): Reservation[] {
  const all = store.all();
  const exact = all.filter((r) => r.containerID === id && r.ifname === ifname);
  return exact.length > 0 ? exact : all.filter((r) => r.containerID === id && r.ifname === '');
}

export class MemoryStore implements Store {
  readonly ips = new Map<string, { containerID: string; ifname: string }>();
  readonly last = new Map<number, string>();

  reserve(id: string, ifname: string, ip: string, rangeSetIndex: number): boolean {
    if (this.ips.has(ip)) return false;
    this.ips.set(ip, { containerID: id, ifname });
    this.last.set(rangeSetIndex, ip);
    return true;
  }
  lastReserved(rangeSetIndex: number): string | null {
    return this.last.get(rangeSetIndex) ?? null;
  }
  all(): Reservation[] {
    return [...this.ips].map(([ip, r]) => ({ ip, ...r }));
  }
  release(ip: string): void {
    this.ips.delete(ip);
  }
}
