// A link that holds service addresses so the kernel delivers packets to them
// locally: kube-ipvs0 (IPVS mode) and podwire-us0 (userspace mode). Both are
// left down and hold host routes (/32, /128); a full sync makes them hold
// exactly the wanted addresses.
import { AttrBuilder } from '../netlink/attrs.js';
import { NLM_F_CREATE, NLM_F_EXCL } from '../netlink/message.js';
import { NetlinkError } from '../netlink/socket.js';
import type { AddrInfo, RouteNetlink } from '../netlink/rtnetlink.js';
import type { IPFamily } from './model.js';

const RTM_NEWLINK = 16;
const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;

export function hostCidr(address: string): string {
  return address.includes(':') ? `${address}/128` : `${address}/32`;
}

/**
 * The link called name, created with the first of kinds this kernel has when it is missing; refuses a link of
 * that name of any other kind (it is someone else's).
 */
export function ensureAddressLink(rt: RouteNetlink, name: string, kinds: readonly string[]): { index: number; kind: string } {
  const have = rt.getLink(name);
  if (have) {
    if (!kinds.includes(have.kind ?? '')) throw new Error(`${name} exists as a ${have.kind ?? 'device without a kind'}; podwire will not take it over`);
    return { index: have.index, kind: have.kind! };
  }
  const missing: string[] = [];
  for (const kind of kinds) {
    const b = new AttrBuilder().raw(Buffer.alloc(16)).str(IFLA_IFNAME, name).nested(IFLA_LINKINFO, (li) => li.str(IFLA_INFO_KIND, kind));
    try {
      rt.sock.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, b.build(), { what: `RTM_NEWLINK ${kind} ${name}` });
    } catch (e) {
      // EOPNOTSUPP: no such driver in this kernel. EEXIST: the other family's backend made it meanwhile.
      if (e instanceof NetlinkError && e.code === 'EOPNOTSUPP') {
        missing.push(`${kind}: ${e.code}`);
        continue;
      }
      if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
    }
    const link = rt.getLink(name);
    if (!link) throw new Error(`${name}: created but not found right after`);
    return { index: link.index, kind: link.kind ?? kind };
  }
  throw new Error(`cannot create ${name}: ${missing.join(', ')}`);
}

/**
 * Makes the link's addresses of family exactly the host routes of want, leaving alone those keep accepts (link-local
 * ones, excluded CIDRs); returns how many it added or deleted.
 */
export function reconcileHostAddresses(rt: RouteNetlink, index: number, family: IPFamily, want: Iterable<string>, keep: (a: AddrInfo) => boolean = () => false): number {
  const wantCidrs = new Set([...want].map(hostCidr));
  const have = rt.listAddresses({ index, family });
  let changes = 0;
  for (const a of have) {
    if (wantCidrs.has(a.cidr) || keep(a)) continue;
    rt.deleteAddress(index, a.cidr);
    changes++;
  }
  const haveSet = new Set(have.map((a) => a.cidr));
  for (const c of wantCidrs) {
    if (haveSet.has(c)) continue;
    rt.addAddress(index, c, { noDad: true });
    changes++;
  }
  return changes;
}
