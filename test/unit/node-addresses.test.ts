// The address sets the IPVS and userspace backends share: CIDR lists and node-port addresses.
import { describe, expect, it } from 'vitest';
import { config } from '../helpers/model.js';
import { cidrMatcher, nodePortIPs } from '../../src/proxy/node-addresses.js';

describe('cidrMatcher', () => {
  it('matches by family and prefix, takes an IPv4-mapped address as IPv4, and matches nothing it cannot parse', () => {
    const m = cidrMatcher(['10.96.0.0/12', 'fd00:96::/64']);
    expect(['10.96.0.1', '10.111.255.255', 'fd00:96::10', '::ffff:10.100.0.1'].map(m)).toEqual([true, true, true, true]);
    expect(['10.112.0.1', 'fd00:97::1', '::a60:1', 'not-an-ip', ''].map(m)).toEqual([false, false, false, false, false]);
    expect(cidrMatcher([])('10.0.0.1')).toBe(false);
  });
});

describe('nodePortIPs', () => {
  it("keeps the family's node addresses within --nodeport-addresses, canonical, sorted and once each", () => {
    const ips = ['fd00:0:0:0::11', '10.0.0.12', '10.0.0.11', '10.0.0.11', '192.168.5.1'];
    expect(nodePortIPs(config(), ips, { localhost: false })).toEqual(['10.0.0.11', '10.0.0.12', '192.168.5.1']);
    expect(nodePortIPs(config({ family: 6 }), ips, { localhost: true })).toEqual(['fd00::11']);
    expect(nodePortIPs(config({ nodePortAddresses: ['10.0.0.12/32', '127.0.0.0/8'] }), ips, { localhost: true })).toEqual(['10.0.0.12', '127.0.0.1']);
  });
});
