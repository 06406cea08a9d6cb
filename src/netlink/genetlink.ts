// Generic netlink: resolving a family (IPVS, …) to its dynamic id through the
// "nlctrl" controller, and the genlmsghdr every generic message starts with.
import { AttrBuilder, attrStr, attrU16, attrU32, parseAttrList, parseAttrs } from './attrs.js';
import { NetlinkError, type NetlinkSocket } from './socket.js';

export const GENL_ID_CTRL = 0x10;
export const GENL_HDRLEN = 4;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;
const CTRL_ATTR_VERSION = 3;
const CTRL_ATTR_HDRSIZE = 4;
const CTRL_ATTR_MAXATTR = 5;
const CTRL_ATTR_MCAST_GROUPS = 7;
const CTRL_ATTR_MCAST_GRP_NAME = 1;
const CTRL_ATTR_MCAST_GRP_ID = 2;
const EPROTO = 71;

export interface GenlFamily {
  id: number;
  name: string;
  version: number;
  /** Size of the family's own header after genlmsghdr. */
  hdrSize: number;
  maxAttr: number;
  /** Multicast group name -> group id. */
  mcastGroups: Map<string, number>;
}

/** The 4-byte genlmsghdr: command, version, reserved. */
export function genlHeader(cmd: number, version: number): Buffer {
  return Buffer.from([cmd & 0xff, version & 0xff, 0, 0]);
}

/** Decodes a CTRL_CMD_NEWFAMILY reply payload (genlmsghdr + attributes). */
export function decodeGenlFamily(payload: Buffer): GenlFamily {
  const a = parseAttrs(payload, GENL_HDRLEN);
  const id = attrU16(a.get(CTRL_ATTR_FAMILY_ID));
  const name = attrStr(a.get(CTRL_ATTR_FAMILY_NAME));
  if (id === undefined || name === undefined) throw new NetlinkError('nlctrl reply without family id or name', EPROTO, 0);
  const mcastGroups = new Map<string, number>();
  const groups = a.get(CTRL_ATTR_MCAST_GROUPS);
  if (groups) {
    for (const g of parseAttrList(groups)) {
      const ga = parseAttrs(g.value);
      const gname = attrStr(ga.get(CTRL_ATTR_MCAST_GRP_NAME));
      const gid = attrU32(ga.get(CTRL_ATTR_MCAST_GRP_ID));
      if (gname !== undefined && gid !== undefined) mcastGroups.set(gname, gid);
    }
  }
  return {
    id,
    name,
    version: attrU32(a.get(CTRL_ATTR_VERSION)) ?? 0,
    hdrSize: attrU32(a.get(CTRL_ATTR_HDRSIZE)) ?? 0,
    maxAttr: attrU32(a.get(CTRL_ATTR_MAXATTR)) ?? 0,
    mcastGroups,
  };
}

/** Looks a family up by name on a NETLINK_GENERIC socket; NetlinkError ENOENT when the kernel has none. */
export function resolveGenlFamily(sock: NetlinkSocket, name: string): GenlFamily {
  const body = new AttrBuilder().raw(genlHeader(CTRL_CMD_GETFAMILY, 1)).str(CTRL_ATTR_FAMILY_NAME, name).build();
  const replies = sock.request(GENL_ID_CTRL, 0, body, { what: `generic netlink family ${name}` });
  const reply = replies.find((m) => m.type === GENL_ID_CTRL);
  if (!reply) throw new NetlinkError(`generic netlink family ${name}: nlctrl sent no answer`, EPROTO, 0);
  return decodeGenlFamily(reply.payload);
}
