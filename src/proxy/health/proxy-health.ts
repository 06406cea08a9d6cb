// The proxy's own health, as kube-proxy's healthz reports it: unhealthy when a
// change has waited for a sync longer than the timeout (2 × syncPeriod).
export class ProxyHealth {
  private lastUpdated = 0;
  private oldestQueued = 0;

  constructor(private readonly timeoutMs: number) {}

  /** A change is waiting for the next sync. */
  queued(): void {
    if (this.oldestQueued === 0) this.oldestQueued = Date.now();
  }

  /** A sync finished successfully. */
  updated(): void {
    this.lastUpdated = Date.now();
    this.oldestQueued = 0;
  }

  get lastUpdatedMs(): number {
    return this.lastUpdated;
  }

  healthy(now = Date.now()): boolean {
    return this.oldestQueued === 0 || now - this.oldestQueued < this.timeoutMs;
  }
}
