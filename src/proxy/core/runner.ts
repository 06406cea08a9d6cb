// One sync loop, rate limited (kube-proxy's BoundedFrequencyRunner): at most
// one run per minInterval, at least one per maxInterval, and a retry with
// backoff after a failure. Runs never overlap.
export class BoundedFrequencyRunner {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private rerun = false;
  private lastRun = 0;
  private stopped = false;
  private retryDelay = 0;
  private backoffUntil = 0;

  constructor(
    private readonly fn: () => Promise<void>,
    private readonly minIntervalMs: number,
    private readonly maxIntervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Asks for a run as soon as minInterval allows. */
  run(): void {
    if (this.stopped) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    // After a failure, new changes wait for the retry too: no hot loop on a broken kernel.
    const wait = Math.max(0, this.lastRun + this.minIntervalMs - Date.now(), this.backoffUntil - Date.now());
    this.schedule(wait, true);
  }

  private schedule(ms: number, onlyIfSooner = false): void {
    if (this.stopped) return;
    const at = Date.now() + ms;
    if (onlyIfSooner && this.timer && this.nextAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.nextAt = at;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private nextAt = 0;

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.running = true;
    this.lastRun = Date.now();
    let failed = false;
    try {
      await this.fn();
      this.retryDelay = 0;
      this.backoffUntil = 0;
    } catch (err) {
      failed = true;
      this.onError(err);
    } finally {
      this.running = false;
    }
    if (failed) {
      // Back off from minInterval (at least 1 s) up to maxInterval.
      this.retryDelay = Math.min(this.maxIntervalMs, Math.max(1000, this.minIntervalMs, this.retryDelay * 2));
      this.backoffUntil = Date.now() + this.retryDelay;
      this.schedule(this.retryDelay);
    } else if (this.rerun) {
      this.rerun = false;
      this.schedule(this.minIntervalMs);
    } else {
      this.schedule(this.maxIntervalMs);
    }
  }
}
