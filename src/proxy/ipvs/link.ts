// kube-ipvs0: a dummy link holding every service address, so the kernel takes
// packets to them as local and IPVS sees them. Left down, as kube-proxy does.
import type { RouteNetlink } from '../../netlink/rtnetlink.js';
import { ensureAddressLink } from '../address-link.js';
import { IPVS_DUMMY_LINK } from './names.js';

export { hostCidr } from '../address-link.js';

/** The index of kube-ipvs0, creating it when missing. */
export function ensureDummy(rt: RouteNetlink): number {
  return ensureAddressLink(rt, IPVS_DUMMY_LINK, ['dummy']).index;
}
