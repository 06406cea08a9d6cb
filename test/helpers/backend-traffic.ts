// Traffic cases every proxy backend must pass, on the services both backend
// suites program (10.96.0.10:80 over pods a, b and remote r; 10.96.0.11:53/UDP;
// 10.96.0.12 and node port 30081 without endpoints; node port 30080). Each
// suite calls this inside its describe, after its backend has synced.
import { expect, it } from 'vitest';
import { CLIENT_IP4, tally, type Cluster, type Pod } from './cluster.js';

export function sharedBackendTraffic(get: () => { c: Cluster; a: Pod; b: Pod }): void {
  it('ClusterIP spreads over local and remote endpoints and keeps the pod source', async () => {
    const { c, a } = get();
    const res = await c.probe(a.ns, '10.96.0.10', 80, { count: 30 });
    expect(Object.keys(tally(res)).sort()).toEqual(['a', 'b', 'r']);
    expect(res.every((x) => x.sourceIP === a.ip4 || x.server === 'a')).toBe(true);
  });

  it('UDP ClusterIP answers', async () => {
    const { c, b } = get();
    const res = await c.probe(b.ns, '10.96.0.11', 53, { proto: 'udp', count: 6 });
    expect(res.every((x) => x.result === 'ok')).toBe(true);
  });

  it('no endpoints: refused at once (ClusterIP and NodePort)', async () => {
    const { c, a } = get();
    const [x] = await c.probe(a.ns, '10.96.0.12', 80, { timeoutMs: 3000 });
    expect(x?.result).toBe('refused');
    expect(x!.ms).toBeLessThan(500);
    const [y] = await c.probe(c.client, c.node(1).ip4, 30081, { timeoutMs: 3000 });
    expect(y?.result).toBe('refused');
  });

  it('NodePort from the external client and from another node, masqueraded', async () => {
    const { c } = get();
    const res = await c.probe(c.client, c.node(1).ip4, 30080, { count: 20 });
    expect(res.every((x) => x.result === 'ok')).toBe(true);
    expect(res.some((x) => x.sourceIP === CLIENT_IP4)).toBe(false);
    const fromNode2 = await c.probe(c.node(2).ns, c.node(1).ip4, 30080, { count: 5 });
    expect(fromNode2.every((x) => x.result === 'ok' && x.sourceIP !== c.node(2).ip4)).toBe(true);
  });
}
