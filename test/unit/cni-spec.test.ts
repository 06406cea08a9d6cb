import { describe, expect, it } from 'vitest';
import { CniError, ErrorCode, formatResult, parseCniArgs, parseResult, readEnv, SUPPORTED_VERSIONS } from '../../src/cni/spec/index.js';
import { parseNetConf } from '../../src/cni/spec/plugin.js';
import { formatCIDR, formatIP, parseCIDR, parseIP } from '../../src/cni/spec/ip.js';
import { formatIp, parseIp } from '../../src/netlink/route/ip.js';

const model = {
  cniVersion: '1.1.0',
  interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', mtu: 1500, sandbox: '/run/netns/x' }],
  ips: [
    { address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 },
    { address: 'fd00::2/64', gateway: 'fd00::1', interface: 0 },
  ],
  routes: [{ dst: '0.0.0.0/0', mtu: 1400 }, { dst: '::/0', gw: 'fd00::1' }],
  dns: { nameservers: ['10.0.0.10'] },
};

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError) return e.code;
    throw e;
  }
  throw new Error('expected a CniError');
}

describe('result conversion', () => {
  it('0.1.0 and 0.2.0 use ip4/ip6 with per-family routes', () => {
    for (const v of ['0.1.0', '0.2.0']) {
      expect(formatResult(model, v)).toEqual({
        cniVersion: v,
        ip4: { ip: '10.0.0.2/24', gateway: '10.0.0.1', routes: [{ dst: '0.0.0.0/0' }] },
        ip6: { ip: 'fd00::2/64', gateway: 'fd00::1', routes: [{ dst: '::/0', gw: 'fd00::1' }] },
        dns: { nameservers: ['10.0.0.10'] },
      });
    }
    expect(codeOf(() => formatResult({ cniVersion: '1.0.0' }, '0.2.0'))).toBe(1);
  });

  it('0.3.x/0.4.0 carry ip versions and only name/mac/sandbox', () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
      const out = formatResult(model, v) as Record<string, unknown>;
      expect(out.interfaces).toEqual([{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }]);
      expect(out.ips).toEqual([
        { version: '4', interface: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' },
        { version: '6', interface: 0, address: 'fd00::2/64', gateway: 'fd00::1' },
      ]);
      expect(out.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1' }]);
    }
  });

  it('1.x keeps everything; every version round-trips through parseResult', () => {
    expect(formatResult(model, '1.0.0')).toEqual({ ...model, cniVersion: '1.0.0' });
    for (const v of SUPPORTED_VERSIONS) {
      const back = parseResult(formatResult(model, v));
      expect(back.cniVersion).toBe(v);
      expect(back.ips!.map((i) => i.address)).toEqual(['10.0.0.2/24', 'fd00::2/64']);
      expect(back.routes!.map((r) => r.dst)).toEqual(['0.0.0.0/0', '::/0']);
    }
    expect(parseResult({ ip4: { ip: '10.1.1.1/8' } }).cniVersion).toBe('0.1.0');
    expect(codeOf(() => parseResult({ cniVersion: '1.0.0', ips: [{ address: 'nope' }] }))).toBe(6);
    expect(codeOf(() => parseResult({ cniVersion: '9.9.9' }))).toBe(1);
  });
});

describe('env, args and config', () => {
  const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/a:/b' };
  it('parses CNI_ARGS and rejects a pair without "="', () => {
    expect(parseCniArgs('IgnoreUnknown=1;IP=10.0.0.5,fd00::5;K8S_POD_NAME=p')).toEqual({ IgnoreUnknown: '1', IP: '10.0.0.5,fd00::5', K8S_POD_NAME: 'p' });
    expect(codeOf(() => parseCniArgs('FOO'))).toBe(4);
  });
  it('validates per command', () => {
    expect(readEnv(base).path).toEqual(['/a', '/b']);
    expect(codeOf(() => readEnv({ ...base, CNI_NETNS: '' }))).toBe(4);
    expect(readEnv({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns).toBe('');
    expect(codeOf(() => readEnv({ ...base, CNI_CONTAINERID: '-bad' }))).toBe(4);
    expect(codeOf(() => readEnv({ ...base, CNI_IFNAME: 'a-very-long-ifname' }))).toBe(4);
    expect(codeOf(() => readEnv({ ...base, CNI_COMMAND: 'FOO' }))).toBe(4);
    expect(codeOf(() => readEnv({}))).toBe(4);
    expect(readEnv({ CNI_COMMAND: 'GC', CNI_PATH: '/a' }).command).toBe('GC');
  });
  it('config: JSON 6, version 1, name/type 7', () => {
    expect(codeOf(() => parseNetConf('{'))).toBe(ErrorCode.Decode);
    expect(codeOf(() => parseNetConf('{"cniVersion":"0.9.0","name":"n","type":"t"}'))).toBe(1);
    expect(codeOf(() => parseNetConf('{"cniVersion":"1.0.0","type":"t"}'))).toBe(7);
    expect(codeOf(() => parseNetConf('{"cniVersion":"1.0.0","name":"n"}'))).toBe(7);
    expect(codeOf(() => parseNetConf('{"cniVersion":"1.0.0","name":"bad name","type":"t"}'))).toBe(7);
    expect(parseNetConf('{"name":"n","type":"t"}').cniVersion).toBe('0.1.0');
  });
  it('error JSON', () => {
    expect(new CniError(7, 'bad', 'why').toJSON('1.1.0')).toEqual({ cniVersion: '1.1.0', code: 7, msg: 'bad', details: 'why' });
    expect(JSON.stringify(new CniError(11, 'later').toJSON('0.4.0'))).toBe('{"cniVersion":"0.4.0","code":11,"msg":"later"}');
  });
  it('prints IPs as Go does (file names shared with host-local)', () => {
    for (const s of ['fd00::2', '2001:db8::1:0:0:1', '::', '::1', '1::', 'fe80::1:2:3:4', '10.0.0.255']) expect(formatIP(parseIP(s)!)).toBe(s);
    expect(formatIP(parseIP('2001:0db8:0:0:1:0:0:1')!)).toBe('2001:db8::1:0:0:1');
    expect(parseIP('::ffff:10.0.0.1')!.family).toBe(4);
    expect(parseIP('010.0.0.1')).toBeNull();
  });
  it('parses IPs by Go\'s rules, on the netlink codec', () => {
    expect(parseIP('10.1.2.3')).toEqual({ family: 4, value: 0x0a010203n });
    expect(parseIP('fd00::1:2')).toEqual({ family: 6, value: (0xfd00n << 112n) | 0x10002n });
    // net.ParseIP: an IPv4-mapped address is the IPv4 address, in either spelling.
    expect(parseIP('::ffff:10.0.0.1')).toEqual({ family: 4, value: 0x0a000001n });
    expect(parseIP('::FFFF:a00:1')).toEqual({ family: 4, value: 0x0a000001n });
    expect(formatIP(parseIP('::ffff:10.0.0.1')!)).toBe('10.0.0.1');
    expect(parseIP('::fffe:10.0.0.1')!.family).toBe(6);
    expect(parseIP('::10.0.0.1')!.family).toBe(6);
    for (const bad of ['fe80::1%eth0', '10.0.0.1%eth0', '10.0.0.01', '::ffff:010.0.0.1', '1:2:3:4:5:6:7:8:9', '10.0.0', ' 10.0.0.1', '']) {
      expect([bad, parseIP(bad)]).toEqual([bad, null]);
    }
    // A v4-mapped CIDR keeps its IPv6 prefix length, as Go's ParseCIDR reads it.
    expect(formatCIDR(parseCIDR('::ffff:10.0.0.0/120')!)).toBe('10.0.0.0/24');
    expect(parseCIDR('fe80::/64%eth0')).toBeNull();
    expect(parseCIDR('fe80::%eth0/64')).toBeNull();
    // Formatting agrees with the netlink codec's for every address both can hold.
    for (const s of ['2001:db8:0:0:1:0:0:1', '1:0:0:2:0:0:0:3', '::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '::1.2.3.4', '0.0.0.0', '255.255.255.255']) {
      expect(formatIP(parseIP(s)!)).toBe(formatIp(parseIp(s).bytes));
    }
  });
});
