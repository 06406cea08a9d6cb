import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/sources/kubernetes/backoff.js';

describe('backoffDelay', () => {
  const p = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
  it('grows exponentially and stops at the cap', () => {
    const top = () => 0; // no jitter drawn
    expect([0, 1, 2, 3, 4, 5, 9].map((f) => backoffDelay(p, f, top))).toEqual([0, 100, 200, 400, 800, 1000, 1000]);
  });
  it('jitter only shortens, at most by the jitter fraction', () => {
    expect(backoffDelay(p, 3, () => 1)).toBe(200);
    expect(backoffDelay(p, 3, () => 0.5)).toBe(300);
  });
});
