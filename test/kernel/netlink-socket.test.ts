import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, NetlinkSocket, NETLINK_ROUTE } from '../../src/netlink/socket.js';
import { AttrBuilder, attrStr, parseAttrs } from '../../src/netlink/attrs.js';
import { NetnsScope, netnsPath } from '../helpers/netns.js';

const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;

const scope = new NetnsScope('sock');
let ns = '';

beforeAll(async () => {
  await scope.cleanup();
  ns = await scope.create('a');
});
afterAll(() => scope.cleanup());

function ifinfomsg(index = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  return b;
}

describe('NetlinkSocket', () => {
  it('dumps the links of the namespace it was opened in', () => {
    const s = NetlinkSocket.open(NETLINK_ROUTE, netnsPath(ns));
    try {
      const names = s.request(RTM_GETLINK, 0, ifinfomsg(), { dump: true }).map((m) => attrStr(parseAttrs(m.payload, 16).get(IFLA_IFNAME)));
      expect(names).toEqual(['lo']);
    } finally {
      s.close();
    }
  });

  it('creates a link, and reports EEXIST with the errno when it exists', () => {
    const s = NetlinkSocket.open(NETLINK_ROUTE, netnsPath(ns));
    try {
      const body = new AttrBuilder()
        .raw(ifinfomsg())
        .str(IFLA_IFNAME, 'br-test0')
        .nested(IFLA_LINKINFO, (li) => li.str(IFLA_INFO_KIND, 'bridge'))
        .build();
      s.request(RTM_NEWLINK, 0x400 | 0x200, body);
      let err: unknown;
      try {
        s.request(RTM_NEWLINK, 0x400 | 0x200, body);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NetlinkError);
      expect((err as NetlinkError).code).toBe('EEXIST');
    } finally {
      s.close();
    }
  });

  it('fails clearly for a namespace that does not exist', () => {
    expect(() => NetlinkSocket.open(NETLINK_ROUTE, '/run/netns/pw-t-sock-missing')).toThrow(/ENOENT/);
  });
});
