// Capped exponential backoff with jitter: how long to wait before the next
// attempt after `failures` consecutive failures. Jitter spreads thousands of
// nodes reconnecting after one API-server restart.
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0..1: the delay is drawn from [d*(1-jitter), d]. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 800, maxMs: 30_000, factor: 2, jitter: 0.5 };

export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  if (failures <= 0) return 0;
  const base = Math.min(policy.maxMs, policy.initialMs * policy.factor ** (failures - 1));
  return Math.round(base * (1 - policy.jitter * random()));
}
