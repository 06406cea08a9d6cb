// ipMasq for the bridge plugin: traffic from a pod to anything outside its
// network's subnets (multicast excepted) leaves with the node's address.
//
// Layout, in table `inet podwire-cni` (one netlink batch per call, no exec):
//   set  <net>-pods4   { type ipv4_addr }                  pod addresses
//   set  <net>-local4  { type ipv4_addr; flags interval }  the pods' subnets
//   (and -pods6 / -local6 for IPv6)
//   chain <net>-postrouting { type nat hook postrouting priority srcnat
//     ip saddr @<net>-pods4 ip daddr != @<net>-local4 ip daddr != 224.0.0.0/4 masquerade
//     ip6 saddr @<net>-pods6 ip6 daddr != @<net>-local6 ip6 daddr != ff00::/8 masquerade }
// One rule per family serves the whole network. Pod addresses live in hash
// sets (deleting from a concatenated interval set costs the kernel ~8 ms, a
// hash set 0.1 ms); every element's comment is "<containerId>/<ifname>", so
// DEL without the netns, and GC, find them by it. Subnets are only added:
// they are the network's, not a pod's. Concurrent ADDs (serialised by the
// kernel's transaction mutex) never duplicate the rules: the chain is created
// with `create` (exclusive) in the same batch as its rules.
import { dumpElements } from '../netlink/nftables/decode.js';
import { loadAddr, matchNfproto } from '../netlink/nftables/match.js';
import { NftConnection, NftError, Transaction } from '../netlink/nftables/transaction.js';
import type { Chain, Element, Expr, Rule, SetDef } from '../netlink/nftables/types.js';
import { REG } from '../netlink/nftables/consts.js';
import { parseCidr, type IpFamily } from '../netlink/nftables/values.js';

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
  /**
   * An open connection to use and leave open (netnsPath is then ignored). A
   * deletion leaves RCU work in the kernel that closing the socket waits for
   * (~10 ms); a caller with slow work of its own (deleting a veth) closes it
   * after that work, when the kernel is long done.
   */
  conn?: NftConnection;
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

function podSet(network: string, family: IpFamily): SetDef {
  return { family: 'inet', table: MASQ_TABLE, name: `${network}-pods${family}`, key: [family === 4 ? 'ipv4_addr' : 'ipv6_addr'] };
}

function localSet(network: string, family: IpFamily): SetDef {
  return { family: 'inet', table: MASQ_TABLE, name: `${network}-local${family}`, key: [family === 4 ? 'ipv4_addr' : 'ipv6_addr'], interval: true };
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

/** `<family> daddr != <prefix>` as nft encodes a prefix: mask, then compare. */
function daddrNotIn(nf: 'ip' | 'ip6', prefix: string): Expr[] {
  const c = parseCidr(prefix);
  const len = c.first.length;
  const mask = Buffer.alloc(len);
  for (let bit = 0; bit < c.prefix; bit++) mask[bit >> 3]! |= 0x80 >> (bit & 7);
  return [
    loadAddr(nf, 'daddr', REG.R1),
    { op: 'bitwise', sreg: REG.R1, dreg: REG.R1, len, mask, xor: Buffer.alloc(len) },
    { op: 'cmp', sreg: REG.R1, cmp: 'neq', data: c.first },
  ];
}

export function masqRule(network: string, family: IpFamily): Rule {
  const nf = family === 4 ? 'ip' : 'ip6';
  return {
    family: 'inet',
    table: MASQ_TABLE,
    chain: chainDef(network).name,
    exprs: [
      ...matchNfproto(nf),
      loadAddr(nf, 'saddr', REG.R1),
      { op: 'lookup', set: podSet(network, family).name, sreg: REG.R1 },
      loadAddr(nf, 'daddr', REG.R1),
      { op: 'lookup', set: localSet(network, family).name, sreg: REG.R1, invert: true },
      ...daddrNotIn(nf, MULTICAST[family]),
      { op: 'masq' },
    ],
  };
}

function withConnection<T>(netnsPath: string | undefined, fn: (conn: NftConnection) => T, given?: NftConnection): T {
  if (given) return fn(given);
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
  const pods: Record<IpFamily, Element[]> = { 4: [], 6: [] };
  const subnets: Record<IpFamily, Element[]> = { 4: [], 6: [] };
  for (const ip of opts.ips) {
    const c = parseCidr(ip);
    pods[c.family].push({ key: c.address, comment: who });
    subnets[c.family].push({ key: c.first, keyEnd: c.last });
  }
  const chain = chainDef(opts.network);
  const build = (withChain: boolean): Transaction => {
    const tx = new Transaction().addTable({ family: 'inet', name: MASQ_TABLE, comment: 'podwire CNI: ipMasq' });
    for (const f of [4, 6] as const) tx.addSet(podSet(opts.network, f)).addSet(localSet(opts.network, f));
    if (withChain) tx.createChain(chain).addRule(masqRule(opts.network, 4)).addRule(masqRule(opts.network, 6));
    for (const f of [4, 6] as const) {
      // Destroy first: an element left by an earlier owner of the address
      // would otherwise keep that owner's comment.
      tx.deleteElements(podSet(opts.network, f), pods[f], { ifExists: true }).addElements(podSet(opts.network, f), pods[f]);
      tx.addElements(localSet(opts.network, f), subnets[f]);
    }
    return tx;
  };
  withConnection(opts.netnsPath, (conn) => {
    // The chain and its rules are made once, by whichever ADD comes first
    // (`create` fails for the others, which then add elements only). Nothing
    // is deleted on the common path: deletions leave the kernel RCU work that
    // closing the socket waits for (~10 ms).
    if (conn.chainExists('inet', MASQ_TABLE, chain.name)) return conn.commit(build(false));
    try {
      conn.commit(build(true));
    } catch (e) {
      if (!(e instanceof NftError && e.code === 'EEXIST' && e.object.startsWith('create chain'))) throw e;
      conn.commit(build(false));
    }
  });
}

/** Removes the attachment's entries (all, or those of the given addresses); nothing there is no error. */
export function removeMasquerade(opts: MasqueradeRemoveOptions): void {
  checkNetwork(opts.network);
  const who = owner(opts.containerId, opts.ifname);
  const only = opts.ips ? new Set(opts.ips.map((ip) => parseCidr(ip).address.toString('hex'))) : undefined;
  withConnection(opts.netnsPath, (conn) => {
    const tx = new Transaction();
    for (const f of [4, 6] as const) {
      const set = podSet(opts.network, f);
      const found = dumpElements(conn, set.family, set.table, set.name) ?? [];
      const mine = found.filter((e) => e.comment === who && (!only || only.has(e.key.toString('hex'))));
      tx.deleteElements(set, mine.map((e) => ({ key: e.key })), { ifExists: true });
    }
    conn.commit(tx);
  }, opts.conn);
}

/** Removes every entry of the network whose attachment is not in keep; returns how many attachments went. */
export function gcMasquerade(opts: MasqueradeGcOptions): number {
  checkNetwork(opts.network);
  const keep = new Set(opts.keep.map((k) => `${k.containerId}/${k.ifname}`));
  return withConnection(opts.netnsPath, (conn) => {
    const tx = new Transaction();
    const gone = new Set<string>();
    for (const f of [4, 6] as const) {
      const set = podSet(opts.network, f);
      const stale = (dumpElements(conn, set.family, set.table, set.name) ?? []).filter((e) => !keep.has(e.comment ?? ''));
      for (const e of stale) gone.add(e.comment ?? `(no owner) ${e.key.toString('hex')}`);
      tx.deleteElements(set, stale.map((e) => ({ key: e.key })), { ifExists: true });
    }
    conn.commit(tx);
    return gone.size;
  });
}
