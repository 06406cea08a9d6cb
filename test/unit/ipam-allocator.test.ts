import { describe, expect, it } from 'vitest';
import { CniError } from '../../src/cni/spec/errors.js';
import type { CniEnv } from '../../src/cni/spec/env.js';
import { parseIP } from '../../src/cni/spec/ip.js';
import { allocate, allocateAll, releaseAll } from '../../src/ipam/allocator.js';
import { parseIpamConfig, parseRangeSet } from '../../src/ipam/config.js';
import { MemoryStore } from '../../src/ipam/store.js';

const env: CniEnv = { command: 'ADD', containerId: 'c', netns: '/x', ifname: 'eth0', args: {}, path: [] };
const set = (...ranges: object[]) => parseRangeSet(ranges, 'ranges[0]');
const ip = (s: string) => parseIP(s)!;
const addr = (c: { address: string }) => c.address;

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError) return e.code;
    throw e;
  }
  throw new Error('expected a CniError');
}

describe('allocator', () => {
  it('exhausts a /29 after 5 hosts (gateway, network and broadcast never handed out)', () => {
    const s = new MemoryStore();
    const rs = set({ subnet: '10.0.0.0/29' });
    const got = [1, 2, 3, 4, 5].map((i) => addr(allocate(s, rs, 0, `c${i}`, 'eth0')));
    expect(got).toEqual(['10.0.0.2/29', '10.0.0.3/29', '10.0.0.4/29', '10.0.0.5/29', '10.0.0.6/29']);
    expect(codeOf(() => allocate(s, rs, 0, 'c6', 'eth0'))).toBe(11);
  });

  it('goes round robin from last_reserved and wraps', () => {
    const s = new MemoryStore();
    const rs = set({ subnet: '10.0.0.0/29' });
    allocate(s, rs, 0, 'a', 'eth0');
    allocate(s, rs, 0, 'b', 'eth0');
    releaseAll(s, 'a', 'eth0');
    // .2 is free again, but the next one after the last reserved (.3) comes first
    expect(addr(allocate(s, rs, 0, 'c', 'eth0'))).toBe('10.0.0.4/29');
    s.last.set(0, '10.0.0.6');
    expect(addr(allocate(s, rs, 0, 'd', 'eth0'))).toBe('10.0.0.2/29');
  });

  it('honours rangeStart/rangeEnd and moves to the next range of the set', () => {
    const s = new MemoryStore();
    const rs = set({ subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.11' }, { subnet: '10.0.1.0/24', rangeStart: '10.0.1.5', rangeEnd: '10.0.1.5', gateway: '10.0.1.254' });
    const got = ['a', 'b', 'c'].map((id) => allocate(s, rs, 0, id, 'eth0'));
    expect(got.map(addr)).toEqual(['10.0.0.10/24', '10.0.0.11/24', '10.0.1.5/24']);
    expect(got[2]!.gateway).toBe('10.0.1.254');
    expect(codeOf(() => allocate(s, rs, 0, 'd', 'eth0'))).toBe(11);
  });

  it('rejects overlapping ranges, host bits, /31 and /32, out-of-subnet bounds', () => {
    expect(codeOf(() => set({ subnet: '10.0.0.0/24' }, { subnet: '10.0.0.128/25' }))).toBe(7);
    expect(codeOf(() => set({ subnet: '10.0.0.1/24' }))).toBe(7);
    expect(codeOf(() => set({ subnet: '10.0.0.0/31' }))).toBe(7);
    expect(codeOf(() => set({ subnet: '10.0.0.0/32' }))).toBe(7);
    expect(codeOf(() => set({ subnet: '10.0.0.0/24', rangeStart: '10.0.1.1' }))).toBe(7);
    expect(codeOf(() => set({ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }))).toBe(7);
    const conf = { cniVersion: '1.0.0', name: 'n', ipam: { ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.0.0.0/25' }]] } };
    expect(codeOf(() => parseIpamConfig(conf, env))).toBe(7);
  });

  it('dual-stack: one address per range set, all or nothing', () => {
    const s = new MemoryStore();
    const sets = [set({ subnet: '10.0.0.0/29' }), set({ subnet: 'fd00::/126' })];
    expect(allocateAll(s, sets, 'a', 'eth0', []).map(addr)).toEqual(['10.0.0.2/29', 'fd00::2/126']);
    expect(allocateAll(s, sets, 'b', 'eth0', []).map(addr)).toEqual(['10.0.0.3/29', 'fd00::3/126']);
    // the v6 set is full now: the v4 address taken for c must be given back
    expect(codeOf(() => allocateAll(s, sets, 'c', 'eth0', []))).toBe(11);
    expect(s.all().filter((r) => r.containerID === 'c')).toEqual([]);
  });

  it('requested IPs: in range, not the gateway, not taken, all used', () => {
    const s = new MemoryStore();
    const sets = [set({ subnet: '10.0.0.0/24' })];
    expect(allocateAll(s, sets, 'a', 'eth0', [ip('10.0.0.77')]).map(addr)).toEqual(['10.0.0.77/24']);
    expect(codeOf(() => allocateAll(s, sets, 'b', 'eth0', [ip('10.0.0.77')]))).toBe(11);
    expect(codeOf(() => allocateAll(s, sets, 'b', 'eth0', [ip('10.0.0.1')]))).toBe(7);
    expect(codeOf(() => allocateAll(s, sets, 'b', 'eth0', [ip('10.0.0.9'), ip('10.0.0.10')]))).toBe(7);
    expect(s.all().map((r) => r.ip)).toEqual(['10.0.0.77']);
    expect(codeOf(() => allocate(s, sets[0]!, 0, 'a', 'eth0'))).toBe(999); // duplicate allocation
  });

  it('collects requested IPs from CNI_ARGS, args.cni.ips and runtimeConfig, and lets ipRanges replace ranges', () => {
    const conf = {
      cniVersion: '1.0.0',
      name: 'n',
      args: { cni: { ips: ['10.0.0.8'] } },
      runtimeConfig: { ips: ['10.0.0.9/24'], ipRanges: [[{ subnet: '10.0.0.0/24' }]] },
      ipam: { ranges: [[{ subnet: '192.168.0.0/24' }]] },
    };
    const cfg = parseIpamConfig(conf, { ...env, args: { IP: '10.0.0.7' } });
    expect(cfg.requested.map((x) => x.value)).toEqual([ip('10.0.0.7').value, ip('10.0.0.8').value, ip('10.0.0.9').value]);
    expect(cfg.rangeSets).toHaveLength(1);
    expect(cfg.rangeSets[0]![0]!.start).toEqual(ip('10.0.0.1'));
    expect(cfg.dataDir).toBe('/var/lib/cni/networks');
  });

  it('legacy single subnet with gateway', () => {
    const cfg = parseIpamConfig({ name: 'n', ipam: { subnet: '10.1.0.0/16', gateway: '10.1.255.254' } }, env);
    const s = new MemoryStore();
    expect(allocateAll(s, cfg.rangeSets, 'a', 'eth0', [])).toEqual([{ address: '10.1.0.1/16', gateway: '10.1.255.254' }]);
  });
});
