// podwire-us0: the link that holds every service address (cluster IPs,
// external IPs, load-balancer VIPs), so packets to them are delivered
// locally, where the daemon listens. It is left down, like kube-ipvs0: local
// routes of a down link's addresses still deliver (IPv6 needs IFA_F_NODAD, or
// the address stays tentative), and a down link takes no traffic of its own.
import { RouteNetlink } from '../../netlink/rtnetlink.js';
import { ensureAddressLink, hostCidr, reconcileHostAddresses } from '../address-link.js';
import type { IPFamily } from '../model.js';

export const USERSPACE_LINK = 'podwire-us0';

const RT_SCOPE_LINK = 253;

/**
 * Link kinds tried in order. A dummy is the natural holder; kernels built
 * without CONFIG_DUMMY (this machine's, some minimal VM kernels) get an ifb,
 * then a portless bridge, which hold addresses the same way while down.
 */
const KINDS = ['dummy', 'ifb', 'bridge'] as const;

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
    const { index, kind } = ensureAddressLink(this.sock(), USERSPACE_LINK, KINDS);
    this.kind = kind;
    this.index = index;
    return index;
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
    return reconcileHostAddresses(this.sock(), this.ensure(), this.family, want, (a) => a.scope === RT_SCOPE_LINK);
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
