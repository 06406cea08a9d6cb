// What the backend sends to iptables-restore: full vs partial syncs, stale chains, jumps, failures.
import { describe, expect, it } from 'vitest';
import { IptablesBackend, type IptablesTool } from '../../src/proxy/iptables/index.js';
import { endpointChain, serviceChains } from '../../src/proxy/iptables/names.js';
import { config, ep, state, svcInfo, view } from './iptables-fixtures.js';

/** Records restores; save() answers with what a node held before (a canned iptables-save). */
class RecordingTool implements IptablesTool {
  readonly flavour = 'nft' as const;
  readonly family = 4 as const;
  restores: string[] = [];
  failNext = false;
  canary = 0;
  constructor(public saved = '') {}
  async restore(chunks: string | readonly string[]) {
    const text = typeof chunks === 'string' ? chunks : chunks.join('');
    if (this.failNext) {
      this.failNext = false;
      throw new Error('iptables-nft-restore failed (exit 1): boom');
    }
    this.restores.push(text);
  }
  async save() {
    return this.saved;
  }
  async check() {
    return this.canary;
  }
  last(): string[] {
    return this.restores.at(-1)!.split('\n');
  }
}

const a = svcInfo('ns1', 'a', { clusterIP: '10.96.0.10' });
const b = svcInfo('ns1', 'b', { clusterIP: '10.96.0.11' });
const both = (bEps = [ep('10.244.1.3')]) => state([view(a, [ep('10.244.1.2')]), view(b, bEps)]);

describe('IptablesBackend restore text', () => {
  it('full sync: every chain, jumps from built-in chains, canaries, one restore', async () => {
    const tool = new RecordingTool();
    const be = new IptablesBackend(config(), { tool, canaryIntervalMs: 0 });
    const res = await be.sync({ state: both(), changed: null });
    expect(res.full).toBe(true);
    expect(tool.restores).toHaveLength(1);
    const l = tool.last();
    expect(l).toContain(`:${serviceChains(a).svc} - [0:0]`);
    expect(l).toContain(`:${serviceChains(b).svc} - [0:0]`);
    expect(l).toContain('-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
    expect(l.filter((x) => x === ':KUBE-PROXY-CANARY - [0:0]')).toHaveLength(3);
    expect(l.filter((x) => x.startsWith('*'))).toEqual(['*nat', '*filter', '*mangle']);
    expect(res.counts?.['nat rules']).toBeGreaterThan(0);
  });

  it('full sync keeps jumps that exist and deletes per-service chains nobody wants', async () => {
    const saved = ['*nat', ':PREROUTING ACCEPT [0:0]', ':KUBE-SVC-OLDOLDOLDOLDOLD0 - [0:0]', ':OTHER - [0:0]',
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES', 'COMMIT'].join('\n');
    const tool = new RecordingTool(saved);
    await new IptablesBackend(config(), { tool }).sync({ state: both(), changed: null });
    const l = tool.last();
    expect(l.some((x) => x.startsWith('-I PREROUTING'))).toBe(false);
    expect(l.some((x) => x.startsWith('-I OUTPUT'))).toBe(true);
    expect(l).toContain('-X KUBE-SVC-OLDOLDOLDOLDOLD0');
    expect(l.some((x) => x.includes('OTHER'))).toBe(false);
  });

  it('partial sync: shared chains whole, only the changed service\'s own chains, stale SEP deleted', async () => {
    const tool = new RecordingTool();
    const be = new IptablesBackend(config(), { tool, canaryIntervalMs: 0 });
    await be.sync({ state: both(), changed: null });
    const res = await be.sync({ state: both([ep('10.244.1.4')]), changed: new Set([b.name]) });
    expect(res.full).toBe(false);
    const l = tool.last();
    expect(l.some((x) => x.includes(serviceChains(a).svc) && !x.startsWith('-A KUBE-SERVICES'))).toBe(false);
    expect(l).toContain(`-A KUBE-SERVICES -m comment --comment "ns1/a:p80 cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j ${serviceChains(a).svc}`);
    expect(l).toContain(`:${endpointChain(b, ep('10.244.1.4'))} - [0:0]`);
    expect(l).toContain(`-X ${endpointChain(b, ep('10.244.1.3'))}`);
    expect(l.some((x) => x.startsWith('-I '))).toBe(false);
    expect(l).not.toContain('*mangle');
  });

  it('a removed service\'s chains are deleted by the partial sync', async () => {
    const tool = new RecordingTool();
    const be = new IptablesBackend(config(), { tool, canaryIntervalMs: 0 });
    await be.sync({ state: both(), changed: null });
    await be.sync({ state: state([view(a, [ep('10.244.1.2')])]), changed: new Set([b.name]) });
    const l = tool.last();
    expect(l).toContain(`-X ${serviceChains(b).svc}`);
    expect(l).toContain(`-X ${endpointChain(b, ep('10.244.1.3'))}`);
    expect(l.some((x) => x.includes('ns1/b'))).toBe(false);
  });

  it('after a failed restore, or with the canary gone, the next sync is full', async () => {
    const tool = new RecordingTool();
    const be = new IptablesBackend(config(), { tool, canaryIntervalMs: 0 });
    await be.sync({ state: both(), changed: null });
    tool.failNext = true;
    await expect(be.sync({ state: both(), changed: new Set([a.name]) })).rejects.toThrow(/boom/);
    expect((await be.sync({ state: both(), changed: new Set([a.name]) })).full).toBe(true);
    tool.canary = 1;
    expect((await be.sync({ state: both(), changed: new Set([a.name]) })).full).toBe(true);
  });

  it('nft flavour, many services: own chains in batches first, then one restore switching the entry points', async () => {
    const tool = new RecordingTool();
    const be = new IptablesBackend(config(), { tool, canaryIntervalMs: 0, nftBatchServices: 1 });
    await be.sync({ state: both(), changed: null });
    expect(tool.restores).toHaveLength(3);
    const [b1, b2, last] = tool.restores.map((t) => t.split('\n'));
    expect(b1).toContain(`:${serviceChains(a).svc} - [0:0]`);
    expect(b1!.some((x) => x.startsWith('-A KUBE-SERVICES'))).toBe(false);
    expect(b2).toContain(`:${serviceChains(b).svc} - [0:0]`);
    // The last restore must not declare (flush) the chains the batches just filled.
    expect(last!.some((x) => x.startsWith(':KUBE-SVC-') || x.startsWith(':KUBE-SEP-'))).toBe(false);
    expect(last!.filter((x) => x.startsWith('-A KUBE-SERVICES') && x.includes('cluster IP'))).toHaveLength(2);
  });
});
