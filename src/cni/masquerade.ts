// ipMasq for the bridge plugin: traffic from a pod to anything outside its
// own subnet (multicast excepted) leaves with the node's address.
//
// Layout, in table `inet podwire-cni` (one netlink batch per call, no exec):
//   set  <net>-masq4 { type ipv4_addr . ipv4_addr; flags interval }
//   set  <net>-masq6 { type ipv6_addr . ipv6_addr; flags interval }
//   chain <net>-postrouting { type nat hook postrouting priority srcnat
//     ip saddr . ip daddr @<net>-masq4 masquerade
//     ip6 saddr . ip6 daddr @<net>-masq6 masquerade }
// Each pod address contributes elements `podaddr . <range>` for the ranges of
// destinations that are neither its subnet nor multicast, so one rule per
// family serves the whole network. Every element's comment is
// "<containerId>/<ifname>": DEL without the netns, and GC, find them by it.
// The chain is flushed and refilled in every ADD's batch, so concurrent ADDs
// (serialised by the kernel's transaction mutex) never duplicate the rule.

import { dumpElements, type DumpedElement } from '../netlink/nftables/decode.js';
import { lookupAddrs, matchNfproto } from '../netlink/nftables/match.js';
import { NftConnection, Transaction } from '../netlink/nftables/transaction.js';
import type { Chain, Element, Rule, SetDef } from '../netlink/nftables/types.js';
import { complementRanges, concat, fromBig, parseCidr, toBig, type IpFamily } from '../netlink/nftables/values.js';

export const MASQ_TABLE = 'podwire-cni';
const SRCNAT_PRIORITY = 100;
const MULTICAST: Record<IpFamily, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };

export interface MasqueradeAddOptions {
  network: string;
  containerId: string;
  ifname: string;
  /** The pod's addresses with their prefix length, e.g. "10.22.0.5/24". */
  ips: string[];
  /** Namespace holding the rules (default: the caller's, i.e. the node). */
  netnsPath?: string;
}

export interface MasqueradeRemoveOptions {
  network: string;
  containerId: string;
  ifname: string;
  /** Only these addresses' entries; without: all of the attachment's entries. */
  ips?: string[];
  netnsPath?: string;
}

export interface MasqueradeGcOptions {
  network: string;
  /** Attachments that stay; every other entry of the network is removed. */
  keep: Array<{ containerId: string; ifname: string }>;
  netnsPath?: string;
}

function checkNetwork(network: string): void {
  // The CNI spec's network name syntax; it also keeps nft's object names plain.
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(network) || network.length > 200) {
    throw new Error(`ipMasq: network name ${JSON.stringify(network)} is not a valid CNI network name`);
  }
}

function owner(containerId: string, ifname: string): string {
  const c = `${containerId}/${ifname}`;
  if (!containerId || !ifname) throw new Error('ipMasq: containerId and ifname are required');
  if (Buffer.byteLength(c) > 127) throw new Error(`ipMasq: containerId/ifname ${JSON.stringify(c)} is longer than 127 bytes`);
  return c;
}

function setDef(network: string, family: IpFamily): SetDef {
  const t = family === 4 ? 'ipv4_addr' : 'ipv6_addr';
  return { family: 'inet', table: MASQ_TABLE, name: `${network}-masq${family}`, key: [t, t], interval: true };
}

function chainDef(network: string): Chain {
  return {
    family: 'inet',
    table: MASQ_TABLE,
    name: `${network}-postrouting`,
    hook: { type: 'nat', hook: 'postrouting', priority: SRCNAT_PRIORITY },
    comment: `podwire ipMasq for network ${network}`,
  };
}

function masqRule(network: string, family: IpFamily): Rule {
  const nf = family === 4 ? 'ip' : 'ip6';
  return {
    family: 'inet',
    table: MASQ_TABLE,
    chain: chainDef(network).name,
    exprs: [...matchNfproto(nf), ...lookupAddrs(nf, ['saddr', 'daddr'], setDef(network, family).name), { op: 'masq' }],
  };
}

/** The elements that masquerade one pod address: its address . every range outside its subnet and multicast. */
export function masqueradeElements(cidr: string, comment?: string): { family: IpFamily; elements: Element[] } {
  const c = parseCidr(cidr);
  const m = parseCidr(MULTICAST[c.family]);
  const bytes = c.family === 4 ? 4 : 16;
  const ranges = complementRanges(
    [
      [toBig(c.first), toBig(c.last)],
      [toBig(m.first), toBig(m.last)],
    ],
    bytes * 8,
  );
  return {
    family: c.family,
    elements: ranges.map(([lo, hi]) => ({
      key: concat(c.address, fromBig(lo, bytes)),
      keyEnd: concat(c.address, fromBig(hi, bytes)),
      comment,
    })),
  };
}

function withConnection<T>(netnsPath: string | undefined, fn: (conn: NftConnection) => T): T {
  const conn = NftConnection.open(netnsPath);
  try {
    return fn(conn);
  } finally {
    conn.close();
  }
}

/** Makes the pod's addresses masqueraded; running it again changes nothing. */
export function ensureMasquerade(opts: MasqueradeAddOptions): void {
  checkNetwork(opts.network);
  const who = owner(opts.containerId, opts.ifname);
  const byFamily: Record<IpFamily, Element[]> = { 4: [], 6: [] };
  for (const ip of opts.ips) {
    const { family, elements } = masqueradeElements(ip, who);
    byFamily[family].push(...elements);
  }
  const tx = new Transaction().addTable({ family: 'inet', name: MASQ_TABLE, comment: 'podwire CNI: ipMasq' });
  const sets = { 4: setDef(opts.network, 4), 6: setDef(opts.network, 6) };
  tx.addSet(sets[4]).addSet(sets[6]);
  const chain = chainDef(opts.network);
  tx.addChain(chain).flushChain('inet', MASQ_TABLE, chain.name).addRule(masqRule(opts.network, 4)).addRule(masqRule(opts.network, 6));
  for (const f of [4, 6] as const) {
    // Destroy first: an element left by an earlier owner of the address
    // would otherwise keep that owner's comment.
    tx.deleteElements(sets[f], byFamily[f], { ifExists: true }).addElements(sets[f], byFamily[f]);
  }
  withConnection(opts.netnsPath, (conn) => conn.commit(tx));
}

function keyAddress(e: DumpedElement, family: IpFamily): string {
  return e.key.subarray(0, family === 4 ? 4 : 16).toString('hex');
}

function toElement(e: DumpedElement): Element {
  return { key: e.key, keyEnd: e.keyEnd };
}

/** Removes the attachment's entries (all, or those of the given addresses); nothing there is no error. */
export function removeMasquerade(opts: MasqueradeRemoveOptions): void {
  checkNetwork(opts.network);
  const who = owner(opts.containerId, opts.ifname);
  const only = opts.ips ? new Set(opts.ips.map((ip) => parseCidr(ip).address.toString('hex'))) : undefined;
  withConnection(opts.netnsPath, (conn) => {
    const tx = new Transaction();
    for (const f of [4, 6] as const) {
      const set = setDef(opts.network, f);
      const found = dumpElements(conn, set.family, set.table, set.name) ?? [];
      const mine = found.filter((e) => e.comment === who && (!only || only.has(keyAddress(e, f))));
      tx.deleteElements(set, mine.map(toElement), { ifExists: true });
    }
    conn.commit(tx);
  });
}

/** Removes every entry of the network whose attachment is not in keep; returns how many attachments went. */
export function gcMasquerade(opts: MasqueradeGcOptions): number {
  checkNetwork(opts.network);
  const keep = new Set(opts.keep.map((k) => `${k.containerId}/${k.ifname}`));
  return withConnection(opts.netnsPath, (conn) => {
    const tx = new Transaction();
    const gone = new Set<string>();
    for (const f of [4, 6] as const) {
      const set = setDef(opts.network, f);
      const stale = (dumpElements(conn, set.family, set.table, set.name) ?? []).filter((e) => !keep.has(e.comment ?? ''));
      for (const e of stale) gone.add(e.comment ?? `(no owner) ${keyAddress(e, f)}`);
      tx.deleteElements(set, stale.map(toElement), { ifExists: true });
    }
    conn.commit(tx);
    return gone.size;
  });
}

