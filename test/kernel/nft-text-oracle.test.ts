// Transport A (nft -f text) as the oracle of transport B (the netlink batch):
// the same Transaction applied through both, in two fresh namespaces, must
// list the same (`nft -j list table`, handles removed), for every kind of
// object and expression podwire uses, and for whole proxy layouts through
// full and partial syncs.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NftConnection,
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
  type Family,
  type Rule,
  type SetDef,
} from '../../src/netlink/nftables/index.js';
import { SetCatalog, transactionText } from '../../src/netlink/nftables/text.js';
import { masqRule } from '../../src/cni/masquerade.js';
import { createNftablesBackend } from '../../src/proxy/nftables/index.js';
import { NftCommandError, NftTextTransport } from '../../src/proxy/nftables/transport.js';
import type { ProxyBackend, ServiceView } from '../../src/proxy/model.js';
import { NetnsScope, netnsPath, nsMust, nsRun } from '../helpers/netns.js';
import { config, ep, state, svcInfo, view } from '../helpers/model.js';

const scope = new NetnsScope('nfttext');
const R1 = 1;

type Json = Record<string, unknown>;

/** nft's JSON listing of one table without handles and timers. */
async function listing(ns: string, family: Family, table: string): Promise<string[]> {
  const out = JSON.parse(await nsMust(ns, 'nft', ['-j', 'list', 'table', family, table])) as { nftables: Json[] };
  return out.nftables.filter((o) => !('metainfo' in o)).map((o) => JSON.stringify(o, (k, v: unknown) => (k === 'handle' || k === 'expires' ? undefined : v)));
}

function applyNetlink(ns: string, tx: Transaction): void {
  const c = NftConnection.open(netnsPath(ns));
  try {
    c.commit(tx);
  } finally {
    c.close();
  }
}

async function applyText(ns: string, text: string): Promise<void> {
  const r = await nsRun(ns, 'nft', ['-f', '-'], { input: text });
  if (r.code !== 0) throw new Error(`nft -f failed: ${r.stderr}\n--- script ---\n${text}`);
}

/** Both listings, compared object by object so a failure names the object. */
async function expectSame(nl: string, txt: string, family: Family, table: string, atLeast: number): Promise<void> {
  const [a, b] = await Promise.all([listing(nl, family, table), listing(txt, family, table)]);
  expect(a.length).toBeGreaterThanOrEqual(atLeast);
  for (let i = 0; i < Math.max(a.length, b.length); i++) expect(a[i], `object ${i} of ${family} ${table}`).toBe(b[i]);
}

// ---- every kind of object, in an ip, an ip6 and an inet table ----

const T4 = { family: 'ip', table: 'o4' } as const;
const T6 = { family: 'ip6', table: 'o6' } as const;
const TI = { family: 'inet', table: 'oi' } as const;

const S = {
  plain: { ...T4, name: 'plain', key: ['ipv4_addr'], comment: 'plain set' },
  nets: { ...T4, name: 'nets', key: ['ipv4_addr'], interval: true },
  ports: { ...T4, name: 'ports', key: ['inet_service'], interval: true },
  aff: { ...T4, name: 'aff', key: ['ipv4_addr'], dynamic: true, timeout: true, timeoutMs: 10_800_000, size: 65535 },
  tmo: { ...T4, name: 'tmo', key: ['ipv4_addr', 'inet_service'], timeout: true },
  fw: { ...T4, name: 'fw', key: ['ipv4_addr', 'inet_proto', 'inet_service', 'ipv4_addr'], interval: true },
  svc: { ...T4, name: 'svc', key: ['ipv4_addr', 'inet_proto', 'inet_service'], data: 'verdict' },
  np: { ...T4, name: 'np', key: ['inet_proto', 'inet_service'], data: 'verdict' },
  eps: { ...T4, name: 'eps', key: ['mark'], data: ['ipv4_addr', 'inet_service'] },
  one: { ...T4, name: 'one', key: ['mark'], data: ['ipv4_addr'] },
  slots: { ...T4, name: 'slots', key: ['mark'], data: 'verdict' },
  hair: { ...T4, name: 'hair', key: ['ipv4_addr', 'ipv4_addr'] },
  fwips: { ...T4, name: 'fwips', key: ['ipv4_addr', 'inet_proto', 'inet_service'] },
  gone: { ...T4, name: 'gone', key: ['inet_service'] },
  nets6: { ...T6, name: 'nets6', key: ['ipv6_addr'], interval: true },
  svc6: { ...T6, name: 'svc6', key: ['ipv6_addr', 'inet_proto', 'inet_service'], data: 'verdict' },
  eps6: { ...T6, name: 'eps6', key: ['mark'], data: ['ipv6_addr', 'inet_service'] },
  pods4: { ...TI, name: 'n1-pods4', key: ['ipv4_addr'] },
  local4: { ...TI, name: 'n1-local4', key: ['ipv4_addr'], interval: true },
  pods6: { ...TI, name: 'n1-pods6', key: ['ipv6_addr'] },
  local6: { ...TI, name: 'n1-local6', key: ['ipv6_addr'], interval: true },
} satisfies Record<string, SetDef>;

const masqMark = (): Expr[] => [
  { op: 'meta', key: 'mark', dreg: R1 },
  { op: 'bitwise', sreg: R1, dreg: R1, len: 4, mask: u32host(~0x4000 >>> 0), xor: u32host(0x4000) },
  { op: 'meta-set', key: 'mark', sreg: R1 },
];

function everything(): Transaction {
  const tx = new Transaction();
  const r = (t: { family: Family; table: string }, chain: string, exprs: Expr[], comment?: string): Rule => ({ ...t, chain, exprs, comment });
  // ip
  tx.addTable({ family: 'ip', name: 'o4', comment: 'oracle table' });
  for (const s of Object.values(S).filter((x) => x.family === 'ip')) tx.addSet(s);
  tx.addChain({ ...T4, name: 'svc-1', comment: 'service one' }).addChain({ ...T4, name: 'to-ep' }).addChain({ ...T4, name: 'ep-a' }).addChain({ ...T4, name: 'stale' });
  tx.addChain({ ...T4, name: 'pre', hook: { type: 'nat', hook: 'prerouting', priority: -100 } });
  tx.addChain({ ...T4, name: 'post', hook: { type: 'nat', hook: 'postrouting', priority: 100 } });
  tx.addChain({ ...T4, name: 'fwd-f', hook: { type: 'filter', hook: 'forward', priority: -10, policy: 'drop' } });
  tx.addChain({ ...T4, name: 'in', hook: { type: 'filter', hook: 'input', priority: 0, policy: 'accept' }, comment: 'input hook' });
  const [a, p, d, s2] = concatRegisters([4, 1, 2, 4]);
  const dispatch = (): Expr[] => [loadAddr('ip', 'daddr', a!), { op: 'meta', key: 'l4proto', dreg: p! }, loadPort('dport', d!)];
  tx.addRule(r(T4, 'pre', [verdict({ kind: 'jump', chain: 'svc-1' })]));
  tx.addRule(r(T4, 'pre', [...dispatch(), { op: 'lookup', set: 'fwips', sreg: R1 }, ...dispatch(), loadAddr('ip', 'saddr', s2!), { op: 'lookup', set: 'fw', sreg: R1, invert: true }, verdict({ kind: 'drop' })], 'firewall'));
  tx.addRule(r(T4, 'pre', [...dispatch(), { op: 'lookup', set: 'svc', sreg: R1, dreg: 0 }]));
  const loop: [Buffer, Buffer] = [ipv4('127.0.0.0'), ipv4('127.255.255.255')];
  tx.addRule(r(T4, 'pre', [
    { op: 'fib', flags: ['daddr'], result: 'type', dreg: R1 },
    { op: 'cmp', sreg: R1, cmp: 'eq', data: u32host(2) },
    loadAddr('ip', 'daddr', R1),
    { op: 'range', sreg: R1, neq: true, from: loop[0], to: loop[1] },
    { op: 'meta', key: 'l4proto', dreg: concatRegisters([1, 2])[0]! },
    loadPort('dport', concatRegisters([1, 2])[1]!),
    { op: 'lookup', set: 'np', sreg: R1, dreg: 0 },
  ]));
  tx.addRule(r(T4, 'svc-1', [loadAddr('ip', 'saddr', R1), { op: 'lookup', set: 'nets', sreg: R1, invert: true }, ...masqMark()]));
  tx.addRule(r(T4, 'svc-1', [loadAddr('ip', 'saddr', R1), { op: 'lookup', set: 'aff', sreg: R1 }, verdict({ kind: 'goto', chain: 'ep-a' })]));
  tx.addRule(r(T4, 'svc-1', [{ op: 'numgen', dreg: R1, mod: 3, type: 'random', offset: 8192 }, { op: 'ct-set', key: 'mark', sreg: R1 }, verdict({ kind: 'goto', chain: 'to-ep' })], 'spread'));
  tx.addRule(r(T4, 'svc-1', [{ op: 'numgen', dreg: R1, mod: 2, type: 'inc' }, { op: 'ct-set', key: 'mark', sreg: R1 }]));
  tx.addRule(r(T4, 'svc-1', [{ op: 'ct', key: 'mark', dreg: R1 }, { op: 'lookup', set: 'slots', sreg: R1, dreg: 0 }]));
  for (const l4 of ['tcp', 'udp', 'sctp'] as const) {
    tx.addRule(r(T4, 'to-ep', [...matchL4proto(l4), { op: 'ct', key: 'mark', dreg: R1 }, { op: 'lookup', set: 'eps', sreg: R1, dreg: R1 }, { op: 'nat', type: 'dnat', family: 'ip', addrMin: R1, protoMin: 9 }]));
  }
  tx.addRule(r(T4, 'to-ep', [{ op: 'ct', key: 'mark', dreg: R1 }, { op: 'lookup', set: 'one', sreg: R1, dreg: R1 }, { op: 'nat', type: 'dnat', family: 'ip', addrMin: R1 }]));
  tx.addRule(r(T4, 'ep-a', [
    ...matchL4proto('tcp'),
    loadAddr('ip', 'saddr', R1),
    { op: 'dynset', set: 'aff', dynop: 'update', sregKey: R1 },
    { op: 'immediate', dreg: R1, data: ipv4('10.1.0.5') },
    { op: 'immediate', dreg: 2, data: port(8080) },
    { op: 'nat', type: 'dnat', family: 'ip', addrMin: R1, protoMin: 2 },
  ]));
  tx.addRule(r(T4, 'ep-a', [loadAddr('ip', 'saddr', R1), { op: 'dynset', set: 'aff', dynop: 'add', sregKey: R1, timeoutMs: 60_000 }, { op: 'immediate', dreg: R1, data: ipv4('10.1.0.6') }, { op: 'nat', type: 'dnat', family: 'ip', addrMin: R1, flags: 1 << 3 }]));
  tx.addRule(r(T4, 'stale', [verdict({ kind: 'return' })]));
  const markIs = (v: number): Expr[] => [
    { op: 'meta', key: 'mark', dreg: R1 },
    { op: 'bitwise', sreg: R1, dreg: R1, len: 4, mask: u32host(0x4000), xor: u32host(0) },
    { op: 'cmp', sreg: R1, cmp: 'eq', data: u32host(v) },
  ];
  tx.addRule(r(T4, 'post', [loadAddr('ip', 'saddr', a!), loadAddr('ip', 'daddr', concatRegisters([4, 4])[1]!), { op: 'lookup', set: 'hair', sreg: R1 }, { op: 'masq' }], 'hairpin'));
  tx.addRule(r(T4, 'post', [...markIs(0), verdict({ kind: 'return' })]));
  tx.addRule(r(T4, 'post', [
    { op: 'meta', key: 'mark', dreg: R1 },
    { op: 'bitwise', sreg: R1, dreg: R1, len: 4, mask: u32host(0xffffffff), xor: u32host(0x4000) },
    { op: 'meta-set', key: 'mark', sreg: R1 },
    { op: 'masq', flags: 1 << 4 },
  ]));
  tx.addRule(r(T4, 'fwd-f', [
    { op: 'ct', key: 'state', dreg: R1 },
    { op: 'bitwise', sreg: R1, dreg: R1, len: 4, mask: u32host(0x06), xor: u32host(0) },
    { op: 'cmp', sreg: R1, cmp: 'neq', data: u32host(0) },
    { op: 'counter' },
    verdict({ kind: 'accept' }),
  ]));
  const eth0 = Buffer.alloc(16);
  eth0.write('eth0');
  tx.addRule(r(T4, 'fwd-f', [{ op: 'meta', key: 'iifname', dreg: R1 }, { op: 'cmp', sreg: R1, cmp: 'neq', data: eth0 }, loadAddr('ip', 'daddr', R1), { op: 'cmp', sreg: R1, cmp: 'eq', data: ipv4('10.0.0.1') }, verdict({ kind: 'continue' })]));
  tx.addRule(r(T4, 'fwd-f', [...matchL4proto('tcp'), loadPort('dport', R1), { op: 'lookup', set: 'ports', sreg: R1 }, { op: 'limit', rate: 10, unit: 'second' }, verdict({ kind: 'accept' })]));
  tx.addRule(r(T4, 'fwd-f', [...matchL4proto('tcp'), loadPort('dport', R1), { op: 'cmp', sreg: R1, cmp: 'gte', data: port(1024) }, { op: 'reject', type: 'tcp-rst', code: 0 }]));
  tx.addRule(r(T4, 'fwd-f', [...dispatch(), { op: 'lookup', set: 'fwips', sreg: R1 }, { op: 'reject', type: 'icmp', code: 3 }]));
  tx.addRule(r(T4, 'fwd-f', [{ op: 'meta', key: 'mark', dreg: R1 }, { op: 'cmp', sreg: R1, cmp: 'eq', data: u32host(7) }, { op: 'reject', type: 'icmp', code: 13 }]));
  tx.addRule(r(T4, 'in', [{ op: 'immediate', dreg: R1, data: u32host(0x4000) }, { op: 'meta-set', key: 'mark', sreg: R1 }, { op: 'limit', rate: 5, unit: 'minute', burst: 10, invert: true }, verdict({ kind: 'drop' })]));
  tx.addElements(S.plain, [{ key: ipv4('10.0.0.1') }, { key: ipv4('10.0.0.2'), comment: 'two' }]);
  tx.addElements(S.nets, [{ key: ipv4('10.244.0.0'), keyEnd: ipv4('10.244.255.255') }, { key: ipv4('192.168.1.1'), keyEnd: ipv4('192.168.1.9') }, { key: ipv4('172.16.0.1') }]);
  tx.addElements(S.ports, [{ key: port(30000), keyEnd: port(32767) }, { key: port(80) }]);
  tx.addElements(S.tmo, [{ key: concat(ipv4('10.1.0.1'), port(80)), timeoutMs: 3_600_000, comment: 'an hour' }, { key: concat(ipv4('10.1.0.2'), port(80)), timeoutMs: 1500 }]);
  tx.addElements(S.fw, [
    { key: concat(ipv4('203.0.113.9'), proto('tcp'), port(80), ipv4('192.0.2.0')), keyEnd: concat(ipv4('203.0.113.9'), proto('tcp'), port(80), ipv4('192.0.2.255')) },
    { key: concat(ipv4('203.0.113.9'), proto('tcp'), port(80), ipv4('198.51.100.7')), keyEnd: concat(ipv4('203.0.113.9'), proto('tcp'), port(80), ipv4('198.51.100.7')) },
  ]);
  tx.addElements(S.svc, [
    { key: concat(ipv4('10.96.0.1'), proto('tcp'), port(80)), data: { kind: 'goto', chain: 'svc-1' } },
    { key: concat(ipv4('10.96.0.2'), proto('udp'), port(53)), data: { kind: 'jump', chain: 'stale' }, comment: 'dns' },
    { key: concat(ipv4('10.96.0.3'), proto('sctp'), port(9)), data: { kind: 'drop' } },
  ]);
  tx.addElements(S.np, [{ key: concat(proto('tcp'), port(30080)), data: { kind: 'goto', chain: 'svc-1' } }]);
  tx.addElements(S.eps, [8192, 8193, 8194].map((slot, i) => ({ key: u32host(slot), data: concat(ipv4(`10.1.0.${5 + i}`), port(8080)) })));
  tx.addElements(S.one, [{ key: u32host(1), data: ipv4('10.1.0.9') }]);
  tx.addElements(S.slots, [{ key: u32host(0), data: { kind: 'goto', chain: 'ep-a' } }, { key: u32host(1), data: { kind: 'return' } }]);
  tx.addElements(S.hair, [{ key: concat(ipv4('10.1.0.5'), ipv4('10.1.0.5')) }]);
  tx.addElements(S.gone, [{ key: port(1) }]);
  tx.addElements(S.fwips, [{ key: concat(ipv4('203.0.113.9'), proto('tcp'), port(80)) }]);
  // ip6
  tx.addTable({ family: 'ip6', name: 'o6' });
  for (const s of [S.nets6, S.svc6, S.eps6]) tx.addSet(s);
  tx.addChain({ ...T6, name: 'svc-2' }).addChain({ ...T6, name: 'pre6', hook: { type: 'nat', hook: 'output', priority: -100 } });
  tx.addChain({ ...T6, name: 'flt6', hook: { type: 'filter', hook: 'output', priority: -10 } });
  const [a6, p6, d6] = concatRegisters([16, 1, 2]);
  tx.addRule(r(T6, 'pre6', [loadAddr('ip6', 'daddr', a6!), { op: 'meta', key: 'l4proto', dreg: p6! }, loadPort('dport', d6!), { op: 'lookup', set: 'svc6', sreg: R1, dreg: 0 }]));
  tx.addRule(r(T6, 'svc-2', [loadAddr('ip6', 'saddr', R1), { op: 'lookup', set: 'nets6', sreg: R1, invert: true }, ...masqMark()]));
  tx.addRule(r(T6, 'svc-2', [...matchL4proto('tcp'), { op: 'ct', key: 'mark', dreg: R1 }, { op: 'lookup', set: 'eps6', sreg: R1, dreg: R1 }, { op: 'nat', type: 'dnat', family: 'ip6', addrMin: R1, protoMin: 12 }]));
  tx.addRule(r(T6, 'svc-2', [...matchL4proto('udp'), { op: 'immediate', dreg: R1, data: ipv6('fd00::5') }, { op: 'immediate', dreg: 2, data: port(53) }, { op: 'nat', type: 'dnat', family: 'ip6', addrMin: R1, protoMin: 2 }]));
  const loop6 = ipv6('::1');
  tx.addRule(r(T6, 'flt6', [loadAddr('ip6', 'daddr', R1), { op: 'range', sreg: R1, neq: true, from: loop6, to: loop6 }, loadAddr('ip6', 'daddr', R1), { op: 'cmp', sreg: R1, cmp: 'eq', data: ipv6('fd00::1') }, { op: 'reject', type: 'icmp', code: 4 }]));
  tx.addElements(S.nets6, [{ key: ipv6('fd00::'), keyEnd: ipv6('fd00::ffff:ffff:ffff:ffff') }, { key: ipv6('2001:db8::1'), keyEnd: ipv6('2001:db8::9') }]);
  tx.addElements(S.svc6, [{ key: concat(ipv6('fd00:96::1'), proto('tcp'), port(443)), data: { kind: 'goto', chain: 'svc-2' } }]);
  tx.addElements(S.eps6, [{ key: u32host(1), data: concat(ipv6('fd00:1::5'), port(8443)) }]);
  // inet: the CNI's masquerade rule (nfproto dependencies), created exclusively
  tx.addTable({ family: 'inet', name: 'oi' });
  for (const s of [S.pods4, S.local4, S.pods6, S.local6]) tx.addSet(s);
  tx.createChain({ ...TI, name: 'n1-postrouting', hook: { type: 'nat', hook: 'postrouting', priority: 100 }, comment: 'podwire ipMasq for network n1' });
  tx.addRule({ ...masqRule('n1', 4), table: 'oi' }).addRule({ ...masqRule('n1', 6), table: 'oi' });
  tx.addChain({ ...TI, name: 'flt', hook: { type: 'filter', hook: 'forward', priority: 0 } });
  tx.addRule(r(TI, 'flt', [...matchNfproto('ip'), loadAddr('ip', 'saddr', R1), { op: 'cmp', sreg: R1, cmp: 'eq', data: ipv4('10.22.0.9') }, { op: 'reject', type: 'icmp', code: 1 }]));
  tx.addRule(r(TI, 'flt', [{ op: 'reject', type: 'icmpx', code: 1 }]));
  tx.addElements(S.pods4, [{ key: ipv4('10.22.0.5'), comment: 'c1/eth0' }], { exclusive: true });
  tx.addElements(S.local4, [{ key: ipv4('10.22.0.0'), keyEnd: ipv4('10.22.0.255') }]);
  tx.addElements(S.pods6, [{ key: ipv6('fd22::5'), comment: 'c1/eth0' }]);
  return tx;
}

/** A delta on the same tables: element changes, a chain rebuilt, a chain and a set removed. */
function delta(): Transaction {
  const tx = new Transaction();
  tx.deleteElements(S.svc, [{ key: concat(ipv4('10.96.0.2'), proto('udp'), port(53)) }]);
  tx.deleteElements(S.nets, [{ key: ipv4('192.168.1.1'), keyEnd: ipv4('192.168.1.9') }]);
  tx.deleteElements(S.eps, [{ key: u32host(8194) }]);
  tx.addElements(S.eps, [{ key: u32host(8194), data: concat(ipv4('10.1.0.99'), port(9090)) }]);
  tx.deleteElements(S.plain, [{ key: ipv4('10.0.0.2') }, { key: ipv4('10.9.9.9') }], { ifExists: true });
  tx.flushChain('ip', 'o4', 'svc-1');
  tx.addRule({ ...T4, chain: 'svc-1', exprs: [{ op: 'numgen', dreg: R1, mod: 2, type: 'random', offset: 8192 }, { op: 'ct-set', key: 'mark', sreg: R1 }, verdict({ kind: 'goto', chain: 'to-ep' })] });
  tx.deleteChain('ip', 'o4', 'stale');
  tx.deleteSet('ip', 'o4', 'gone');
  tx.flushSet(S.np);
  tx.deleteChain('ip', 'o4', 'never-there', { ifExists: true });
  tx.deleteTable('ip', 'not-there', { ifExists: true });
  return tx;
}

beforeAll(async () => {
  await scope.cleanup();
});
afterAll(() => scope.cleanup());

describe('nft text (transport A) vs netlink (transport B)', () => {
  it('every object kind and expression: the same listing, then after a delta', async () => {
    const [nl, txt] = await Promise.all([scope.create('obj-nl'), scope.create('obj-txt')]);
    const tx = everything();
    const text = transactionText(tx);
    applyNetlink(nl, tx);
    await applyText(txt, text);
    await expectSame(nl, txt, 'ip', 'o4', 30);
    await expectSame(nl, txt, 'ip6', 'o6', 8);
    await expectSame(nl, txt, 'inet', 'oi', 6);
    const d = delta();
    applyNetlink(nl, d);
    await applyText(txt, transactionText(d, new SetCatalog(Object.values(S))));
    await expectSame(nl, txt, 'ip', 'o4', 28);
    const after = (await listing(txt, 'ip', 'o4')).join('\n');
    expect(after).not.toMatch(/"stale"|"gone"|10\.0\.0\.2|192\.168\.1\.1/);
    expect(after).toMatch(/10\.1\.0\.99/);
  });
});

// ---- whole proxy layouts through both transports ----

const CIDR = '10.244.0.0/16';
const CIDR6 = 'fd00:244::/64';

function services(over: { webEndpoints?: number; drop?: string; extra?: ServiceView[]; stickyEndpoints?: number } = {}): ServiceView[] {
  const eps = (n: number, base: string, port = 8080, local = (i: number) => i % 2 === 0) => Array.from({ length: n }, (_, i) => ep(`${base}${i + 5}`, port, local(i)));
  const all = [
    view(svcInfo('default', 'web', { clusterIP: '10.96.0.10', nodePort: 30080 }), eps(over.webEndpoints ?? 3, '10.244.1.')),
    view(svcInfo('default', 'dns', { clusterIP: '10.96.0.11', port: 53, protocol: 'UDP', portName: 'dns' }), eps(2, '10.244.2.', 8053)),
    view(svcInfo('default', 'sctp', { clusterIP: '10.96.0.19', port: 9, protocol: 'SCTP' }), eps(1, '10.244.9.', 9)),
    view(svcInfo('default', 'empty', { clusterIP: '10.96.0.12', nodePort: 30081, externalIPs: ['203.0.113.7'] }), []),
    view(svcInfo('default', 'local', { clusterIP: '10.96.0.14', nodePort: 30082, externalPolicyLocal: true }), eps(2, '10.244.3.')),
    view(svcInfo('default', 'ext', { clusterIP: '10.96.0.17', externalIPs: ['203.0.113.5'] }), eps(1, '10.244.4.')),
    view(svcInfo('default', 'itp', { clusterIP: '10.96.0.18', internalPolicyLocal: true }), eps(2, '10.244.5.')),
    view(svcInfo('default', 'sticky', { clusterIP: '10.96.0.13', affinityTimeoutSeconds: 600, nodePort: 30083 }), eps(over.stickyEndpoints ?? 3, '10.244.6.')),
    view(svcInfo('default', 'lb', { clusterIP: '10.96.0.15', loadBalancerVIPs: ['203.0.113.9'], loadBalancerSourceRanges: ['192.0.2.0/24', '198.51.100.7/32'] }), eps(1, '10.244.7.')),
    ...(over.extra ?? []),
  ];
  return all.filter((v) => v.info.service !== over.drop);
}

function services6(): ServiceView[] {
  return [
    view(svcInfo('default', 'web6', { clusterIP: 'fd00:96::10', nodePort: 30090 }), [ep('fd00:244::5', 8080), ep('fd00:244::6', 8080, false)]),
    view(svcInfo('default', 'sticky6', { clusterIP: 'fd00:96::13', affinityTimeoutSeconds: 30 }), [ep('fd00:244::7', 8080)]),
    view(svcInfo('default', 'empty6', { clusterIP: 'fd00:96::12' }), []),
  ];
}

describe('proxy layouts through both transports', () => {
  it('IPv4: a full sync, then partial syncs (endpoint change, service added, service removed, affinity endpoints), then cleanup', async () => {
    const [nl, txt] = await Promise.all([scope.create('px-nl'), scope.create('px-txt')]);
    const cfg = config({ clusterCIDRs: [CIDR], nodePortAddresses: [] });
    const viaNl: ProxyBackend = createNftablesBackend(cfg, { netnsPath: netnsPath(nl) });
    const viaTxt: ProxyBackend = createNftablesBackend(cfg, { netnsPath: netnsPath(txt), transport: 'nft' });
    const both = async (vs: ServiceView[], changed: Set<string> | null) => {
      const [a, b] = await Promise.all([viaNl.sync({ state: state(vs), changed }), viaTxt.sync({ state: state(vs), changed })]);
      expect(b.full).toBe(a.full);
      return a;
    };
    expect((await both(services(), null)).full).toBe(true);
    await expectSame(nl, txt, 'ip', 'podwire', 40);

    const steps: Array<{ vs: ServiceView[]; changed: string[] }> = [
      { vs: services({ webEndpoints: 4 }), changed: ['default/web:p80'] },
      { vs: services({ webEndpoints: 4, extra: [view(svcInfo('default', 'new', { clusterIP: '10.96.0.30', nodePort: 30099 }), [ep('10.244.8.5')])] }), changed: ['default/new:p80'] },
      { vs: services({ webEndpoints: 4, drop: 'dns' }), changed: ['default/dns:dns', 'default/new:p80'] },
      { vs: services({ webEndpoints: 4, drop: 'dns', stickyEndpoints: 2 }), changed: ['default/sticky:p80'] },
      { vs: services({ webEndpoints: 0, drop: 'dns', stickyEndpoints: 2 }), changed: ['default/web:p80'] },
    ];
    // What each step must have changed in the kernel (so a step that changed nothing cannot pass).
    const landed: Array<[RegExp, boolean]> = [
      [/10\.244\.1\.8"/, true],
      [/10\.96\.0\.30"/, true],
      [/10\.96\.0\.11"/, false],
      [/10\.244\.6\.7/, false],
      [/10\.244\.1\.5"/, false],
    ];
    for (const [i, s] of steps.entries()) {
      const res = await both(s.vs, new Set(s.changed));
      expect(res.full, `step ${i} is a partial sync`).toBe(false);
      await expectSame(nl, txt, 'ip', 'podwire', 30);
      const [re, present] = landed[i]!;
      expect(re.test((await listing(txt, 'ip', 'podwire')).join('\n')), `step ${i}: ${re} ${present ? 'present' : 'gone'}`).toBe(present);
    }
    // A full resync over the existing table converges it in place (read back, flushed, stale objects deleted),
    // here with the affinity timeout changed (its sets are made again).
    const resync = services({ webEndpoints: 2, stickyEndpoints: 3 }).map((v) => (v.info.service === 'sticky' ? { ...v, info: { ...v.info, affinityTimeoutSeconds: 30 } } : v));
    expect((await both(resync, null)).full).toBe(true);
    await expectSame(nl, txt, 'ip', 'podwire', 40);
    expect((await listing(txt, 'ip', 'podwire')).join('\n')).toMatch(/"timeout":30\b/);
    await Promise.all([viaNl.cleanup(), viaTxt.cleanup()]);
    for (const ns of [nl, txt]) expect((await nsMust(ns, 'nft', ['list', 'tables'])).trim()).toBe('');
  });

  it('IPv6 with nodePortAddresses and masqueradeAll: the same table', async () => {
    const [nl, txt] = await Promise.all([scope.create('px6-nl'), scope.create('px6-txt')]);
    const cfg = config({ family: 6, clusterCIDRs: [CIDR6], nodePortAddresses: ['fd00:1::/64'], masqueradeAll: true });
    const viaNl = createNftablesBackend(cfg, { netnsPath: netnsPath(nl) });
    const viaTxt = createNftablesBackend(cfg, { netnsPath: netnsPath(txt), transport: 'nft' });
    const st = state(services6(), 6, ['fd00:1::11']);
    await Promise.all([viaNl.sync({ state: st, changed: null }), viaTxt.sync({ state: st, changed: null })]);
    await expectSame(nl, txt, 'ip6', 'podwire', 25);
    // Partial: web6 loses an endpoint, sticky6 goes, a node-port service comes.
    const next = services6()
      .filter((v) => v.info.service !== 'sticky6')
      .map((v) => (v.info.service === 'web6' ? view(v.info, [ep('fd00:244::5', 8080)]) : v));
    next.push(view(svcInfo('default', 'new6', { clusterIP: 'fd00:96::20', nodePort: 30091, protocol: 'UDP' }), [ep('fd00:244::9', 5353, false)]));
    const changed = new Set(['default/web6:p80', 'default/sticky6:p80', 'default/new6:p80']);
    const st2 = state(next, 6, ['fd00:1::11']);
    const [a, b] = await Promise.all([viaNl.sync({ state: st2, changed }), viaTxt.sync({ state: st2, changed })]);
    expect([a.full, b.full]).toEqual([false, false]);
    await expectSame(nl, txt, 'ip6', 'podwire', 20);
    const after = (await listing(txt, 'ip6', 'podwire')).join('\n');
    expect(after).toContain('fd00:244::9');
    expect(after).not.toContain('fd00:244::6');
    expect(after).not.toContain('fd00:96::13');
  });

  it('the nft transport throws nft\'s message and applies nothing', async () => {
    const ns = await scope.create('err');
    const t = new NftTextTransport(netnsPath(ns));
    const tx = new Transaction()
      .addTable({ family: 'ip', name: 'tf' })
      .addChain({ family: 'ip', table: 'tf', name: 'c' })
      .addRule({ family: 'ip', table: 'tf', chain: 'c', exprs: [verdict({ kind: 'jump', chain: 'absent-chain' })] });
    let err: unknown;
    try {
      await t.commit(tx);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NftCommandError);
    expect((err as Error).message).toMatch(/nft -f - failed \(exit 1\); nothing was applied: .*No such file or directory/s);
    expect((await nsRun(ns, 'nft', ['list', 'table', 'ip', 'tf'])).code).not.toBe(0);
  });
});

// ---- podwire proxy --dry-run through the real CLI (npm run build first) ----

const PODWIRE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'podwire');

function manifests(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pw-nfttext-'));
  const svc = (name: string, ip: string, extra: object) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
    spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ipFamilies: ['IPv4'], ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], selector: { app: name }, ...extra } });
  const slice = (name: string, ips: string[]) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: ips.map((ip, i) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, nodeName: i === 0 ? 'node-1' : 'node-2' })) });
  const items = [
    svc('web', '10.96.0.10', { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }] }),
    slice('web', ['10.244.1.5', '10.244.2.5', '10.244.2.6']),
    svc('sticky', '10.96.0.13', { sessionAffinity: 'ClientIP' }),
    slice('sticky', ['10.244.1.7', '10.244.2.7']),
    svc('empty', '10.96.0.12', {}),
  ];
  writeFileSync(join(dir, 'all.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  return dir;
}

describe('podwire proxy --dry-run', () => {
  it('prints the full sync as nft text that loads into a fresh namespace, and touches nothing', async () => {
    const dir = manifests();
    try {
      const [where, fresh] = await Promise.all([scope.create('dry-run'), scope.create('dry-load')]);
      const env = { ...process.env };
      delete env.NODE_EXTRA_CA_CERTS;
      const r = await nsRun(where, process.execPath, [PODWIRE, 'proxy', '--proxy-mode', 'nftables', '--manifests', dir, '--hostname-override', 'node-1', '--cluster-cidr', '10.244.0.0/16', '--dry-run'], { env, timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^add table ip podwire/);
      expect(r.stdout).toContain('add element ip podwire service-ips { ');
      expect(r.stdout).toMatch(/10\.96\.0\.10 \. tcp \. 80 : goto svc-\d+/);
      expect(r.stdout).toMatch(/add element ip podwire no-endpoint-services \{ 10\.96\.0\.12 \. tcp \. 80 \}/);
      // Nothing programmed where it ran.
      expect((await nsMust(where, 'nft', ['list', 'ruleset'])).trim()).toBe('');
      await nsMust(fresh, 'nft', ['-c', '-f', '-'], { input: r.stdout });
      await nsMust(fresh, 'nft', ['-f', '-'], { input: r.stdout });
      const listed = await nsMust(fresh, 'nft', ['list', 'map', 'ip', 'podwire', 'endpoints']);
      for (const ip of ['10.244.1.5', '10.244.2.5', '10.244.2.6']) expect(listed).toContain(`${ip} . 8080`);
      // The same flags in iptables mode are refused, not silently run.
      const ipt = await nsRun(where, process.execPath, [PODWIRE, 'proxy', '--proxy-mode', 'iptables', '--manifests', dir, '--dry-run'], { env, timeoutMs: 30_000 });
      expect(ipt.code).toBe(1);
      expect(ipt.stderr).toContain('--dry-run');
      const bad = await nsRun(where, process.execPath, [PODWIRE, 'proxy', '--proxy-mode', 'nftables', '--manifests', dir, '--nftables-transport', 'carrier-pigeon'], { env, timeoutMs: 30_000 });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('--nftables-transport carrier-pigeon: choose netlink or nft');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!existsSync('/usr/bin/strace'))('opens no nf_tables netlink socket and runs no program (strace)', async () => {
    const dir = manifests();
    const trace = join(dir, 'trace.txt');
    try {
      const where = await scope.create('dry-strace');
      const env = { ...process.env };
      delete env.NODE_EXTRA_CA_CERTS;
      const r = await nsRun(where, 'strace', ['-f', '-e', 'trace=socket,execve', '-o', trace, process.execPath, PODWIRE, 'proxy', '--proxy-mode', 'nftables', '--manifests', dir, '--hostname-override', 'node-1', '--dry-run'], { env, timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^add table ip podwire/);
      const calls = readFileSync(trace, 'utf8').split('\n');
      expect(calls.filter((l) => /socket\(AF_NETLINK/.test(l)).filter((l) => !/NETLINK_ROUTE/.test(l))).toEqual([]);
      // The one execve is node itself (strace's child).
      expect(calls.filter((l) => /execve\(/.test(l) && !/ENOENT/.test(l)).length).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
