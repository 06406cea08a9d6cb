import { describe, expect, it } from 'vitest';
import { Balancer, targetKey, type Target } from '../../src/proxy/userspace/balancer.js';

const ep = (ip: string, port = 8080): Target => ({ ip, port });
const A = ep('10.244.1.2');
const B = ep('10.244.1.3');
const C = ep('10.244.2.2');

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

const picks = (b: Balancer, client: string, n: number) => Array.from({ length: n }, () => b.pick(client)?.ip ?? null);

describe('userspace Balancer: round robin', () => {
  it('goes through the endpoints in order and wraps around', () => {
    const b = new Balancer();
    b.update([A, B, C]);
    expect(picks(b, '10.0.0.100', 7)).toEqual([A.ip, B.ip, C.ip, A.ip, B.ip, C.ip, A.ip]);
  });

  it('spreads different clients over the same rotation', () => {
    const b = new Balancer();
    b.update([A, B]);
    expect([b.pick('1.1.1.1')?.ip, b.pick('2.2.2.2')?.ip, b.pick('1.1.1.1')?.ip]).toEqual([A.ip, B.ip, A.ip]);
  });

  it('has nothing to pick without endpoints', () => {
    const b = new Balancer();
    expect(b.pick('1.1.1.1')).toBeNull();
    b.update([A]);
    b.update([]);
    expect(b.pick('1.1.1.1')).toBeNull();
    expect(b.size).toBe(0);
  });

  it('skips endpoints already tried for this connection, then gives up', () => {
    const b = new Balancer();
    b.update([A, B, C]);
    const tried = new Set([targetKey(A)]);
    expect(b.pick('c', tried)?.ip).toBe(B.ip);
    tried.add(targetKey(B));
    expect(b.pick('c', tried)?.ip).toBe(C.ip);
    tried.add(targetKey(C));
    expect(b.pick('c', tried)).toBeNull();
  });

  it('an endpoint removed is never picked again; the others keep rotating', () => {
    const b = new Balancer();
    b.update([A, B, C]);
    expect(b.pick('c')?.ip).toBe(A.ip);
    b.update([A, C]);
    expect(b.has(targetKey(B))).toBe(false);
    const seen = picks(b, 'c', 6);
    expect(seen).not.toContain(B.ip);
    expect(new Set(seen)).toEqual(new Set([A.ip, C.ip]));
    expect(seen[0]).not.toBe(seen[1]);
  });

  it('keys IPv6 endpoints with brackets', () => {
    expect(targetKey(ep('fd00:244:1::2', 80))).toBe('[fd00:244:1::2]:80');
    expect(targetKey(ep('10.0.0.1', 80))).toBe('10.0.0.1:80');
  });
});

describe('userspace Balancer: sessionAffinity ClientIP', () => {
  it('sticks a client to its first endpoint; other clients still rotate', () => {
    const c = clock();
    const b = new Balancer({ affinityTimeoutMs: 10_000, now: c.now });
    b.update([A, B, C]);
    expect(picks(b, 'x', 5)).toEqual([A.ip, A.ip, A.ip, A.ip, A.ip]);
    expect(b.pick('y')?.ip).toBe(B.ip);
    expect(b.pick('z')?.ip).toBe(C.ip);
    expect(b.pick('y')?.ip).toBe(B.ip);
  });

  it('each use refreshes the timeout; idle past it, the client is balanced afresh', () => {
    const c = clock();
    const b = new Balancer({ affinityTimeoutMs: 10_000, now: c.now });
    b.update([A, B]);
    expect(b.pick('x')?.ip).toBe(A.ip);
    c.t += 9_000;
    expect(b.pick('x')?.ip).toBe(A.ip);
    c.t += 9_000; // 18 s after the first pick, 9 s after the last: still stuck
    expect(b.pick('x')?.ip).toBe(A.ip);
    c.t += 10_001;
    expect(b.pick('x')?.ip).toBe(B.ip);
    expect(b.pick('x')?.ip).toBe(B.ip);
  });

  it('a client whose endpoint leaves is moved and then sticks to the new one', () => {
    const c = clock();
    const b = new Balancer({ affinityTimeoutMs: 10_000, now: c.now });
    b.update([A, B]);
    expect(b.pick('x')?.ip).toBe(A.ip);
    b.update([B, C]);
    const moved = b.pick('x')?.ip;
    expect([B.ip, C.ip]).toContain(moved);
    expect(picks(b, 'x', 3)).toEqual([moved, moved, moved]);
  });

  it('a sticky endpoint that failed to connect is skipped, and the client sticks to the one that worked', () => {
    const c = clock();
    const b = new Balancer({ affinityTimeoutMs: 10_000, now: c.now });
    b.update([A, B, C]);
    expect(b.pick('x')?.ip).toBe(A.ip);
    const next = b.pick('x', new Set([targetKey(A)]))?.ip;
    expect(next).not.toBe(A.ip);
    expect(b.pick('x')?.ip).toBe(next);
  });

  it('affinity turned off forgets every client; expired entries are swept', () => {
    const c = clock();
    const b = new Balancer({ affinityTimeoutMs: 1_000, now: c.now });
    b.update([A, B]);
    b.pick('x');
    b.pick('y');
    expect(b.affinityEntries).toBe(2);
    c.t += 5_000;
    b.update([A, B]);
    expect(b.affinityEntries).toBe(0);
    b.pick('x');
    b.update([A, B], 0);
    expect(b.affinityEntries).toBe(0);
    const two = picks(b, 'x', 2);
    expect(two[0]).not.toBe(two[1]);
  });
});
