// The encoder against nft itself: the same table built once through podwire's
// netlink transaction and once by `nft -f` from text, in two namespaces;
// `nft -j list table` must print the two the same, object for object.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NftConnection,
  NftError,
  Transaction,
  concat,
  concatRegisters,
  ipv4,
  ipv6,
  loadAddr,
  loadPort,
  matchL4proto,
  matchNfproto,
  port,
  proto,
  u32host,
  verdict,
  type Expr,
  type Rule,
  type SetDef,
} from '../../src/netlink/nftables/index.js';
import { NetnsScope, netnsPath, nsMust, nsRun } from '../helpers/netns.js';

const scope = new NetnsScope('nft-oracle');
let viaNetlink = '';
let viaText = '';

const T = { family: 'inet', table: 'o' } as const;
const R1 = 1;

const TEXT = `
table inet o {
  comment "oracle table"
  set allowed { type ipv4_addr; comment "plain set"; elements = { 10.0.0.1, 10.0.0.2 comment "two" } }
  set nets { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 192.168.1.1-192.168.1.9 } }
  set aff { type ipv4_addr; flags dynamic,timeout; timeout 3h; }
  set tmo { type ipv4_addr . inet_service; flags timeout; elements = { 10.1.0.1 . 80 timeout 1h comment "x" } }
  set cc { type ipv4_addr . ipv4_addr; flags interval; elements = { 10.2.0.1 . 0.0.0.0-10.1.255.255, 10.2.0.1 . 10.3.0.0/16 } }
  map svc { type ipv4_addr . inet_proto . inet_service : verdict; elements = { 10.96.0.1 . tcp . 80 : goto svc-a, 10.96.0.2 . udp . 53 : jump svc-b } }
  map ep { type ipv4_addr . inet_service : ipv4_addr . inet_service; elements = { 10.96.0.1 . 80 : 10.1.0.5 . 8080 } }
  map m6 { type ipv6_addr : verdict; elements = { fd00::1 : accept } }
  chain svc-a {
    comment "service a"
    ip daddr 10.96.0.1 tcp dport 80 counter accept comment "svc a rule"
  }
  chain svc-b {
    return
  }
  chain filt {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    ip saddr != @allowed drop
    ip daddr @nets accept
    ip daddr . meta l4proto . th dport vmap @svc
    meta mark set 0x4000
    meta mark & 0x4000 == 0x4000 accept
    tcp dport 30000-32767 accept
    iifname "eth0" accept
    ip6 daddr fd00::1 udp dport 53 accept
    ip6 daddr vmap @m6
    fib daddr type local accept
    limit rate 10/second accept
    update @aff { ip saddr timeout 3h }
    meta l4proto tcp reject with tcp reset
    reject
    jump svc-a
    goto svc-b
  }
  chain pre {
    type nat hook prerouting priority -100; policy accept;
    ip daddr 10.96.0.1 tcp dport 80 dnat ip to 10.1.0.5:8080
    meta l4proto tcp dnat ip to ip daddr . tcp dport map @ep
    meta mark set numgen random mod 2
    ct mark set 0x1
  }
  chain post {
    type nat hook postrouting priority 100; policy accept;
    meta mark & 0x4000 == 0x4000 masquerade
    ip saddr . ip daddr @cc masquerade
  }
}
`;

const sets: Record<string, SetDef> = {
  allowed: { ...T, name: 'allowed', key: ['ipv4_addr'], comment: 'plain set' },
  nets: { ...T, name: 'nets', key: ['ipv4_addr'], interval: true },
  aff: { ...T, name: 'aff', key: ['ipv4_addr'], dynamic: true, timeout: true, timeoutMs: 3 * 3600_000 },
  tmo: { ...T, name: 'tmo', key: ['ipv4_addr', 'inet_service'], timeout: true },
  cc: { ...T, name: 'cc', key: ['ipv4_addr', 'ipv4_addr'], interval: true },
  svc: { ...T, name: 'svc', key: ['ipv4_addr', 'inet_proto', 'inet_service'], data: 'verdict' },
  ep: { ...T, name: 'ep', key: ['ipv4_addr', 'inet_service'], data: ['ipv4_addr', 'inet_service'] },
  m6: { ...T, name: 'm6', key: ['ipv6_addr'], data: 'verdict' },
};

const rule = (chain: string, exprs: Expr[], comment?: string): Rule => ({ ...T, chain, exprs, comment });
const ip4 = (field: 'saddr' | 'daddr', reg = R1) => [...matchNfproto('ip'), loadAddr('ip', field, reg)];
const mark = (v: number) => u32host(v);

function buildTransaction(): Transaction {
  const tx = new Transaction().addTable({ family: 'inet', name: 'o', comment: 'oracle table' });
  for (const s of Object.values(sets)) tx.addSet(s);
  tx.addChain({ ...T, name: 'svc-a', comment: 'service a' });
  tx.addChain({ ...T, name: 'svc-b' });
  tx.addChain({ ...T, name: 'filt', hook: { type: 'filter', hook: 'forward', priority: 0, policy: 'drop' } });
  tx.addChain({ ...T, name: 'pre', hook: { type: 'nat', hook: 'prerouting', priority: -100 } });
  tx.addChain({ ...T, name: 'post', hook: { type: 'nat', hook: 'postrouting', priority: 100 } });

  tx.addElements(sets.allowed!, [{ key: ipv4('10.0.0.1') }, { key: ipv4('10.0.0.2'), comment: 'two' }]);
  tx.addElements(sets.nets!, [
    { key: ipv4('10.0.0.0'), keyEnd: ipv4('10.255.255.255') },
    { key: ipv4('192.168.1.1'), keyEnd: ipv4('192.168.1.9') },
  ]);
  tx.addElements(sets.tmo!, [{ key: concat(ipv4('10.1.0.1'), port(80)), timeoutMs: 3600_000, comment: 'x' }]);
  tx.addElements(sets.cc!, [
    { key: concat(ipv4('10.2.0.1'), ipv4('0.0.0.0')), keyEnd: concat(ipv4('10.2.0.1'), ipv4('10.1.255.255')) },
    { key: concat(ipv4('10.2.0.1'), ipv4('10.3.0.0')), keyEnd: concat(ipv4('10.2.0.1'), ipv4('10.3.255.255')) },
  ]);
  tx.addElements(sets.svc!, [
    { key: concat(ipv4('10.96.0.1'), proto('tcp'), port(80)), data: { kind: 'goto', chain: 'svc-a' } },
    { key: concat(ipv4('10.96.0.2'), proto('udp'), port(53)), data: { kind: 'jump', chain: 'svc-b' } },
  ]);
  tx.addElements(sets.ep!, [{ key: concat(ipv4('10.96.0.1'), port(80)), data: concat(ipv4('10.1.0.5'), port(8080)) }]);
  tx.addElements(sets.m6!, [{ key: ipv6('fd00::1'), data: { kind: 'accept' } }]);

  tx.addRule(
    rule(
      'svc-a',
      [
        ...ip4('daddr'),
        { op: 'cmp', sreg: R1, cmp: 'eq', data: ipv4('10.96.0.1') },
        ...matchL4proto('tcp'),
        loadPort('dport', R1),
        { op: 'cmp', sreg: R1, cmp: 'eq', data: port(80) },
        { op: 'counter' },
        verdict({ kind: 'accept' }),
      ],
      'svc a rule',
    ),
  );
  tx.addRule(rule('svc-b', [verdict({ kind: 'return' })]));

  const f = (exprs: Expr[]) => tx.addRule(rule('filt', exprs));
  f([
    { op: 'ct', key: 'state', dreg: R1 },
    { op: 'bitwise', sreg: R1, dreg: R1, len: 4, mask: u32host(0x06), xor: u32host(0) },
    { op: 'cmp', sreg: R1, cmp: 'neq', data: u32host(0) },
    verdict({ kind: 'accept' }),
  ]);
  f([...ip4('saddr'), { op: 'lookup', set: 'allowed', sreg: R1, invert: true }, verdict({ kind: 'drop' })]);
  f([...ip4('daddr'), { op: 'lookup', set: 'nets', sreg: R1 }, verdict({ kind: 'accept' })]);
  const [a, b, c] = concatRegisters([4, 1, 2]);
  f([
    ...matchNfproto('ip'),
    loadAddr('ip', 'daddr', a!),
    { op: 'meta', key: 'l4proto', dreg: b! },
    loadPort('dport', c!),
    { op: 'lookup', set: 'svc', sreg: a!, dreg: 0 },
  ]);
  f([{ op: 'immediate', dreg: R1, data: mark(0x4000) }, { op: 'meta-set', key: 'mark', sreg: R1 }]);
  const markMatch: Expr[] = [
    { op: 'meta', key: 'mark', dreg: R1 },
    { op: 'bitwise', sreg: R1, dreg: R1, len: 4, mask: mark(0x4000), xor: mark(0) },
    { op: 'cmp', sreg: R1, cmp: 'eq', data: mark(0x4000) },
  ];
  f([...markMatch, verdict({ kind: 'accept' })]);
  f([...matchL4proto('tcp'), loadPort('dport', R1), { op: 'range', sreg: R1, from: port(30000), to: port(32767) }, verdict({ kind: 'accept' })]);
  const eth0 = Buffer.alloc(16);
  eth0.write('eth0');
  f([{ op: 'meta', key: 'iifname', dreg: R1 }, { op: 'cmp', sreg: R1, cmp: 'eq', data: eth0 }, verdict({ kind: 'accept' })]);
  f([
    ...matchNfproto('ip6'),
    loadAddr('ip6', 'daddr', R1),
    { op: 'cmp', sreg: R1, cmp: 'eq', data: ipv6('fd00::1') },
    ...matchL4proto('udp'),
    loadPort('dport', R1),
    { op: 'cmp', sreg: R1, cmp: 'eq', data: port(53) },
    verdict({ kind: 'accept' }),
  ]);
  f([...matchNfproto('ip6'), loadAddr('ip6', 'daddr', R1), { op: 'lookup', set: 'm6', sreg: R1, dreg: 0 }]);
  f([{ op: 'fib', flags: ['daddr'], result: 'type', dreg: R1 }, { op: 'cmp', sreg: R1, cmp: 'eq', data: u32host(2) }, verdict({ kind: 'accept' })]);
  f([{ op: 'limit', rate: 10, unit: 'second' }, verdict({ kind: 'accept' })]);
  f([...ip4('saddr'), { op: 'dynset', set: 'aff', dynop: 'update', sregKey: R1, timeoutMs: 3 * 3600_000 }]);
  f([...matchL4proto('tcp'), { op: 'reject', type: 'tcp-rst', code: 0 }]);
  f([{ op: 'reject', type: 'icmpx', code: 1 }]);
  f([verdict({ kind: 'jump', chain: 'svc-a' })]);
  f([verdict({ kind: 'goto', chain: 'svc-b' })]);

  const [ka, kp] = concatRegisters([4, 2]);
  tx.addRule(
    rule('pre', [
      ...ip4('daddr'),
      { op: 'cmp', sreg: R1, cmp: 'eq', data: ipv4('10.96.0.1') },
      ...matchL4proto('tcp'),
      loadPort('dport', R1),
      { op: 'cmp', sreg: R1, cmp: 'eq', data: port(80) },
      { op: 'immediate', dreg: 1, data: ipv4('10.1.0.5') },
      { op: 'immediate', dreg: 2, data: port(8080) },
      { op: 'nat', type: 'dnat', family: 'ip', addrMin: 1, protoMin: 2 },
    ]),
  );
  tx.addRule(
    rule('pre', [
      ...matchL4proto('tcp'),
      ...matchNfproto('ip'),
      loadAddr('ip', 'daddr', ka!),
      loadPort('dport', kp!),
      { op: 'lookup', set: 'ep', sreg: ka!, dreg: ka! },
      { op: 'nat', type: 'dnat', family: 'ip', addrMin: ka!, protoMin: kp! },
    ]),
  );
  tx.addRule(rule('pre', [{ op: 'numgen', dreg: R1, mod: 2, type: 'random' }, { op: 'meta-set', key: 'mark', sreg: R1 }]));
  tx.addRule(rule('pre', [{ op: 'immediate', dreg: R1, data: mark(1) }, { op: 'ct-set', key: 'mark', sreg: R1 }]));

  tx.addRule(rule('post', [...markMatch, { op: 'masq' }]));
  tx.addRule(rule('post', [...matchNfproto('ip'), loadAddr('ip', 'saddr', 1), loadAddr('ip', 'daddr', 9), { op: 'lookup', set: 'cc', sreg: 1 }, { op: 'masq' }]));
  return tx;
}

type Json = Record<string, unknown>;

/** nft's JSON listing without what differs between two equal tables (handles, timers). */
async function listing(ns: string): Promise<Json[]> {
  const out = JSON.parse(await nsMust(ns, 'nft', ['-j', 'list', 'table', 'inet', 'o'])) as { nftables: Json[] };
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v as Json)
          .filter(([k]) => k !== 'handle' && k !== 'expires')
          .map(([k, x]) => [k, strip(x)]),
      );
    }
    return v;
  };
  return out.nftables.filter((o) => !('metainfo' in o)).map((o) => strip(o) as Json);
}

beforeAll(async () => {
  await scope.cleanup();
  viaNetlink = await scope.create('nl');
  viaText = await scope.create('txt');
  await nsMust(viaText, 'nft', ['-f', '-'], { input: TEXT });
});
afterAll(() => scope.cleanup());

describe('nf_tables encoder vs nft', () => {
  it('builds every kind of object exactly as nft -f does', async () => {
    const conn = NftConnection.open(netnsPath(viaNetlink));
    try {
      conn.commit(buildTransaction());
    } finally {
      conn.close();
    }
    const [mine, theirs] = await Promise.all([listing(viaNetlink), listing(viaText)]);
    // Object by object, so a failure names the one that differs.
    expect(theirs.length).toBe(1 + 8 + 5 + 25);
    expect(mine.length).toBe(theirs.length);
    for (let i = 0; i < theirs.length; i++) expect(mine[i]).toEqual(theirs[i]);
  });

  it('applies nothing when one message fails, and names the object', async () => {
    const ns = await scope.create('fail');
    const conn = NftConnection.open(netnsPath(ns));
    try {
      const tx = new Transaction()
        .addTable({ family: 'ip', name: 'f' })
        .addChain({ family: 'ip', table: 'f', name: 'c' })
        .addRule({ family: 'ip', table: 'f', chain: 'c', exprs: [verdict({ kind: 'jump', chain: 'missing' })] });
      let err: unknown;
      try {
        conn.commit(tx);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NftError);
      expect((err as NftError).object).toBe('add rule ip f c');
      expect((err as NftError).code).toBe('ENOENT');
      expect((await nsRun(ns, 'nft', ['list', 'table', 'ip', 'f'])).code).not.toBe(0);
      // create fails on an existing table; add keeps it.
      conn.commit(new Transaction().addTable({ family: 'ip', name: 'f' }));
      expect(() => conn.commit(new Transaction().createTable({ family: 'ip', name: 'f' }))).toThrow(/create table ip f: EEXIST/);
      conn.commit(new Transaction().addTable({ family: 'ip', name: 'f' }));
      // delete-if-exists of what is not there is no error; plain delete is.
      conn.commit(new Transaction().deleteSet('ip', 'f', 'nope', { ifExists: true }));
      expect(() => conn.commit(new Transaction().deleteSet('ip', 'f', 'nope'))).toThrow(/delete set ip f nope: ENOENT/);
      conn.commit(new Transaction().deleteTable('ip', 'f'));
      expect((await nsRun(ns, 'nft', ['list', 'table', 'ip', 'f'])).code).not.toBe(0);
    } finally {
      conn.close();
    }
  });

  it('sends large element lists in several messages of one batch', async () => {
    const ns = await scope.create('big');
    const conn = NftConnection.open(netnsPath(ns));
    try {
      const m: SetDef = { family: 'ip', table: 'b', name: 'm', key: ['ipv4_addr', 'inet_service'], data: ['ipv4_addr', 'inet_service'] };
      const els = Array.from({ length: 20_000 }, (_, i) => ({
        key: concat(ipv4(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), port(80)),
        data: concat(ipv4(`10.200.${(i >> 8) & 255}.${i & 255}`), port(8080)),
      }));
      const t0 = performance.now();
      conn.commit(new Transaction().addTable({ family: 'ip', name: 'b' }).addSet(m).addElements(m, els));
      console.log(`20k map elements in one transaction: ${(performance.now() - t0).toFixed(1)} ms`);
      const listed = await nsMust(ns, 'nft', ['list', 'map', 'ip', 'b', 'm']);
      expect(listed.match(/ : 10\.200\./g)?.length).toBe(20_000);
    } finally {
      conn.close();
    }
  });
});
