// Partial syncs in the real kernel, both iptables flavours: a changed service's lines in the shared
// chains are deleted and inserted one by one (-D / -I KUBE-SERVICES 1 / -A), checked by connections
// and by what iptables-save shows afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IptablesBackend, type Flavour } from '../../src/proxy/iptables/index.js';
import { serviceChains } from '../../src/proxy/iptables/names.js';
import type { ServiceView } from '../../src/proxy/model.js';
import { Cluster, tally, type Pod } from '../helpers/cluster.js';
import { netnsPath, nsMust } from '../helpers/netns.js';
import { config, ep, state, svcInfo, view } from '../helpers/model.js';

let c: Cluster;
let a: Pod, r: Pod;

beforeAll(async () => {
  c = await Cluster.create('ipt-pl');
  a = await c.addPod('a', 1);
  r = await c.addPod('r', 2);
  // REJECT's ICMP errors are rate-limited per destination (one a second): this suite refuses the same client often.
  await nsMust(c.node(1).ns, 'sysctl', ['-q', '-w', 'net.ipv4.icmp_ratelimit=0']);
}, 120_000);
afterAll(() => c?.destroy());

const web = svcInfo('default', 'web', { clusterIP: '10.96.1.10', nodePort: 30090 });
const other = svcInfo('default', 'other', { clusterIP: '10.96.1.11' });
const added = svcInfo('default', 'added', { clusterIP: '10.96.1.12', nodePort: 30091 });
const podEp = (p: Pod) => ep(p.ip4, 8080, p.node.index === 1);

function services(webPods: Pod[], extra: ServiceView[] = []) {
  return state([view(web, webPods.map(podEp)), view(other, [podEp(a)]), ...extra]);
}

for (const flavour of ['nft', 'legacy'] as Flavour[]) {
  describe(`partial syncs, iptables-${flavour}`, () => {
    let be: IptablesBackend;
    // Counters and the "# Generated/Completed on <time>" lines differ between two identical saves.
    const save = async (table: string) =>
      (await nsMust(c.node(1).ns, `iptables-${flavour}-save`, ['-c', '-t', table])).replace(/^\[\d+:\d+\] /gm, '').replace(/^#.*\n/gm, '');
    const rulesOf = (text: string, chain: string) => text.split('\n').filter((l) => l.startsWith(`-A ${chain} `));

    beforeAll(async () => {
      be = new IptablesBackend(config(), { netnsPath: netnsPath(c.node(1).ns), flavour });
      expect((await be.sync({ state: services([a, r]), changed: null })).full).toBe(true);
    }, 60_000);
    afterAll(async () => {
      await be?.cleanup();
    });

    it('a service losing every endpoint is refused at once; regaining them, it is served again', async () => {
      expect(Object.keys(tally(await c.probe(c.client, c.node(1).ip4, 30090, { count: 12 }))).sort()).toEqual(['a', 'r']);
      await c.probe(a.ns, '10.96.1.11', 80, { count: 2 });
      const counters = async () => (await nsMust(c.node(1).ns, `iptables-${flavour}-save`, ['-c', '-t', 'nat'])).split('\n').filter((l) => l.includes(`-A ${serviceChains(other).svc} `)).join('\n');
      const before = await counters();
      expect(before).toMatch(/^\[[1-9]/m);

      expect((await be.sync({ state: services([]), changed: new Set([web.name]) })).full).toBe(false);
      expect(tally(await c.probe(a.ns, '10.96.1.10', 80, { timeoutMs: 1000 }))).toEqual({ refused: 1 });
      expect(tally(await c.probe(c.client, c.node(1).ip4, 30090, { timeoutMs: 1000 }))).toEqual({ refused: 1 });
      expect(await save('nat')).not.toContain(serviceChains(web).svc);

      expect((await be.sync({ state: services([r]), changed: new Set([web.name]) })).full).toBe(false);
      expect(tally(await c.probe(a.ns, '10.96.1.10', 80, { count: 3 }))).toEqual({ r: 3 });
      expect(tally(await c.probe(c.client, c.node(1).ip4, 30090, { count: 3 }))).toEqual({ r: 3 });
      expect(rulesOf(await save('filter'), 'KUBE-SERVICES')).toEqual([]);
      // The untouched service's chain was never rewritten: its counters survive.
      expect(await counters()).toBe(before);
    });

    it('an added service is served; the node-port jump stays the last rule of KUBE-SERVICES; removal deletes its chains', async () => {
      const withAdded = services([r], [view(added, [podEp(a)])]);
      expect((await be.sync({ state: withAdded, changed: new Set([added.name]) })).full).toBe(false);
      expect(tally(await c.probe(a.ns, '10.96.1.12', 80, { count: 3 }))).toEqual({ a: 3 });
      expect(tally(await c.probe(c.client, c.node(1).ip4, 30091, { count: 3 }))).toEqual({ a: 3 });
      const nat = await save('nat');
      const svcRules = rulesOf(nat, 'KUBE-SERVICES');
      expect(svcRules).toHaveLength(4);
      expect(svcRules.at(-1)).toContain('-j KUBE-NODEPORTS');
      expect(rulesOf(nat, 'KUBE-NODEPORTS')).toHaveLength(2);

      expect((await be.sync({ state: services([r]), changed: new Set([added.name]) })).full).toBe(false);
      const after = await save('nat');
      for (const ch of Object.values(serviceChains(added))) expect(after).not.toContain(ch);
      expect(rulesOf(after, 'KUBE-SERVICES')).toHaveLength(3);
      expect((await c.probe(c.client, c.node(1).ip4, 30091, { timeoutMs: 800 }))[0]?.result).not.toBe('ok');
    });

    it('a flushed nat table (canary gone) fails the partial restore, and the same sync rewrites everything', async () => {
      const entries = rulesOf(await save('nat'), 'KUBE-SERVICES');
      await nsMust(c.node(1).ns, `iptables-${flavour}`, ['-t', 'nat', '-F']);
      await nsMust(c.node(1).ns, `iptables-${flavour}`, ['-t', 'nat', '-X']);
      const res = await be.sync({ state: services([a]), changed: new Set([web.name]) });
      expect(res.full).toBe(true);
      expect(be.lastPartialFailure).toMatch(/restore/);
      // The same rules (in the full sync's order: sorted services, then the node-port jump).
      const now = rulesOf(await save('nat'), 'KUBE-SERVICES');
      expect([...now].sort()).toEqual([...entries].sort());
      expect(now.at(-1)).toContain('-j KUBE-NODEPORTS');
      expect(tally(await c.probe(a.ns, '10.96.1.10', 80, { count: 3 }))).toEqual({ a: 3 });
      expect(tally(await c.probe(a.ns, '10.96.1.11', 80, { count: 2 }))).toEqual({ a: 2 });
    });

    it('a restore the kernel refuses names the line, applies nothing of it, and the next sync is full', async () => {
      const bad = svcInfo('default', 'bad', { clusterIP: '10.96.1.300' });
      const before = await save('nat');
      const err = await be.sync({ state: services([a], [view(bad, [podEp(a)])]), changed: new Set([bad.name]) }).then(() => null, (e: Error) => e);
      // The partial restore failed, then the full one it fell back to: both refused the same line.
      expect(err?.message).toMatch(new RegExp(`^iptables-${flavour}-restore failed \\(exit \\d\\)`));
      expect(err?.message).toMatch(/\[line \d+: -A KUBE-S\S+ .*-d 10\.96\.1\.300\/32 .*\]$/);
      expect(await save('nat')).toBe(before);
      const res = await be.sync({ state: services([a]), changed: new Set([bad.name]) });
      expect(res.full).toBe(true);
      expect(tally(await c.probe(a.ns, '10.96.1.10', 80, { count: 2 }))).toEqual({ a: 2 });
    });
  });
}
