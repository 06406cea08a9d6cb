// The fake cluster itself: pods answer directly across nodes, before any proxy rule exists.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_IP4, Cluster } from '../helpers/cluster.js';

let c: Cluster;
beforeAll(async () => {
  c = await Cluster.create('iptc');
  await c.addPod('a', 1);
  await c.addPod('b', 2);
});
afterAll(() => c?.destroy());

describe('test/helpers/cluster.ts', () => {
  it('routes pod to pod across nodes without NAT (TCP, UDP, IPv6)', async () => {
    const [tcp] = await c.probe(c.pod('a').ns, c.pod('b').ip4, 8080);
    expect(tcp).toMatchObject({ result: 'ok', server: 'b', sourceIP: c.pod('a').ip4 });
    const [udp] = await c.probe(c.pod('a').ns, c.pod('b').ip4, 8081, { proto: 'udp' });
    expect(udp).toMatchObject({ result: 'ok', server: 'b' });
    const [v6] = await c.probe(c.pod('b').ns, c.pod('a').ip6, 8080);
    expect(v6).toMatchObject({ result: 'ok', server: 'a', sourceIP: c.pod('b').ip6 });
  });
  it('lets the external client reach the nodes but not the pods (no route)', async () => {
    const [n] = await c.probe(c.client, c.node(1).ip4, 9, { timeoutMs: 500 });
    expect(n?.result).toBe('refused');
    const [p] = await c.probe(c.client, c.pod('a').ip4, 8080, { timeoutMs: 500 });
    expect(p?.result).not.toBe('ok');
    expect(CLIENT_IP4).toBe('10.0.0.100');
  });
});
