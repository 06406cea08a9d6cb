// Sysctls inside namespaces and generic netlink family lookup, on the real kernel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveGenlFamily, GENL_ID_CTRL } from '../../src/netlink/genetlink.js';
import { RouteNetlink } from '../../src/netlink/rtnetlink.js';
import { NETLINK_GENERIC, NetlinkError, NetlinkSocket } from '../../src/netlink/socket.js';
import { readSysctl, writeSysctl } from '../../src/netlink/sysctl.js';
import { NetnsScope, netnsPath, nsMust } from '../helpers/netns.js';

const scope = new NetnsScope('nl-sg');
let nsA = '';
let nsB = '';

beforeAll(async () => {
  await scope.cleanup();
  nsA = await scope.create('a');
  nsB = await scope.create('b');
});
afterAll(() => scope.cleanup());

describe('sysctl', () => {
  it('writes a sysctl in one namespace without touching another', async () => {
    const machine = readSysctl('net.ipv4.ip_forward');
    expect(readSysctl('net.ipv4.ip_forward', netnsPath(nsA))).toBe('0');
    writeSysctl('net.ipv4.ip_forward', '1', netnsPath(nsA));
    expect(readSysctl('net.ipv4.ip_forward', netnsPath(nsA))).toBe('1');
    expect(readSysctl('net/ipv4/ip_forward', netnsPath(nsB))).toBe('0');
    expect((await nsMust(nsA, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).trim()).toBe('1');
    expect((await nsMust(nsB, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).trim()).toBe('0');
    expect(readSysctl('net.ipv4.ip_forward')).toBe(machine);
  });

  it('takes the path form for interface names with a dot', async () => {
    const nl = RouteNetlink.open(netnsPath(nsA));
    try {
      nl.addBridge('eth0.100');
    } finally {
      nl.close();
    }
    const key = 'net/ipv6/conf/eth0.100/disable_ipv6';
    expect(readSysctl(key, netnsPath(nsA))).toBe('0');
    writeSysctl(key, '1', netnsPath(nsA));
    expect(readSysctl(key, netnsPath(nsA))).toBe('1');
    expect((await nsMust(nsA, 'cat', ['/proc/sys/net/ipv6/conf/eth0.100/disable_ipv6'])).trim()).toBe('1');
  });

  it('fails with the errno and the key for a sysctl that does not exist', () => {
    let err: unknown;
    try {
      readSysctl('net.ipv4.conf.nosuchlink.forwarding', netnsPath(nsA));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe('ENOENT');
    expect((err as NetlinkError).message).toContain('net.ipv4.conf.nosuchlink.forwarding');
    expect(() => readSysctl('net/../../etc/passwd')).toThrow(/not a sysctl key/);
  });
});

describe('generic netlink', () => {
  it('resolves nlctrl, and ENOENT for IPVS on this kernel', () => {
    const s = NetlinkSocket.open(NETLINK_GENERIC, netnsPath(nsA));
    try {
      const ctrl = resolveGenlFamily(s, 'nlctrl');
      expect(ctrl).toMatchObject({ id: GENL_ID_CTRL, name: 'nlctrl' });
      expect(ctrl.version).toBeGreaterThanOrEqual(1);
      expect(ctrl.hdrSize).toBe(0);
      expect(ctrl.mcastGroups.get('notify')).toBeTypeOf('number');
      let err: unknown;
      try {
        resolveGenlFamily(s, 'IPVS');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NetlinkError);
      expect((err as NetlinkError).code).toBe('ENOENT');
      expect((err as NetlinkError).message).toContain('IPVS');
    } finally {
      s.close();
    }
  });
});
