// What the backend sends to iptables-restore: full vs partial syncs, stale chains, jumps, failures.
import { describe, expect, it } from 'vitest';
import { IptablesBackend, type IptablesTool } from '../../src/proxy/iptables/index.js';
import { endpointChain, serviceChains } from '../../src/proxy/iptables/names.js';
import { config, ep, state, svcInfo, view } from '../helpers/model.js';

/** Records restores; save() answers with what a node held before (a canned iptables-save). */
class RecordingTool implements IptablesTool {
  readonly flavour = 'nft' as const;
  readonly family = 4 as const;
  restores: string[] = [];
  failNext = false;
  constructor(public saved = '') {}
  async restore(chunks: string | Iterable<string>) {
    const text = typeof chunks === 'string' ? chunks : [...chunks].join('');
    this.restores.push(text);
    if (this.failNext) {
      this.failNext = false;
      throw new Error('iptables-nft-restore failed (exit 1): boom');
    }
  }
  async save() {
    return this.saved;
  }
  async saveLines(table: string, onLine: (line: string) => void) {
    // As iptables-save -t: only that table's block.
    let inside = false;
    for (const l of this.saved.split('\n')) {
      if (l.startsWith('*')) inside = l === `*${table}`;
      if (inside) onLine(l);
      if (l === 'COMMIT') inside = false;
    }
  }
  async check() {
    return 0;
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
    const be = new IptablesBackend(config(), { tool });
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

  it('partial sync: the changed service\'s own chains, no shared chain declared, stale SEP deleted, canaries checked', async () => {
    const tool = new RecordingTool();
    const be = new IptablesBackend(config(), { tool });
    await be.sync({ state: both(), changed: null });
    const res = await be.sync({ state: both([ep('10.244.1.4')]), changed: new Set([b.name]) });
    expect(res.full).toBe(false);
    expect(tool.restores).toHaveLength(2);
    const l = tool.last();
    expect(l.some((x) => x.includes(serviceChains(a).svc) || x.includes('ns1/a'))).toBe(false);
    // Its entry in KUBE-SERVICES did not change (same chain): no -D/-I, and no shared chain is flushed.
    expect(l.some((x) => /^[-:](D|I|A)? ?KUBE-SERVICES/.test(x) || x.startsWith(':KUBE-SERVICES') || x.startsWith(':KUBE-NODEPORTS'))).toBe(false);
    expect(l).toContain(`:${serviceChains(b).svc} - [0:0]`);
    expect(l).toContain(`:${endpointChain(b, ep('10.244.1.4'))} - [0:0]`);
    expect(l).toContain(`-X ${endpointChain(b, ep('10.244.1.3'))}`);
    expect(l.filter((x) => x === '-F KUBE-PROXY-CANARY')).toHaveLength(3);
    expect(l.filter((x) => x.startsWith('*'))).toEqual(['*nat', '*filter', '*mangle']);
    expect(l.filter((x) => x.startsWith('-A ') || x.startsWith(':')).length).toBeLessThan(8);
  });

  it('partial sync: a service losing its endpoints moves from nat (-D) to a filter REJECT (-A), and back (-I 1)', async () => {
    const tool = new RecordingTool();
    const be = new IptablesBackend(config(), { tool });
    await be.sync({ state: both(), changed: null });
    const entry = `KUBE-SERVICES -m comment --comment "ns1/b:p80 cluster IP" -m tcp -p tcp -d 10.96.0.11/32 --dport 80 -j ${serviceChains(b).svc}`;
    const reject = 'KUBE-SERVICES -m comment --comment "ns1/b:p80 cluster IP has no endpoints" -m tcp -p tcp -d 10.96.0.11/32 --dport 80 -j REJECT';
    await be.sync({ state: both([]), changed: new Set([b.name]) });
    let l = tool.last();
    expect(l).toContain(`-D ${entry}`);
    expect(l).toContain(`-X ${serviceChains(b).svc}`);
    expect(l.indexOf(`-D ${entry}`)).toBeLessThan(l.indexOf(`-X ${serviceChains(b).svc}`));
    expect(l.slice(l.indexOf('*filter'))).toContain(`-A ${reject}`);
    await be.sync({ state: both(), changed: new Set([b.name]) });
    l = tool.last();
    // Inserted at the top, so the node-port jump stays the last rule of KUBE-SERVICES.
    expect(l).toContain(`-I KUBE-SERVICES 1${entry.slice('KUBE-SERVICES'.length)}`);
    expect(l.slice(l.indexOf('*filter'))).toContain(`-D ${reject}`);
    expect(l).toContain(`:${serviceChains(b).svc} - [0:0]`);
  });

  it('a removed service\'s chains and entries are deleted by the partial sync', async () => {
    const tool = new RecordingTool();
    const be = new IptablesBackend(config(), { tool });
    await be.sync({ state: both(), changed: null });
    const res = await be.sync({ state: state([view(a, [ep('10.244.1.2')])]), changed: new Set([b.name]) });
    const l = tool.last();
    expect(l).toContain(`-X ${serviceChains(b).svc}`);
    expect(l).toContain(`-X ${endpointChain(b, ep('10.244.1.3'))}`);
    expect(l.filter((x) => x.includes('ns1/b'))).toEqual([expect.stringMatching(/^-D KUBE-SERVICES .*ns1\/b:p80 cluster IP/)]);
    expect(res.counts?.['nat chains']).toBe(4 + 2);
  });

  it('a failed restore makes the next sync full; a failed partial restore (canary gone) falls back to a full one at once', async () => {
    const tool = new RecordingTool();
    const be = new IptablesBackend(config(), { tool });
    await be.sync({ state: both(), changed: null });
    tool.failNext = true;
    const fallback = await be.sync({ state: both([ep('10.244.1.9')]), changed: new Set([b.name]) });
    expect(fallback.full).toBe(true);
    expect(be.lastPartialFailure).toMatch(/boom/);
    expect(tool.restores).toHaveLength(3);
    expect(tool.last()).toContain(`:${endpointChain(b, ep('10.244.1.9'))} - [0:0]`);
    // A full sync that fails is reported; the next sync is full whatever it asks for.
    tool.failNext = true;
    await expect(be.sync({ state: both(), changed: null })).rejects.toThrow(/boom/);
    expect((await be.sync({ state: both(), changed: new Set([a.name]) })).full).toBe(true);
  });

  it('nft flavour, many services: own chains in batches first, then one restore switching the entry points', async () => {
    const tool = new RecordingTool();
    const be = new IptablesBackend(config(), { tool, nftBatchServices: 1 });
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
