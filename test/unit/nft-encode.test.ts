// Pure parts of the nf_tables encoder: values, type ids, registers, the bytes
// of an expression, element lists split below the 16-bit attribute length.
import { describe, expect, it } from 'vitest';
import { parseAttrList, parseAttrs } from '../../src/netlink/attrs.js';
import { ELEM_FLAG, LIST_ELEM } from '../../src/netlink/nftables/consts.js';
import { increment, newElements, shapeOf, typesId, typesLen } from '../../src/netlink/nftables/encode.js';
import { putExpr } from '../../src/netlink/nftables/expr.js';
import { AttrBuilder } from '../../src/netlink/attrs.js';
import { concatRegisters } from '../../src/netlink/nftables/match.js';
import { Transaction } from '../../src/netlink/nftables/transaction.js';
import { complementRanges, concat, ipToString, ipv4, ipv6, parseCidr, port } from '../../src/netlink/nftables/values.js';

describe('values', () => {
  it('parses and prints IPv6 the canonical way', () => {
    for (const [text, canonical] of [
      ['fd00::1', 'fd00::1'],
      ['::', '::'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::ffff:10.1.2.3', '::ffff:a01:203'],
      ['ff00::', 'ff00::'],
    ] as const) {
      expect(ipToString(ipv6(text))).toBe(canonical);
    }
    expect(ipv6('::1').toString('hex')).toBe('00000000000000000000000000000001');
    expect(() => ipv6('1::2::3')).toThrow(/not an IPv6 address/);
    expect(() => ipv4('10.0.0.256')).toThrow(/not an IPv4 address/);
  });

  it('computes a CIDR\'s network and keeps the written address', () => {
    const c = parseCidr('10.22.0.5/24');
    expect([ipToString(c.address), ipToString(c.first), ipToString(c.last), c.prefix]).toEqual(['10.22.0.5', '10.22.0.0', '10.22.0.255', 24]);
    const d = parseCidr('fd00:22::5/64');
    expect([ipToString(d.first), ipToString(d.last)]).toEqual(['fd00:22::', 'fd00:22::ffff:ffff:ffff:ffff']);
    expect(parseCidr('10.0.0.1').prefix).toBe(32);
    expect(() => parseCidr('10.0.0.1/33')).toThrow(/bad prefix length/);
    expect(() => parseCidr('10.0.0.1/2x')).toThrow(/bad prefix length/);
  });

  it('complements ranges, merging overlaps', () => {
    expect(complementRanges([[10n, 20n], [15n, 30n], [40n, 255n]], 8)).toEqual([[0n, 9n], [31n, 39n]]);
    expect(complementRanges([], 8)).toEqual([[0n, 255n]]);
    expect(complementRanges([[0n, 255n]], 8)).toEqual([]);
  });

  it('pads concatenation fields to 32-bit registers', () => {
    expect(concat(ipv4('10.0.0.1'), Buffer.of(6), port(80)).toString('hex')).toBe('0a000001' + '06000000' + '00500000');
  });
});

describe('types and registers', () => {
  it('gives nft\'s type ids and key lengths', () => {
    expect(typesId(['ipv4_addr'])).toBe(7);
    expect(typesId(['ipv4_addr', 'inet_proto', 'inet_service'])).toBe((7 << 12) | (12 << 6) | 13);
    expect(typesLen(['inet_service'])).toBe(2);
    expect(typesLen(['ipv4_addr', 'inet_proto', 'inet_service'])).toBe(12);
    expect(typesLen(['ipv6_addr', 'inet_service'])).toBe(20);
  });

  it('allocates concatenation registers like nft', () => {
    expect(concatRegisters([4, 1, 2])).toEqual([1, 9, 10]);
    expect(concatRegisters([16, 2])).toEqual([1, 12]);
  });
});

describe('expressions', () => {
  it('encodes cmp as NFTA_LIST_ELEM { name "cmp", data { sreg, op, data { value } } } in network order', () => {
    const list = new AttrBuilder();
    putExpr(list, { op: 'cmp', sreg: 1, cmp: 'neq', data: port(80) });
    const [elem] = parseAttrList(list.build());
    expect(elem!.type).toBe(LIST_ELEM);
    const e = parseAttrs(elem!.value);
    expect(e.get(1)!.toString()).toBe('cmp\0');
    const d = parseAttrs(e.get(2)!);
    expect(d.get(1)!.toString('hex')).toBe('00000001');
    expect(d.get(2)!.toString('hex')).toBe('00000001');
    expect(parseAttrs(d.get(3)!).get(1)!.toString('hex')).toBe('0050');
  });

  it('rejects a bitwise whose mask does not match its length', () => {
    expect(() => putExpr(new AttrBuilder(), { op: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: Buffer.alloc(2), xor: Buffer.alloc(4) })).toThrow(/mask and xor must be 4 bytes/);
  });
});

describe('elements', () => {
  const map = { family: 'ip', table: 't', name: 'm', key: ['ipv4_addr', 'inet_service'], data: ['ipv4_addr', 'inet_service'] } as const;

  it('splits long element lists into messages whose nested list fits 16 bits', () => {
    const els = Array.from({ length: 5000 }, (_, i) => ({ key: concat(ipv4(`10.0.${i >> 8}.${i & 255}`), port(80)), data: concat(ipv4('10.1.0.1'), port(80)) }));
    const parts = newElements('ip', 't', 'm', els, shapeOf({ ...map, key: [...map.key], data: [...map.data] }));
    expect(parts.length).toBeGreaterThan(1);
    let count = 0;
    for (const p of parts) {
      const list = parseAttrs(Buffer.from(p.payload), 4).get(3)!;
      expect(list.length).toBeLessThan(65536);
      count += parseAttrList(list).length;
    }
    expect(count).toBe(5000);
  });

  it('encodes a plain interval as a start and an INTERVAL_END element after it', () => {
    const s = { family: 'ip', table: 't', name: 's', key: ['ipv4_addr'], interval: true } as const;
    const [p] = newElements('ip', 't', 's', [{ key: ipv4('10.0.0.0'), keyEnd: ipv4('10.255.255.255') }], shapeOf({ ...s, key: [...s.key] }));
    const els = parseAttrList(parseAttrs(Buffer.from(p!.payload), 4).get(3)!).map((a) => parseAttrs(a.value));
    expect(els).toHaveLength(2);
    expect(parseAttrs(els[1]!.get(1)!).get(1)!.toString('hex')).toBe('0b000000');
    expect(els[1]!.get(3)!.readUInt32BE(0)).toBe(ELEM_FLAG.INTERVAL_END);
    expect(increment(Buffer.from('ffff', 'hex'))).toBeNull();
  });

  it('refuses a key of the wrong size and over-long comments', () => {
    const s = { family: 'ip', table: 't', name: 's', key: ['ipv4_addr'] } as const;
    expect(() => newElements('ip', 't', 's', [{ key: ipv6('::1') }], shapeOf({ ...s, key: [...s.key] }))).toThrow(/key has 16 bytes, the set's key 4/);
    expect(() => new Transaction().addElements({ ...s, key: [...s.key] }, [{ key: ipv4('10.0.0.1'), comment: 'x'.repeat(200) }])).toThrow(/comment longer than 127 bytes/);
  });
});

describe('transactions', () => {
  it('remembers which object every message belongs to', () => {
    const s = { family: 'ip', table: 't', name: 's', key: ['ipv4_addr'] } as const;
    const tx = new Transaction().addTable({ family: 'ip', name: 't' }).addSet({ ...s, key: [...s.key] }).flushChain('ip', 't', 'c');
    expect(tx.messages().owner).toEqual(['add table ip t', 'add set ip t s', 'flush chain ip t c']);
    expect(new Transaction().addElements({ ...s, key: [...s.key] }, []).size).toBe(0);
  });

  it('sends a segment\'s operations at its place, however late they are added', () => {
    const tx = new Transaction().addTable({ family: 'ip', name: 't' });
    const chains = tx.segment();
    const rules = tx.segment();
    tx.deleteChain('ip', 't', 'old');
    rules.flushChain('ip', 't', 'b');
    chains.addChain({ family: 'ip', table: 't', name: 'a' });
    rules.flushChain('ip', 't', 'c');
    chains.addChain({ family: 'ip', table: 't', name: 'b' });
    expect(tx.messages().owner).toEqual(['add table ip t', 'add chain ip t a', 'add chain ip t b', 'flush chain ip t b', 'flush chain ip t c', 'delete chain ip t old']);
    expect(tx.size).toBe(6);
    expect(tx.operations().map((o) => o.kind)).toEqual(['add table', 'add chain', 'add chain', 'flush chain', 'flush chain', 'delete chain']);
  });

  it('streams elements into the same messages as one addElements, and without kept operations sends the same bytes', () => {
    const set = { family: 'ip', table: 't', name: 'eps', key: ['ipv4_addr', 'inet_service'], data: ['ipv4_addr'] } as const;
    const def = { ...set, key: [...set.key], data: [...set.data] };
    const els = Array.from({ length: 5000 }, (_, i) => ({ key: concat(ipv4(`10.1.${i >> 8}.${i & 255}`), port(80)), data: ipv4(`10.2.${i >> 8}.${i & 255}`) }));
    const once = new Transaction().addElements(def, els);
    const build = (keepOperations: boolean) => {
      const tx = new Transaction({ keepOperations });
      const stream = tx.elementStream(def);
      tx.flushChain('ip', 't', 'after');
      for (let i = 0; i < els.length; i += 7) stream.add(els.slice(i, i + 7));
      stream.end();
      return tx;
    };
    const kept = build(true);
    const bare = build(false);
    const bytes = (tx: Transaction) => tx.messages().parts.map((p) => Buffer.from(p.payload).toString('hex'));
    expect(once.messages().parts.length).toBeGreaterThan(1);
    expect(bytes(kept)).toEqual([...bytes(once), ...bytes(new Transaction().flushChain('ip', 't', 'after'))]);
    expect(bytes(bare)).toEqual(bytes(kept));
    expect(kept.messages().owner[0]).toBe('add element ip t eps (5000)');
    expect(kept.operations()[0]).toMatchObject({ kind: 'add element', elements: els });
    expect(() => bare.operations()).toThrow(/keeps only its encoding/);
    // A stream that got nothing sends nothing.
    const empty = new Transaction();
    empty.elementStream(def).end();
    expect(empty.size).toBe(0);
  });
});

describe('attribute builder', () => {
  it('nests in place across buffer growth, and refuses an attribute over 64 KiB', () => {
    const b = new AttrBuilder().raw(Buffer.of(1, 2, 3)).nested(1, (n) => {
      for (let i = 0; i < 1000; i++) n.str(2, `value-${i}`);
      n.nested(3, (m) => m.u8(4, 0xab).be16(5, 0x1234).u64(6, 7n));
    });
    const out = b.build();
    expect(out.subarray(0, 4).toString('hex')).toBe('01020300');
    const outer = parseAttrList(out, 4);
    expect(outer).toHaveLength(1);
    const inner = parseAttrList(outer[0]!.value);
    expect(inner).toHaveLength(1001);
    expect(inner[999]!.value.toString()).toBe('value-999\0');
    const last = parseAttrs(inner[1000]!.value);
    expect(last.get(4)!.toString('hex')).toBe('ab');
    expect(last.get(5)!.toString('hex')).toBe('1234');
    expect(out.readUInt16LE(4)).toBe(out.length - 4);
    expect(out.readUInt16LE(6)).toBe(1 | 0x8000);
    expect(() => new AttrBuilder().nested(1, (n) => n.bytes(2, Buffer.alloc(40000)).bytes(2, Buffer.alloc(40000)))).toThrow(/more than one attribute holds/);
    expect(() => new AttrBuilder().bytes(1, Buffer.alloc(70000))).toThrow(/more than one attribute holds/);
  });
});
