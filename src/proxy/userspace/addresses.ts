// podwire-us0: the link that holds every service address (cluster IPs,
// external IPs, load-balancer VIPs), so packets to them are delivered
// locally, where the daemon listens. It is left down, like kube-ipvs0: local
// routes of a down link's addresses still deliver (IPv6 needs IFA_F_NODAD, or
// the address stays tentative), and a down link takes no traffic of its own.
import { AttrBuilder } from '../../netlink/attrs.js';
import { NLM_F_CREATE, NLM_F_EXCL } from '../../netlink/message.js';
import { NetlinkError } from '../../netlink/socket.js';
import { RouteNetlink } from '../../netlink/rtnetlink.js';
import type { IPFamily } from '../model.js';

export const USERSPACE_LINK = 'podwire-us0';

const RTM_NEWLINK = 16;
const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const RT_SCOPE_LINK = 253;

/**
 * Link kinds tried in order. A dummy is the natural holder; kernels built
 * without CONFIG_DUMMY (some minimal VM kernels) get an ifb, then a portless
 * bridge, which hold addresses the same way while down.
 */
const KINDS = ['dummy', 'ifb', 'bridge'] as const;

export function hostCidr(address: string): string {
  return address.includes(':') ? `${address}/128` : `${address}/32`;
}

export class AddressLink {
  private rt: RouteNetlink | null = null;
  private index = 0;
  /** The kind the link was found or created with. */
  kind = '';

  constructor(private readonly family: IPFamily) {}

  private sock(): RouteNetlink {
    this.rt ??= RouteNetlink.open();
    return this.rt;
  }

  /** The link's index, creating it when missing (looked up afresh: someone may have deleted it). */
  ensure(): number {
    const rt = this.sock();
    const have = rt.getLink(USERSPACE_LINK);
    if (have) {
      if (!KINDS.includes(have.kind as (typeof KINDS)[number])) throw new Error(`${USERSPACE_LINK} exists as a ${have.kind ?? 'device without a kind'}; podwire will not take it over`);
      this.kind = have.kind!;
      this.index = have.index;
      return have.index;
    }
    const errors: string[] = [];
    for (const kind of KINDS) {
      const b = new AttrBuilder().raw(Buffer.alloc(16)).str(IFLA_IFNAME, USERSPACE_LINK).nested(IFLA_LINKINFO, (li) => li.str(IFLA_INFO_KIND, kind));
      try {
        rt.sock.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, b.build(), { what: `RTM_NEWLINK ${kind} ${USERSPACE_LINK}` });
      } catch (e) {
        // EOPNOTSUPP: this kernel has no such driver. EEXIST: the other family's backend made it meanwhile.
        if (e instanceof NetlinkError && e.code === 'EOPNOTSUPP') {
          errors.push(`${kind}: ${e.code}`);
          continue;
        }
        if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
      }
      const link = rt.getLink(USERSPACE_LINK);
      if (!link) throw new Error(`${USERSPACE_LINK}: created but not found right after`);
      this.kind = link.kind ?? kind;
      this.index = link.index;
      return link.index;
    }
    throw new Error(`cannot create ${USERSPACE_LINK}: ${errors.join(', ')}`);
  }

  /** This family's addresses on the link now (empty when there is no link yet). */
  current(): Set<string> {
    const rt = this.sock();
    const link = rt.getLink(USERSPACE_LINK);
    if (!link) return new Set();
    return new Set(rt.listAddresses({ index: link.index, family: this.family }).map((a) => a.address));
  }

  /** Makes this family's addresses on the link exactly `want`; returns how many changed. */
  reconcile(want: ReadonlySet<string>): number {
    const rt = this.sock();
    const index = this.ensure();
    let changes = 0;
    const have = rt.listAddresses({ index, family: this.family }).filter((a) => a.scope !== RT_SCOPE_LINK);
    const wantCidrs = new Set([...want].map(hostCidr));
    for (const a of have) {
      if (wantCidrs.has(a.cidr)) continue;
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

  /** Adds one address (partial syncs); already there is fine. */
  add(address: string): void {
    if (!this.index) this.ensure();
    this.sock().addAddress(this.index, hostCidr(address), { noDad: true, replace: true });
  }

  /** Removes one address (partial syncs); already gone is fine. */
  remove(address: string): void {
    if (!this.index) this.ensure();
    this.sock().deleteAddress(this.index, hostCidr(address));
  }

  /** Deletes the link (both families' addresses go with it); false when it was not there. */
  destroy(): boolean {
    const gone = this.sock().deleteLinkByName(USERSPACE_LINK);
    this.index = 0;
    return gone;
  }

  close(): void {
    this.rt?.close();
    this.rt = null;
    this.index = 0;
  }
}
