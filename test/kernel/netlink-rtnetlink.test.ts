// RouteNetlink against the real kernel, inside pw-t-nl-* namespaces; readbacks
// are checked with iproute2 as well as with our own decoders.
import { closeSync, openSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RouteNetlink } from '../../src/netlink/rtnetlink.js';
import { NetlinkError } from '../../src/netlink/socket.js';
import { NetnsScope, netnsPath, must } from '../helpers/netns.js';

const scope = new NetnsScope('nl-rt');
let nsA = '';
let nsB = '';
let nl: RouteNetlink;

beforeAll(async () => {
  await scope.cleanup();
  nsA = await scope.create('a');
  nsB = await scope.create('b');
});
afterAll(() => scope.cleanup());

// Each test starts from namespaces holding only lo.
beforeEach(() => {
  nl = RouteNetlink.open(netnsPath(nsA));
  for (const ns of [nsA, nsB]) {
    const s = RouteNetlink.open(netnsPath(ns));
    try {
      for (const l of s.listLinks()) if (l.name !== 'lo') s.deleteLink(l.index);
    } finally {
      s.close();
    }
  }
});
afterEach(() => nl.close());

function caught(fn: () => unknown): NetlinkError {
  try {
    fn();
  } catch (e) {
    if (e instanceof NetlinkError) return e;
    throw e;
  }
  throw new Error('expected a NetlinkError');
}

async function ipJson(ns: string, args: string[]): Promise<Array<Record<string, unknown>>> {
  return JSON.parse(await must('ip', ['-n', ns, '-j', ...args])) as Array<Record<string, unknown>>;
}

describe('links', () => {
  it('creates a bridge with mtu and mac, reads it back, brings it up', async () => {
    const br = nl.addBridge('br-pw0', { mtu: 1400, mac: '02:aa:bb:cc:dd:01' });
    expect(br).toMatchObject({ name: 'br-pw0', kind: 'bridge', mtu: 1400, mac: '02:aa:bb:cc:dd:01', up: false, masterIndex: 0 });
    expect(nl.getLink('br-pw0')).toEqual(br);
    expect(nl.getLinkByIndex(br.index)).toEqual(br);
    nl.setUp(br.index);
    nl.setMtu(br.index, 1350);
    nl.setMac(br.index, '02:aa:bb:cc:dd:02');
    expect(nl.getLink('br-pw0')).toMatchObject({ up: true, mtu: 1350, mac: '02:aa:bb:cc:dd:02' });
    const [shown] = await ipJson(nsA, ['-d', 'link', 'show', 'dev', 'br-pw0']);
    expect(shown).toMatchObject({ ifname: 'br-pw0', mtu: 1350, address: '02:aa:bb:cc:dd:02' });
    expect(shown!.flags).toContain('UP');
    expect((shown!.linkinfo as { info_kind: string }).info_kind).toBe('bridge');
    nl.setDown(br.index);
    expect(nl.getLink('br-pw0')!.up).toBe(false);
    expect(nl.listLinks().map((l) => l.name).sort()).toEqual(['br-pw0', 'lo']);
  });

  it('reports EEXIST for a second bridge of the same name, naming it', () => {
    nl.addBridge('br-dup');
    const e = caught(() => nl.addBridge('br-dup'));
    expect(e.code).toBe('EEXIST');
    expect(e.message).toContain('RTM_NEWLINK bridge br-dup');
  });

  it('returns null for links that do not exist and rejects impossible names', () => {
    expect(nl.getLink('nope0')).toBeNull();
    expect(nl.getLinkByIndex(99999)).toBeNull();
    expect(caught(() => nl.getLink('a-name-longer-than-15')).code).toBe('EINVAL');
    expect(caught(() => nl.addBridge('bad/name')).code).toBe('EINVAL');
  });

  it('creates a veth whose peer is born in another namespace', async () => {
    const fd = openSync(netnsPath(nsB), 'r');
    try {
      nl.addVeth({ name: 'veth-pw0', peerName: 'eth0', peerNetnsFd: fd, mtu: 1420, peerMac: '02:00:00:00:00:0b' });
    } finally {
      closeSync(fd);
    }
    const here = nl.getLink('veth-pw0')!;
    expect(here).toMatchObject({ kind: 'veth', mtu: 1420 });
    expect(here.linkNetnsId).toBeTypeOf('number');
    expect(nl.getLink('eth0')).toBeNull();
    const b = RouteNetlink.open(netnsPath(nsB));
    try {
      const peer = b.getLink('eth0')!;
      expect(peer).toMatchObject({ kind: 'veth', mtu: 1420, mac: '02:00:00:00:00:0b' });
      expect(here.linkIndex).toBe(peer.index);
      expect(peer.linkIndex).toBe(here.index);
      expect(peer.linkNetnsId).toBeTypeOf('number');
    } finally {
      b.close();
    }
    expect((await ipJson(nsB, ['link', 'show', 'dev', 'eth0']))[0]).toMatchObject({ ifname: 'eth0', address: '02:00:00:00:00:0b' });
    expect(await must('ip', ['-n', nsA, '-o', 'link', 'show'])).not.toContain('eth0');
  });

  it('creates a veth pair in one namespace, each naming the other', () => {
    nl.addVeth({ name: 'va', peerName: 'vb', mac: '02:00:00:00:00:aa' });
    const a = nl.getLink('va')!;
    const b = nl.getLink('vb')!;
    expect(a.mac).toBe('02:00:00:00:00:aa');
    expect(a.linkIndex).toBe(b.index);
    expect(b.linkIndex).toBe(a.index);
    expect(a.linkNetnsId).toBeUndefined();
  });

  it('enslaves to a bridge and releases (master / nomaster)', async () => {
    const br = nl.addBridge('br-m');
    nl.addVeth({ name: 'vm0', peerName: 'vm1' });
    const v = nl.getLink('vm0')!;
    nl.setMaster(v.index, br.index);
    expect(nl.getLink('vm0')!.masterIndex).toBe(br.index);
    expect((await ipJson(nsA, ['link', 'show', 'dev', 'vm0']))[0]!.master).toBe('br-m');
    nl.setMaster(v.index, 0);
    expect(nl.getLink('vm0')!.masterIndex).toBe(0);
    expect((await ipJson(nsA, ['link', 'show', 'dev', 'vm0']))[0]!.master).toBeUndefined();
  });

  it('sets hairpin, isolated and learning on a bridge port, as bridge(8) shows them', async () => {
    const br = nl.addBridge('br-h');
    nl.addVeth({ name: 'vh0', peerName: 'vh1' });
    const v = nl.getLink('vh0')!;
    nl.setMaster(v.index, br.index);
    expect(nl.getBridgePort(v.index)).toEqual({ hairpin: false, isolated: false, learning: true });
    nl.setBridgePort(v.index, { hairpin: true, isolated: true, learning: false });
    expect(nl.getBridgePort(v.index)).toEqual({ hairpin: true, isolated: true, learning: false });
    const shown = await must('ip', ['netns', 'exec', nsA, 'bridge', '-d', 'link', 'show', 'dev', 'vh0']);
    expect(shown).toMatch(/hairpin on/);
    expect(shown).toMatch(/isolated on/);
    expect(shown).toMatch(/learning off/);
    nl.setBridgePort(v.index, { hairpin: false });
    expect(nl.getBridgePort(v.index)).toEqual({ hairpin: false, isolated: true, learning: false });
    expect(await must('ip', ['netns', 'exec', nsA, 'bridge', '-d', 'link', 'show', 'dev', 'vh0'])).toMatch(/hairpin off/);
  });

  it('refuses bridge-port flags on a link that is not a port', () => {
    nl.addVeth({ name: 'vn0', peerName: 'vn1' });
    const v = nl.getLink('vn0')!;
    expect(() => nl.setBridgePort(v.index, { hairpin: true })).toThrow(NetlinkError);
    expect(caught(() => nl.getBridgePort(v.index)).message).toContain('not enslaved');
  });

  it('turns promiscuous mode on and off', async () => {
    const br = nl.addBridge('br-p');
    nl.setPromisc(br.index, true);
    expect(nl.getLink('br-p')!.promisc).toBe(true);
    expect((await ipJson(nsA, ['link', 'show', 'dev', 'br-p']))[0]!.flags).toContain('PROMISC');
    nl.setPromisc(br.index, false);
    expect(nl.getLink('br-p')!.promisc).toBe(false);
  });

  it('deletes links, and says false when they are already gone', () => {
    const br = nl.addBridge('br-d');
    expect(nl.deleteLink(br.index)).toBe(true);
    expect(nl.deleteLink(br.index)).toBe(false);
    nl.addBridge('br-e');
    expect(nl.deleteLinkByName('br-e')).toBe(true);
    expect(nl.deleteLinkByName('br-e')).toBe(false);
    expect(nl.getLink('br-e')).toBeNull();
  });

  it('names the link in errors of set calls', () => {
    const br = nl.addBridge('br-err');
    const e = caught(() => nl.setMtu(br.index, 10));
    expect(e.code).toBe('EINVAL');
    expect(e.message).toContain('dev br-err');
    expect(caught(() => nl.setUp(99999)).code).toBe('ENODEV');
  });
});

describe('addresses', () => {
  it('adds IPv4 and IPv6 addresses and lists them', async () => {
    const br = nl.addBridge('br-a');
    nl.setUp(br.index);
    nl.addAddress(br.index, '10.1.0.1/24');
    nl.addAddress(br.index, 'fd00:10::1/64', { noDad: true });
    const mine = nl.listAddresses({ index: br.index }).filter((a) => !a.address.startsWith('fe80:'));
    expect(mine.map((a) => a.cidr).sort()).toEqual(['10.1.0.1/24', 'fd00:10::1/64']);
    expect(nl.listAddresses({ index: br.index, family: 4 })).toEqual([
      expect.objectContaining({ family: 4, address: '10.1.0.1', prefixLen: 24, scope: 0 }),
    ]);
    const [shown] = await ipJson(nsA, ['addr', 'show', 'dev', 'br-a']);
    const infos = shown!.addr_info as Array<{ local: string; prefixlen: number; broadcast?: string }>;
    expect(infos.find((i) => i.local === '10.1.0.1')).toMatchObject({ prefixlen: 24, broadcast: '10.1.0.255' });
  });

  it('marks nodad addresses so they are never tentative, unlike ordinary ones', async () => {
    nl.addVeth({ name: 'vd0', peerName: 'vd1' });
    const v0 = nl.getLink('vd0')!;
    const v1 = nl.getLink('vd1')!;
    nl.setUp(v0.index);
    nl.setUp(v1.index);
    nl.addAddress(v0.index, 'fd00:20::1/64', { noDad: true });
    nl.addAddress(v1.index, 'fd00:20::2/64');
    const out0 = await must('ip', ['-n', nsA, '-6', 'addr', 'show', 'dev', 'vd0']);
    const out1 = await must('ip', ['-n', nsA, '-6', 'addr', 'show', 'dev', 'vd1']);
    expect(out0).toMatch(/fd00:20::1\/64 scope global nodad/);
    expect(out0).not.toMatch(/fd00:20::1\/64[^\n]*tentative/);
    expect(out1).toMatch(/fd00:20::2\/64 scope global tentative/);
  });

  it('refuses a duplicate unless replace, naming address and device', () => {
    const br = nl.addBridge('br-x');
    nl.addAddress(br.index, '10.2.0.5/24');
    const e = caught(() => nl.addAddress(br.index, '10.2.0.5/24'));
    expect(e.code).toBe('EEXIST');
    expect(e.message).toContain('RTM_NEWADDR 10.2.0.5/24 dev br-x');
    nl.addAddress(br.index, '10.2.0.5/24', { replace: true });
    expect(nl.listAddresses({ index: br.index, family: 4 }).map((a) => a.cidr)).toEqual(['10.2.0.5/24']);
  });

  it('deletes addresses, false when absent', () => {
    const br = nl.addBridge('br-y');
    nl.addAddress(br.index, '10.3.0.1/16');
    nl.addAddress(br.index, 'fd00:30::1/64', { noDad: true });
    expect(nl.deleteAddress(br.index, '10.3.0.1/16')).toBe(true);
    expect(nl.deleteAddress(br.index, '10.3.0.1/16')).toBe(false);
    expect(nl.deleteAddress(br.index, 'fd00:30::1/64')).toBe(true);
    expect(nl.deleteAddress(br.index, 'fd00:30::1/64')).toBe(false);
    expect(nl.deleteAddress(99999, '10.3.0.1/16')).toBe(false);
    expect(nl.listAddresses({ index: br.index }).filter((a) => !a.address.startsWith('fe80:'))).toEqual([]);
  });
});

describe('routes', () => {
  function setup(): number {
    const br = nl.addBridge('br-r');
    nl.setUp(br.index);
    nl.addAddress(br.index, '10.5.0.1/24');
    nl.addAddress(br.index, 'fd00:50::1/64', { noDad: true });
    return br.index;
  }

  it('adds IPv4 routes: default via a gateway, on-link, with src, mtu and metric', async () => {
    const idx = setup();
    nl.addRoute({ dst: 'default', family: 4, gateway: '10.5.0.254' });
    nl.addRoute({ dst: '10.6.0.0/16', oif: idx, scope: 'link', src: '10.5.0.1', mtu: 1300, metric: 50 });
    const routes = nl.listRoutes(4);
    expect(routes.find((r) => r.dst === '0.0.0.0/0')).toMatchObject({ gateway: '10.5.0.254', oif: idx, table: 254, scope: 'universe', type: 1 });
    expect(routes.find((r) => r.dst === '10.6.0.0/16')).toMatchObject({ scope: 'link', src: '10.5.0.1', mtu: 1300, metric: 50, oif: idx });
    const shown = await must('ip', ['-n', nsA, 'route', 'show']);
    expect(shown).toContain('default via 10.5.0.254 dev br-r');
    expect(shown).toMatch(/10\.6\.0\.0\/16 dev br-r[^\n]*scope link src 10\.5\.0\.1 metric 50 mtu 1300/);
  });

  it('adds IPv6 routes: default via a gateway and a prefix on the link', async () => {
    const idx = setup();
    nl.addRoute({ dst: 'default', family: 6, gateway: 'fd00:50::fe' });
    nl.addRoute({ dst: 'fd00:60::/48', oif: idx });
    const routes = nl.listRoutes(6);
    expect(routes.find((r) => r.dst === '::/0')).toMatchObject({ gateway: 'fd00:50::fe', oif: idx });
    expect(routes.find((r) => r.dst === 'fd00:60::/48')).toMatchObject({ oif: idx, metric: 1024 });
    const shown = await must('ip', ['-n', nsA, '-6', 'route', 'show']);
    expect(shown).toContain('default via fd00:50::fe dev br-r');
    expect(shown).toContain('fd00:60::/48 dev br-r');
  });

  it('refuses a duplicate unless replace, and replace moves the route', () => {
    const idx = setup();
    nl.addRoute({ dst: '10.7.0.0/16', gateway: '10.5.0.2' });
    const e = caught(() => nl.addRoute({ dst: '10.7.0.0/16', gateway: '10.5.0.2' }));
    expect(e.code).toBe('EEXIST');
    expect(e.message).toContain('RTM_NEWROUTE 10.7.0.0/16 via 10.5.0.2');
    nl.addRoute({ dst: '10.7.0.0/16', gateway: '10.5.0.3' }, { replace: true });
    const matching = nl.listRoutes(4).filter((r) => r.dst === '10.7.0.0/16');
    expect(matching).toEqual([expect.objectContaining({ gateway: '10.5.0.3', oif: idx })]);
  });

  it('keeps routes of other tables apart', () => {
    const idx = setup();
    nl.addRoute({ dst: '10.8.0.0/16', oif: idx, table: 1000 });
    expect(nl.listRoutes(4).some((r) => r.dst === '10.8.0.0/16')).toBe(false);
    expect(nl.listRoutes(4, { table: 1000 })).toEqual([expect.objectContaining({ dst: '10.8.0.0/16', table: 1000 })]);
    expect(nl.listRoutes(4, { table: 0 }).some((r) => r.table === 255)).toBe(true); // local table too
    expect(nl.deleteRoute({ dst: '10.8.0.0/16', table: 1000 })).toBe(true);
  });

  it('deletes routes, false when absent', () => {
    setup();
    nl.addRoute({ dst: 'default', family: 4, gateway: '10.5.0.254' });
    nl.addRoute({ dst: 'default', family: 6, gateway: 'fd00:50::fe' });
    expect(nl.deleteRoute({ dst: 'default', family: 4 })).toBe(true);
    expect(nl.deleteRoute({ dst: 'default', family: 4 })).toBe(false);
    expect(nl.deleteRoute({ dst: 'default', family: 6, gateway: 'fd00:50::fe' })).toBe(true);
    expect(nl.deleteRoute({ dst: 'default', family: 6, gateway: 'fd00:50::fe' })).toBe(false);
    expect(nl.deleteRoute({ dst: '10.99.0.0/16' })).toBe(false);
    expect(nl.listRoutes(4).some((r) => r.dst === '0.0.0.0/0')).toBe(false);
  });

  it('rejects specs that cannot be a route', () => {
    expect(caught(() => nl.addRoute({ dst: 'default' })).message).toContain('family');
    expect(caught(() => nl.addRoute({ dst: '10.0.0.0/8', gateway: 'fd00::1' })).message).toContain('not IPv4');
  });
});
