// Pure codecs of the netlink layer: IP/CIDR/MAC text, rtnetlink decoders,
// sysctl key paths and genlmsghdr.
import { describe, expect, it } from 'vitest';
import { AttrBuilder } from '../../src/netlink/attrs.js';
import { decodeGenlFamily, genlHeader } from '../../src/netlink/genetlink.js';
import * as C from '../../src/netlink/route/constants.js';
import { decodeAddr, decodeLink, decodeRoute } from '../../src/netlink/route/decode.js';
import { broadcast4, formatIp, formatMac, maskBytes, parseCidr, parseIp, parseMac, tryParseIp } from '../../src/netlink/route/ip.js';
import { isIP, isIPv4, isIPv6, parseIPv4, parseIPv6 } from '../../src/netlink/ip.js';
import { ip as nftIp, ipFamily as nftFamily, ipToString } from '../../src/netlink/nftables/values.js';
import { sysctlPath } from '../../src/netlink/sysctl.js';

describe('IP codecs', () => {
  it.each([
    ['10.1.2.3', '10.1.2.3'],
    ['::', '::'],
    ['::1', '::1'],
    ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal zero runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group stays
    ['FE80::ABCD', 'fe80::abcd'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], // the longest zero run, wherever it is
    ['0:0:1:0:0:0:0:0', '0:0:1::'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'], // no run of two
    ['0000:0000::00ff', '::ff'],
    ['::1.2.3.4', '::102:304'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['::FFFF:255.255.255.255', '::ffff:ffff:ffff'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
  ])('%s round-trips as %s', (text, canonical) => {
    expect(formatIp(parseIp(text).bytes)).toBe(canonical);
  });

  it.each([
    '', '1.2.3', '1.2.3.256', '01.2.3.4x', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '1:2:3:4:5:6:7:8::',
    // Go's rules: no leading zeros in a dotted quad, no zones.
    '01.2.3.4', '1.2.3.04', '00.0.0.0', '::ffff:01.2.3.4', 'fe80::1%eth0', 'fe80::1%1', '1.2.3.4%eth0',
    // A dotted quad only as the last 32 bits.
    '1:2:3:4:5:6:7:1.2.3.4', '1:2:3:4:5:6::1.2.3.4', '1.2.3.4::', '::1.2.3.4:1', '1:2:3:4:5:1.2.3.4', '::1.2.3', '::a.2.3.4',
    ':1::', '1::2:', ':', '1:2:3:4:5:6:7', ' 1.2.3.4', '1.2.3.4 ', '::1 ', '1.2.3.4.5',
  ])(
    'rejects %j',
    (text) => {
      expect(tryParseIp(text)).toBeNull();
    },
  );

  it('applies one rule set in route/ip.ts, nftables/values.ts and the syntax checks', () => {
    const cases = ['10.0.0.1', '010.0.0.1', '::ffff:10.0.0.1', '::ffff:010.0.0.1', 'fe80::1', 'fe80::1%eth0', '1::', '1:2:3:4:5:6:7:8::', '::1.2.3.4'];
    for (const text of cases) {
      const route = tryParseIp(text);
      const family = isIP(text);
      expect([text, route?.family ?? 0]).toEqual([text, family]);
      expect([text, isIPv4(text), isIPv6(text)]).toEqual([text, family === 4, family === 6]);
      if (family === 0) {
        expect(() => nftIp(text)).toThrow(/not an IP(v6)? address/);
        expect(() => nftFamily(text)).toThrow(/not an IP address/);
      } else {
        expect([text, nftIp(text).toString('hex'), nftFamily(text)]).toEqual([text, route!.bytes.toString('hex'), family]);
      }
    }
    expect(parseIPv4('10.1.2.3')).toBe(0x0a010203);
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIPv4('1.2.3.4.')).toBe(-1);
    // parseIPv6 fills the caller's buffer at an offset and leaves the rest alone.
    const out = Buffer.alloc(20, 0xee);
    expect(parseIPv6('fd00::1:2', out, 2)).toBe(true);
    expect(out.toString('hex')).toBe('eeee' + 'fd00000000000000000000000001' + '0002' + 'eeee');
  });

  it('formats what it parses, and parses what it formats, for every zero pattern', () => {
    let seed = 3;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor((seed / 2147483648) * n);
    };
    for (let pattern = 0; pattern < 256; pattern++) {
      // Each bit of pattern zeroes one group; the others get random values, some below 0x10.
      const b = Buffer.alloc(16);
      for (let g = 0; g < 8; g++) if (!(pattern & (1 << g))) b.writeUInt16BE(rnd(2) ? 1 + rnd(0xffff) : 1 + rnd(15), 2 * g);
      const text = formatIp(b);
      expect(text).toBe(new URL(`http://[${text}]/`).hostname.slice(1, -1)); // WHATWG's IPv6 serializer is RFC 5952's
      expect(text).toMatch(/^[0-9a-f:]+$/);
      expect(text).not.toMatch(/(^|:)0[0-9a-f]/); // no leading zeros in a group
      expect(parseIp(text).bytes.equals(b)).toBe(true);
      expect(ipToString(nftIp(text))).toBe(text);
    }
    expect(() => formatIp(new Uint8Array(5))).toThrow(/4 or 16 bytes/);
  });

  it('parses CIDRs, masks and broadcasts', () => {
    const c = parseCidr('10.1.0.5/24');
    expect(c).toMatchObject({ family: 4, prefixLen: 24 });
    expect(formatIp(maskBytes(c.bytes, 20))).toBe('10.1.0.0');
    expect(formatIp(broadcast4(c.bytes, 24))).toBe('10.1.0.255');
    expect(formatIp(broadcast4(c.bytes, 23))).toBe('10.1.1.255');
    expect(formatIp(maskBytes(parseCidr('fd00:1:2:3::9/52').bytes, 52))).toBe('fd00:1:2::');
    expect(() => parseCidr('10.0.0.0')).toThrow(/no \/prefix/);
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/out of range/);
    expect(() => parseCidr('fd00::/129')).toThrow(/out of range/);
  });

  it('parses and formats MACs', () => {
    expect(formatMac(parseMac('02:AA:bb:0c:0d:0E'))).toBe('02:aa:bb:0c:0d:0e');
    expect(() => parseMac('02:aa:bb:0c:0d')).toThrow(/not a MAC/);
    expect(formatMac(undefined)).toBe('');
  });
});

describe('rtnetlink decoders', () => {
  it('decodes an ifinfomsg with link info, master and peer namespace', () => {
    const hdr = Buffer.alloc(16);
    hdr.writeInt32LE(7, 4);
    hdr.writeUInt32LE(C.IFF_UP | C.IFF_PROMISC, 8);
    const nsid = Buffer.alloc(4);
    nsid.writeInt32LE(3);
    const p = new AttrBuilder()
      .raw(hdr)
      .str(C.IFLA_IFNAME, 'veth7')
      .u32(C.IFLA_MTU, 1450)
      .bytes(C.IFLA_ADDRESS, parseMac('02:00:00:00:00:07'))
      .u32(C.IFLA_MASTER, 2)
      .u32(C.IFLA_LINK, 9)
      .bytes(C.IFLA_LINK_NETNSID, nsid)
      .nested(C.IFLA_LINKINFO, (li) => li.str(C.IFLA_INFO_KIND, 'veth'))
      .build();
    expect(decodeLink(p)).toEqual({
      index: 7, name: 'veth7', kind: 'veth', mtu: 1450, mac: '02:00:00:00:00:07',
      up: true, promisc: true, masterIndex: 2, linkIndex: 9, linkNetnsId: 3,
    });
  });

  it('prefers IFA_LOCAL for IPv4 and IFA_FLAGS over the 8-bit flags', () => {
    const hdr = Buffer.from([C.AF_INET, 32, 0x80, 0, 5, 0, 0, 0]);
    const p = new AttrBuilder()
      .raw(hdr)
      .bytes(C.IFA_ADDRESS, parseIp('10.0.0.2').bytes)
      .bytes(C.IFA_LOCAL, parseIp('10.0.0.1').bytes)
      .u32(C.IFA_FLAGS, 0x280)
      .build();
    expect(decodeAddr(p)).toEqual({ index: 5, family: 4, address: '10.0.0.1', prefixLen: 32, cidr: '10.0.0.1/32', scope: 0, flags: 0x280 });
  });

  it('decodes a default route with a gateway, a large table and an mtu metric', () => {
    const hdr = Buffer.from([C.AF_INET6, 0, 0, 0, C.RT_TABLE_COMPAT, C.RTPROT_BOOT, 0, C.RTN_UNICAST, 0, 0, 0, 0]);
    const p = new AttrBuilder()
      .raw(hdr)
      .u32(C.RTA_TABLE, 1000)
      .bytes(C.RTA_GATEWAY, parseIp('fd00::fe').bytes)
      .u32(C.RTA_OIF, 4)
      .u32(C.RTA_PRIORITY, 1024)
      .nested(C.RTA_METRICS, (m) => m.u32(C.RTAX_MTU, 1400), false)
      .build();
    expect(decodeRoute(p)).toEqual({
      family: 6, dst: '::/0', table: 1000, protocol: 3, type: 1, flags: 0,
      scope: 'universe', gateway: 'fd00::fe', oif: 4, metric: 1024, mtu: 1400,
    });
  });
});

describe('sysctl keys', () => {
  it('maps dotted keys and takes path keys as they are', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    expect(sysctlPath('net/ipv6/conf/eth0.100/disable_ipv6')).toBe('/proc/sys/net/ipv6/conf/eth0.100/disable_ipv6');
    expect(sysctlPath('/net/ipv4/ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    for (const bad of ['', 'net..ipv4', 'net/../x', 'net/ipv4/']) expect(() => sysctlPath(bad)).toThrow(/not a sysctl key/);
  });
});

describe('generic netlink', () => {
  it('builds genlmsghdr and decodes a family reply with multicast groups', () => {
    expect(genlHeader(3, 1)).toEqual(Buffer.from([3, 1, 0, 0]));
    const p = new AttrBuilder()
      .raw(genlHeader(1, 2))
      .u16(1, 0x1c)
      .str(2, 'IPVS')
      .u32(3, 1)
      .u32(4, 0)
      .u32(5, 9)
      .nested(7, (gs) => gs.nested(1, (g) => g.str(1, 'events').u32(2, 33)))
      .build();
    const f = decodeGenlFamily(p);
    expect(f).toMatchObject({ id: 0x1c, name: 'IPVS', version: 1, hdrSize: 0, maxAttr: 9 });
    expect([...f.mcastGroups]).toEqual([['events', 33]]);
  });
});
