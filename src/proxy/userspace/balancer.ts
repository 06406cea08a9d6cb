// Endpoint choice for one service port and one kind of destination (cluster
// IP, or the external ones): round robin, with sessionAffinity ClientIP as
// kube-proxy has it — a client keeps its endpoint while it keeps connecting
// within the timeout. Pure: no sockets, the clock is injected.

export interface Target {
  readonly ip: string;
  readonly port: number;
}

/** "ip:port", "[ip6]:port": an endpoint's identity. */
export function targetKey(t: Target): string {
  return t.ip.includes(':') ? `[${t.ip}]:${t.port}` : `${t.ip}:${t.port}`;
}

interface Sticky {
  key: string;
  lastUsed: number;
}

export interface BalancerOptions {
  /** sessionAffinity ClientIP timeout in ms; 0: no affinity. */
  affinityTimeoutMs?: number;
  /** Milliseconds, monotonic enough for timeouts (default Date.now). */
  now?: () => number;
}

/** Picks between sweeps of expired affinity entries (keeps the table bounded without a timer). */
const SWEEP_EVERY = 1024;

export class Balancer {
  private endpoints: Target[] = [];
  private byKey = new Map<string, Target>();
  private next = 0;
  private affinityMs: number;
  private readonly now: () => number;
  private readonly sticky = new Map<string, Sticky>();
  private picks = 0;

  constructor(opts: BalancerOptions = {}) {
    this.affinityMs = opts.affinityTimeoutMs ?? 0;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.endpoints.length;
  }

  /** The current endpoints, in round-robin order. */
  list(): readonly Target[] {
    return this.endpoints;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** Clients with an affinity entry (expired ones may linger until the next sweep). */
  get affinityEntries(): number {
    return this.sticky.size;
  }

  /**
   * Replaces the endpoints in place. The round-robin position carries over
   * (modulo the new length); clients stuck to an endpoint that left lose
   * their entry, so their next pick is a fresh one.
   */
  update(endpoints: readonly Target[], affinityTimeoutMs = this.affinityMs): void {
    this.endpoints = endpoints.map((e) => ({ ip: e.ip, port: e.port }));
    this.byKey = new Map(this.endpoints.map((e) => [targetKey(e), e]));
    this.next = this.endpoints.length ? this.next % this.endpoints.length : 0;
    if (affinityTimeoutMs !== this.affinityMs) {
      this.affinityMs = affinityTimeoutMs;
      if (affinityTimeoutMs === 0) this.sticky.clear();
    }
    for (const [client, s] of this.sticky) if (!this.byKey.has(s.key)) this.sticky.delete(client);
    this.sweep();
  }

  /**
   * The endpoint for a new connection or session from clientIP, skipping
   * those already tried for it (connect failures); null when none is left.
   */
  pick(clientIP: string, tried?: ReadonlySet<string>): Target | null {
    const n = this.endpoints.length;
    if (n === 0) return null;
    const now = this.now();
    if (++this.picks % SWEEP_EVERY === 0) this.sweep(now);
    if (this.affinityMs > 0) {
      const s = this.sticky.get(clientIP);
      if (s && now - s.lastUsed <= this.affinityMs && !tried?.has(s.key)) {
        const e = this.byKey.get(s.key);
        if (e) {
          s.lastUsed = now;
          return e;
        }
      }
    }
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(this.next + i) % n]!;
      const key = targetKey(e);
      if (tried?.has(key)) continue;
      this.next = (this.next + i + 1) % n;
      if (this.affinityMs > 0) this.sticky.set(clientIP, { key, lastUsed: now });
      return e;
    }
    return null;
  }

  private sweep(now = this.now()): void {
    if (this.affinityMs === 0) return;
    for (const [client, s] of this.sticky) if (now - s.lastUsed > this.affinityMs) this.sticky.delete(client);
  }
}
