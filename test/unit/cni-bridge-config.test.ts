// Pure parts of the bridge plugin: config keys with the reference's rules,
// and the gateway / default-route plan between IPAM and the kernel.
import { describe, expect, it } from 'vitest';
import { collectVlanTrunk, normalizeMac, parseBridgeConf } from '../../src/cni/bridge/config.js';
import { cidrsOverlap, firstHost, planGateways } from '../../src/cni/bridge/gateways.js';
import { CniError } from '../../src/cni/spec/errors.js';

const base = { cniVersion: '1.0.0', name: 'n', type: 'podwire-bridge' };

function codeOf(f: () => unknown): number | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof CniError ? e.code : -1;
  }
  return undefined;
}

describe('parseBridgeConf', () => {
  it('has the reference defaults', () => {
    const c = parseBridgeConf(base, {});
    expect(c).toMatchObject({ bridge: 'cni0', isGateway: false, ipMasq: false, mtu: 0, vlan: 0, vlans: [], mac: undefined, ipamType: undefined });
  });

  it('isDefaultGateway implies isGateway', () => {
    expect(parseBridgeConf({ ...base, isDefaultGateway: true }, {}).isGateway).toBe(true);
  });

  it('takes the MAC from runtimeConfig over args.cni over CNI_ARGS', () => {
    expect(parseBridgeConf(base, { MAC: '0A-58-00-00-00-01' }).mac).toBe('0a:58:00:00:00:01');
    expect(parseBridgeConf({ ...base, args: { cni: { mac: '0a:58:00:00:00:02' } } }, { MAC: '0a:58:00:00:00:01' }).mac).toBe('0a:58:00:00:00:02');
    expect(
      parseBridgeConf({ ...base, args: { cni: { mac: '0a:58:00:00:00:02' } }, runtimeConfig: { mac: '0a:58:00:00:00:03' } }, {}).mac,
    ).toBe('0a:58:00:00:00:03');
  });

  it('rejects bad values with code 7 and a message naming the key', () => {
    expect(codeOf(() => parseBridgeConf({ ...base, mtu: 'big' }, {}))).toBe(7);
    expect(() => parseBridgeConf({ ...base, isGateway: 'yes' }, {})).toThrow(/"isGateway" must be true or false/);
    expect(() => parseBridgeConf({ ...base, vlan: 5000 }, {})).toThrow(/"vlan" is 5000; it must be between 0 and 4094/);
    expect(() => parseBridgeConf({ ...base, bridge: 'a-very-long-bridge-name' }, {})).toThrow(/1 to 15 bytes/);
    expect(() => parseBridgeConf({ ...base, hairpinMode: true, promiscMode: true }, {})).toThrow(/cannot both be set/);
    expect(() => parseBridgeConf({ ...base, disableContainerInterface: true, ipam: { type: 'host-local' } }, {})).toThrow(/disableContainerInterface/);
    expect(() => parseBridgeConf({ ...base, ipMasqBackend: 'pf' }, {})).toThrow(/unknown ipMasqBackend "pf"/);
    expect(codeOf(() => parseBridgeConf(base, { MAC: 'nope' }))).toBe(7);
    expect(() => normalizeMac('01:00:5e:00:00:01', 'runtimeConfig.mac')).toThrow(/multicast/);
  });

  it('expands vlanTrunk like the reference', () => {
    expect(collectVlanTrunk([{ minID: 10, maxID: 12 }, { id: 11 }, { id: 5 }])).toEqual([5, 10, 11, 12]);
    expect(() => collectVlanTrunk([{ minID: 10 }])).toThrow(/maxID is missing/);
    expect(() => collectVlanTrunk([{ minID: 12, maxID: 10 }])).toThrow(/greater than maxID/);
    expect(() => collectVlanTrunk([{ id: 0 }])).toThrow(/vlanTrunk\[0\]\.id/);
  });

  it('keeps dns only when it says something', () => {
    expect(parseBridgeConf({ ...base, dns: {} }, {}).dns).toBeUndefined();
    expect(parseBridgeConf({ ...base, dns: { nameservers: ['10.0.0.10'] } }, {}).dns).toEqual({ nameservers: ['10.0.0.10'] });
  });
});

describe('planGateways', () => {
  it('computes the first host as gateway and adds one default route per family', () => {
    const p = planGateways(
      { ips: [{ address: '10.1.2.7/24' }, { address: 'fd00::9/64' }, { address: '10.9.0.5/16' }], routes: [] },
      { isGateway: true, isDefaultGateway: true },
      2,
    );
    expect(p.ips).toEqual([
      { address: '10.1.2.7/24', gateway: '10.1.2.1', interface: 2 },
      { address: 'fd00::9/64', gateway: 'fd00::1', interface: 2 },
      { address: '10.9.0.5/16', gateway: '10.9.0.1', interface: 2 },
    ]);
    expect(p.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.1.2.1' }, { dst: '::/0', gw: 'fd00::1' }]);
    expect(p.bridgeAddrs).toEqual({ 4: ['10.1.2.1/24', '10.9.0.1/16'], 6: ['fd00::1/64'] });
  });

  it('keeps the IPAM gateway and an IPAM default route with a gateway', () => {
    const p = planGateways(
      { ips: [{ address: '10.1.2.7/24', gateway: '10.1.2.254' }], routes: [{ dst: '0.0.0.0/0', gw: '10.1.2.254' }] },
      { isGateway: true, isDefaultGateway: true },
      2,
    );
    expect(p.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.1.2.254' }]);
    expect(p.bridgeAddrs[4]).toEqual(['10.1.2.254/24']);
  });

  it('without isGateway adds no gateway and no bridge address', () => {
    const p = planGateways({ ips: [{ address: '10.1.2.7/24' }], routes: [] }, { isGateway: false, isDefaultGateway: false }, 2);
    expect(p.ips).toEqual([{ address: '10.1.2.7/24', interface: 2 }]);
    expect(p.bridgeAddrs).toEqual({ 4: [], 6: [] });
  });

  it('helpers', () => {
    expect(firstHost('10.0.0.255/23')).toBe('10.0.0.1');
    expect(firstHost('fd00::ff/120')).toBe('fd00::1');
    expect(cidrsOverlap('fd00::/64', 'fd00::1/128')).toBe(true);
    expect(cidrsOverlap('10.0.0.0/24', '10.0.1.0/24')).toBe(false);
  });
});
