// kube-ipvs0: a dummy link holding every service address, so the kernel takes
// packets to them as local and IPVS sees them. Left down, as kube-proxy does.
import { AttrBuilder } from '../../netlink/attrs.js';
import { NLM_F_CREATE, NLM_F_EXCL } from '../../netlink/message.js';
import { NetlinkError } from '../../netlink/socket.js';
import type { RouteNetlink } from '../../netlink/rtnetlink.js';
import { IPVS_DUMMY_LINK } from './names.js';

const RTM_NEWLINK = 16;
const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;

/** The index of kube-ipvs0, creating it when missing. */
export function ensureDummy(rt: RouteNetlink): number {
  const have = rt.getLink(IPVS_DUMMY_LINK);
  if (have) return have.index;
  const b = new AttrBuilder().raw(Buffer.alloc(16)).str(IFLA_IFNAME, IPVS_DUMMY_LINK).nested(IFLA_LINKINFO, (li) => li.str(IFLA_INFO_KIND, 'dummy'));
  try {
    rt.sock.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, b.build(), { what: `RTM_NEWLINK dummy ${IPVS_DUMMY_LINK}` });
  } catch (e) {
    if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
  }
  const link = rt.getLink(IPVS_DUMMY_LINK);
  if (!link) throw new Error(`${IPVS_DUMMY_LINK}: created but not found right after`);
  return link.index;
}

export function hostCidr(address: string): string {
  return address.includes(':') ? `${address}/128` : `${address}/32`;
}
