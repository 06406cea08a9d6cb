// Transport A's text, object kind by object kind, and the errors for what it
// cannot print exactly (test/kernel/nft-text-oracle.test.ts checks the text
// against the kernel).
import { describe, expect, it } from 'vitest';
import { Transaction, concat, concatRegisters, ipv4, ipv6, loadAddr, loadPort, matchL4proto, matchNfproto, port, proto, u32host, verdict, type Expr, type Rule, type SetDef } from '../../src/netlink/nftables/index.js';
import { NftTextError, SetCatalog, renderTransaction, ruleText, transactionText } from '../../src/netlink/nftables/text.js';
import { RecordingTransport } from '../../src/proxy/nftables/transport.js';

const T = { family: 'ip', table: 't' } as const;
const svcIps: SetDef = { ...T, name: 'service-ips', key: ['ipv4_addr', 'inet_proto', 'inet_service'], data: 'verdict' };
const eps: SetDef = { ...T, name: 'endpoints', key: ['mark'], data: ['ipv4_addr', 'inet_service'] };
const cidrs: SetDef = { ...T, name: 'cluster-cidrs', key: ['ipv4_addr'], interval: true };
const fwAllow: SetDef = { ...T, name: 'firewall-allow', key: ['ipv4_addr', 'inet_proto', 'inet_service', 'ipv4_addr'], interval: true };
const fwIps: SetDef = { ...T, name: 'firewall-ips', key: ['ipv4_addr', 'inet_proto', 'inet_service'] };
const aff: SetDef = { ...T, name: 'affinity-1', key: ['ipv4_addr'], dynamic: true, timeout: true, timeoutMs: 10_800_000 };
const nodePorts: SetDef = { ...T, name: 'node-ports', key: ['inet_proto', 'inet_service'], data: 'verdict' };
const sets = new Map([svcIps, eps, cidrs, fwAllow, fwIps, aff, nodePorts].map((s) => [s.name, s]));
const lookup = (n: string) => sets.get(n);
const rule = (exprs: Expr[], comment?: string): Rule => ({ ...T, chain: 'c', exprs, comment });
const text = (exprs: Expr[], comment?: string) => ruleText(rule(exprs, comment), lookup);
const [A, P, D, S2] = concatRegisters([4, 1, 2, 4]);
const dispatch = (): Expr[] => [loadAddr('ip', 'daddr', A!), { op: 'meta', key: 'l4proto', dreg: P! }, loadPort('dport', D!)];

describe('nft text: objects', () => {
  it('tables and chains', () => {
    const tx = new Transaction()
      .addTable({ family: 'ip', name: 't', comment: 'podwire' })
      .createTable({ family: 'ip6', name: 'u' })
      .addChain({ ...T, name: 'svc-1', comment: 'default/web:http' })
      .addChain({ ...T, name: 'pre', hook: { type: 'nat', hook: 'prerouting', priority: -100 } })
      .createChain({ ...T, name: 'forward-f', hook: { type: 'filter', hook: 'forward', priority: 0, policy: 'drop' }, comment: 'x' })
      .flushChain('ip', 't', 'svc-1')
      .deleteChain('ip', 't', 'svc-1')
      .deleteChain('ip', 't', 'old', { ifExists: true })
      .deleteTable('ip', 't', { ifExists: true })
      .deleteTable('ip6', 'u');
    expect(transactionText(tx)).toBe(
      [
        'add table ip t { comment "podwire"; }',
        'create table ip6 u',
        'add chain ip t svc-1 { comment "default/web:http"; }',
        'add chain ip t pre { type nat hook prerouting priority -100; }',
        'create chain ip t forward-f { type filter hook forward priority 0; policy drop; comment "x"; }',
        'flush chain ip t svc-1',
        'delete chain ip t svc-1',
        'add chain ip t old',
        'delete chain ip t old',
        'add table ip t',
        'delete table ip t',
        'delete table ip6 u',
        '',
      ].join('\n'),
    );
  });

  it('sets and maps of every shape', () => {
    const tx = new Transaction()
      .addSet(svcIps)
      .addSet(eps)
      .addSet(cidrs)
      .addSet(fwAllow)
      .addSet(aff)
      .createSet({ ...T, name: 'tmo', key: ['ipv6_addr', 'inet_service'], timeout: true, constant: true, size: 1000, comment: 'c' })
      .flushSet(svcIps)
      .flushSet(cidrs)
      .deleteSet('ip', 't', 'endpoints');
    expect(transactionText(tx).split('\n')).toEqual([
      'add map ip t service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }',
      'add map ip t endpoints { type mark : ipv4_addr . inet_service; }',
      'add set ip t cluster-cidrs { type ipv4_addr; flags interval; }',
      'add set ip t firewall-allow { type ipv4_addr . inet_proto . inet_service . ipv4_addr; flags interval; }',
      'add set ip t affinity-1 { type ipv4_addr; flags timeout,dynamic; timeout 10800s; }',
      'create set ip t tmo { type ipv6_addr . inet_service; flags constant,timeout; size 1000; comment "c"; }',
      'flush map ip t service-ips',
      'flush set ip t cluster-cidrs',
      'delete set ip t endpoints',
      '',
    ]);
    expect(() => transactionText(new Transaction().deleteSet('ip', 't', 'x', { ifExists: true }))).toThrow(/delete set ip t x if it exists: nft 1.0.6 has no destroy/);
  });

  it('elements decoded by the set types: prefixes, ranges, concatenations, verdicts, timeouts, comments', () => {
    const tmo: SetDef = { ...T, name: 'tmo', key: ['ipv4_addr', 'inet_service'], timeout: true };
    const v6: SetDef = { ...T, name: 'v6', key: ['ipv6_addr'], interval: true };
    const tx = new Transaction()
      .addElements(svcIps, [
        { key: concat(ipv4('10.96.0.1'), proto('tcp'), port(80)), data: { kind: 'goto', chain: 'svc-1' } },
        { key: concat(ipv4('10.96.0.2'), proto('udp'), port(53)), data: { kind: 'drop' }, comment: 'dns' },
      ])
      .addElements(eps, [{ key: u32host(8193), data: concat(ipv4('10.1.0.5'), port(8080)) }])
      .addElements(cidrs, [{ key: ipv4('10.244.0.0'), keyEnd: ipv4('10.244.255.255') }, { key: ipv4('10.0.0.1'), keyEnd: ipv4('10.0.0.9') }, { key: ipv4('10.0.0.20') }])
      .addElements(fwAllow, [{ key: concat(ipv4('203.0.113.9'), proto('tcp'), port(80), ipv4('192.0.2.0')), keyEnd: concat(ipv4('203.0.113.9'), proto('tcp'), port(80), ipv4('192.0.2.255')) }])
      .addElements(tmo, [{ key: concat(ipv4('10.1.0.1'), port(80)), timeoutMs: 1500, comment: 'x' }], { exclusive: true })
      .addElements(v6, [{ key: ipv6('fd00::'), keyEnd: ipv6('fd00::ffff') }])
      .deleteElements(eps, [{ key: u32host(8193) }])
      .deleteElements(cidrs, [{ key: ipv4('10.0.0.20') }], { ifExists: true });
    expect(transactionText(tx).split('\n')).toEqual([
      'add element ip t service-ips { 10.96.0.1 . tcp . 80 : goto svc-1, 10.96.0.2 . udp . 53 comment "dns" : drop }',
      'add element ip t endpoints { 0x00002001 : 10.1.0.5 . 8080 }',
      'add element ip t cluster-cidrs { 10.244.0.0/16, 10.0.0.1-10.0.0.9, 10.0.0.20 }',
      'add element ip t firewall-allow { 203.0.113.9 . tcp . 80 . 192.0.2.0/24 }',
      'create element ip t tmo { 10.1.0.1 . 80 timeout 1500ms comment "x" }',
      'add element ip t v6 { fd00::/112 }',
      'delete element ip t endpoints { 0x00002001 }',
      'add element ip t cluster-cidrs { 10.0.0.20 }',
      'delete element ip t cluster-cidrs { 10.0.0.20 }',
      '',
    ]);
  });

  it('long element lists over several lines; wrong element shapes are errors', () => {
    const many = Array.from({ length: 600 }, (_, i) => ({ key: u32host(i), data: concat(ipv4('10.1.0.5'), port(80)) }));
    const lines = transactionText(new Transaction().addElements(eps, many)).trimEnd().split('\n');
    expect(lines.length).toBe(3);
    expect(lines.reduce((n, l) => n + (l.match(/ : /g)?.length ?? 0), 0)).toBe(600);
    expect(() => transactionText(new Transaction().addElements(eps, [{ key: u32host(1) }]))).toThrow(/a map element without data/);
    expect(() => transactionText(new Transaction().deleteElements(eps, [{ key: u32host(1) }], { ifExists: true }))).toThrow(/needs each element's data/);
    expect(() => transactionText(new Transaction().addElements(svcIps, [{ key: concat(ipv4('10.96.0.1'), proto('tcp'), port(80)), data: Buffer.alloc(4) }]))).toThrow(/bytes where the verdict map wants a verdict/);
    const plain: SetDef = { ...T, name: 'p', key: ['ipv4_addr'] };
    expect(() => transactionText(new Transaction().addElements(plain, [{ key: ipv4('10.0.0.1'), keyEnd: ipv4('10.0.0.2') }]))).toThrow(/a range in a set without flags interval/);
  });

  it('names and comments nft cannot read are refused', () => {
    expect(() => transactionText(new Transaction().addChain({ ...T, name: 'dnat' }))).toThrow(/name "dnat" is an nft keyword/);
    expect(() => transactionText(new Transaction().addChain({ ...T, name: '1st' }))).toThrow(/not an nft identifier/);
    expect(() => transactionText(new Transaction().addChain({ ...T, name: 'a b' }))).toThrow(/not an nft identifier/);
    expect(() => transactionText(new Transaction().addTable({ family: 'ip', name: 't', comment: 'say "hi"' }))).toThrow(/comment "say \\"hi\\"" has a quote/);
  });
});

describe('nft text: rules', () => {
  it("the proxy layout's rules", () => {
    expect(text([...dispatch(), { op: 'lookup', set: 'service-ips', sreg: 1, dreg: 0 }])).toBe('ip daddr . meta l4proto . th dport vmap @service-ips');
    expect(
      text(
        [...dispatch(), { op: 'lookup', set: 'firewall-ips', sreg: 1 }, ...dispatch(), loadAddr('ip', 'saddr', S2!), { op: 'lookup', set: 'firewall-allow', sreg: 1, invert: true }, verdict({ kind: 'drop' })],
        'loadBalancerSourceRanges',
      ),
    ).toBe('ip daddr . meta l4proto . th dport @firewall-ips ip daddr . meta l4proto . th dport . ip saddr != @firewall-allow drop comment "loadBalancerSourceRanges"');
    expect(text([...matchL4proto('tcp'), { op: 'ct', key: 'mark', dreg: 1 }, { op: 'lookup', set: 'endpoints', sreg: 1, dreg: 1 }, { op: 'nat', type: 'dnat', family: 'ip', addrMin: 1, protoMin: 9 }])).toBe(
      'meta l4proto tcp dnat ip to ct mark map @endpoints',
    );
    expect(text([{ op: 'numgen', dreg: 1, mod: 3, type: 'random', offset: 8192 }, { op: 'ct-set', key: 'mark', sreg: 1 }, verdict({ kind: 'goto', chain: 'endpoint-dnat' })])).toBe(
      'ct mark set numgen random mod 3 offset 8192 goto endpoint-dnat',
    );
    expect(
      text([
        { op: 'fib', flags: ['daddr'], result: 'type', dreg: 1 },
        { op: 'cmp', sreg: 1, cmp: 'eq', data: u32host(2) },
        loadAddr('ip', 'daddr', 1),
        { op: 'range', sreg: 1, neq: true, from: ipv4('127.0.0.0'), to: ipv4('127.255.255.255') },
        { op: 'meta', key: 'l4proto', dreg: 1 },
        loadPort('dport', 9),
        { op: 'lookup', set: 'node-ports', sreg: 1, dreg: 0 },
      ]),
    ).toBe('fib daddr type local ip daddr != 127.0.0.0-127.255.255.255 meta l4proto . th dport vmap @node-ports');
    const mark = (mask: number, xor: number): Expr[] => [{ op: 'meta', key: 'mark', dreg: 1 }, { op: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: u32host(mask), xor: u32host(xor) }];
    expect(text([...mark(~0x4000 >>> 0, 0x4000), { op: 'meta-set', key: 'mark', sreg: 1 }])).toBe('meta mark set meta mark | 0x00004000');
    expect(text([...mark(0xffffffff, 0x4000), { op: 'meta-set', key: 'mark', sreg: 1 }, { op: 'masq' }])).toBe('meta mark set meta mark ^ 0x00004000 masquerade');
    expect(text([...mark(0x4000, 0), { op: 'cmp', sreg: 1, cmp: 'eq', data: u32host(0) }, verdict({ kind: 'return' })])).toBe('meta mark & 0x00004000 == 0x00000000 return');
    expect(
      text([
        ...matchL4proto('tcp'),
        loadAddr('ip', 'saddr', 1),
        { op: 'dynset', set: 'affinity-1', dynop: 'update', sregKey: 1 },
        { op: 'immediate', dreg: 1, data: ipv4('10.1.0.5') },
        { op: 'immediate', dreg: 2, data: port(8080) },
        { op: 'nat', type: 'dnat', family: 'ip', addrMin: 1, protoMin: 2 },
      ]),
    ).toBe('meta l4proto tcp update @affinity-1 { ip saddr } dnat ip to 10.1.0.5:8080');
    expect(text([...dispatch(), { op: 'lookup', set: 'firewall-ips', sreg: 1 }, { op: 'reject', type: 'icmp', code: 3 }])).toBe('ip daddr . meta l4proto . th dport @firewall-ips reject with icmp port-unreachable');
    expect(text([{ op: 'ct', key: 'state', dreg: 1 }, { op: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: u32host(6), xor: u32host(0) }, { op: 'cmp', sreg: 1, cmp: 'neq', data: u32host(0) }, { op: 'counter' }, verdict({ kind: 'accept' })])).toBe(
      'ct state established,related counter accept',
    );
    expect(text([{ op: 'limit', rate: 5, unit: 'minute', burst: 10, invert: true }, { op: 'reject', type: 'tcp-rst', code: 0 }])).toBe('limit rate over 5/minute burst 10 packets reject with tcp reset');
  });

  it("the CNI's masquerade rule in an inet table (the nfproto match names the header)", () => {
    const r: Rule = {
      family: 'inet',
      table: 'podwire-cni',
      chain: 'n-postrouting',
      exprs: [
        ...matchNfproto('ip6'),
        loadAddr('ip6', 'saddr', 1),
        { op: 'lookup', set: 'n-pods6', sreg: 1 },
        loadAddr('ip6', 'daddr', 1),
        { op: 'lookup', set: 'n-local6', sreg: 1, invert: true },
        { op: 'masq' },
      ],
    };
    const known = (n: string): SetDef | undefined => ({ family: 'inet', table: 'podwire-cni', name: n, key: ['ipv6_addr'] });
    expect(ruleText(r, known)).toBe('meta nfproto ipv6 ip6 saddr @n-pods6 ip6 daddr != @n-local6 masquerade');
    expect(() => ruleText({ ...r, exprs: r.exprs.slice(2) }, known)).toThrow(/network header load in an inet table needs a meta nfproto match first/);
  });

  it('throws, naming the rule, for what it cannot print exactly', () => {
    const named = (exprs: Expr[]) => () => ruleText({ ...rule(exprs), comment: 'mine' }, lookup);
    expect(named([...dispatch(), { op: 'lookup', set: 'nope', sreg: 1 }])).toThrow(/rule in ip t c \(mine\), expression 4 \(lookup\): set @nope is not defined/);
    expect(named([loadAddr('ip', 'saddr', 1), verdict({ kind: 'accept' })])).toThrow(/loads that no statement uses \(ip saddr\)/);
    // A register read twice: nft's reader takes it at the first use, so text would load it twice.
    expect(named([loadAddr('ip', 'saddr', 1), { op: 'lookup', set: 'cluster-cidrs', sreg: 1 }, { op: 'lookup', set: 'cluster-cidrs', sreg: 1, invert: true }])).toThrow(/expression 3 \(lookup\).*register 1, which holds nothing/);
    expect(named([{ op: 'meta', key: 'mark', dreg: 1 }, { op: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: u32host(0xff), xor: u32host(1) }])).toThrow(/neither &, \| nor \^/);
    expect(named([verdict({ kind: 'accept' }), { op: 'counter' }])).toThrow(/an expression after the verdict/);
    expect(named([{ op: 'immediate', dreg: 1, data: ipv4('10.0.0.1') }, { op: 'meta', key: 'l4proto', dreg: 9 }, loadPort('dport', 10), { op: 'lookup', set: 'firewall-ips', sreg: 1 }])).toThrow(/constant field/);
    expect(named([loadAddr('ip', 'daddr', 1), { op: 'meta', key: 'l4proto', dreg: 9 }, loadPort('dport', 11), { op: 'lookup', set: 'firewall-ips', sreg: 1 }])).toThrow(/key field inet_service should be loaded into word 2/);
    expect(named([{ op: 'ct', key: 'mark', dreg: 1 }, { op: 'lookup', set: 'endpoints', sreg: 1, dreg: 1 }, { op: 'nat', type: 'dnat', family: 'ip', addrMin: 1, protoMin: 10 }])).toThrow(/nat port register 10 is not the port of ct mark map @endpoints/);
    expect(named([{ op: 'ct', key: 'mark', dreg: 1, direction: 'reply' }, verdict({ kind: 'accept' })])).toThrow(/ct with a direction/);
    expect(named([{ op: 'payload', base: 'network', offset: 0, len: 1, dreg: 1 }])).toThrow(/ip header offset 0 length 1/);
    expect(named([{ op: 'meta-set', key: 'pkttype', sreg: 1 }])).toThrow(/meta pkttype set is not printed/);
    expect(named([{ op: 'masq', flags: 1 << 6 }])).toThrow(/nat flags 0x40/);
    expect(named([])).toThrow(/an empty rule/);
    expect(named([...dispatch(), { op: 'lookup', set: 'firewall-ips', sreg: 1, dreg: 0 }])).toThrow(/not a verdict map/);
  });
});

describe('nft text: sets across transactions', () => {
  it('a later transaction reads set types from the catalog; a deleted table forgets its sets', () => {
    const catalog = new SetCatalog();
    const first = renderTransaction(new Transaction().addTable({ family: 'ip', name: 't' }).addSet(cidrs).addChain({ ...T, name: 'c' }), catalog);
    const r: Rule = rule([loadAddr('ip', 'saddr', 1), { op: 'lookup', set: 'cluster-cidrs', sreg: 1 }, verdict({ kind: 'accept' })]);
    // Not yet adopted (the script was not applied): unknown.
    expect(() => renderTransaction(new Transaction().addRule(r), catalog)).toThrow(/set @cluster-cidrs is not defined/);
    catalog.adopt(first.changes);
    expect(renderTransaction(new Transaction().addRule(r), catalog).lines).toEqual(['add rule ip t c ip saddr @cluster-cidrs accept\n']);
    expect(() => renderTransaction(new Transaction().deleteTable('ip', 't').addRule(r), new SetCatalog([cidrs]))).toThrow(/set @cluster-cidrs is not defined/);
  });

  it('RecordingTransport keeps one script per commit and touches nothing', () => {
    const rec = new RecordingTransport();
    rec.commit(new Transaction().addTable({ family: 'ip', name: 't' }).addSet(cidrs));
    rec.commit(new Transaction());
    rec.commit(new Transaction().addElements(cidrs, [{ key: ipv4('10.0.0.0'), keyEnd: ipv4('10.0.0.255') }]));
    expect(rec.text()).toEqual(['add table ip t\nadd set ip t cluster-cidrs { type ipv4_addr; flags interval; }\n', 'add element ip t cluster-cidrs { 10.0.0.0/24 }\n']);
  });
});
