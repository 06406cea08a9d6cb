// macspoofchk: frames entering the bridge from a pod's host veth must carry
// the pod interface's MAC. The reference adds two chains and a jump rule per
// pod (via the nft binary); podwire keeps one rule in table `bridge
// podwire-cni` and two named sets, so a pod is two set elements:
//   set spoof-ports { type ifindex }                       ports under check
//   set spoof-ok    { type ifindex . ether_addr }          allowed source MACs
//   chain prerouting { type filter hook prerouting priority -300
//     iif @spoof-ports iif . ether saddr != @spoof-ok drop }
// Elements carry "<containerId>/<ifname>" as comment, so DEL and GC find them.
import { REG, REG32_00 } from '../../netlink/nftables/consts.js';
import { dumpElements } from '../../netlink/nftables/decode.js';
import { NftConnection, NftError, Transaction } from '../../netlink/nftables/transaction.js';
import type { Chain, Element, Rule, SetDef } from '../../netlink/nftables/types.js';
import { parseMac } from '../../netlink/route/ip.js';

export const SPOOF_TABLE = 'podwire-cni';
const PORTS: SetDef = { family: 'bridge', table: SPOOF_TABLE, name: 'spoof-ports', key: ['ifindex'] };
const ALLOWED: SetDef = { family: 'bridge', table: SPOOF_TABLE, name: 'spoof-ok', key: ['ifindex', 'ether_addr'] };
const CHAIN: Chain = {
  family: 'bridge',
  table: SPOOF_TABLE,
  name: 'prerouting',
  hook: { type: 'filter', hook: 'prerouting', priority: -300, policy: 'accept' },
  comment: 'podwire CNI: macspoofchk',
};

function rule(): Rule {
  return {
    family: 'bridge',
    table: SPOOF_TABLE,
    chain: CHAIN.name,
    exprs: [
      { op: 'meta', key: 'iif', dreg: REG.R1 },
      { op: 'lookup', set: PORTS.name, sreg: REG.R1 },
      { op: 'meta', key: 'iif', dreg: REG32_00 },
      // ether saddr: 6 bytes at offset 6 of the link-layer header, in the next 32-bit registers.
      { op: 'payload', base: 'll', offset: 6, len: 6, dreg: REG32_00 + 1 },
      { op: 'lookup', set: ALLOWED.name, sreg: REG32_00, invert: true },
      { op: 'verdict', verdict: { kind: 'drop' } },
    ],
  };
}

function ifindexKey(index: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(index); // meta iif is in host order (x86/arm64: little-endian)
  return b;
}

function elements(hostIndex: number, podMac: string, owner: string): { port: Element; allowed: Element } {
  const mac = Buffer.alloc(8); // concatenation fields are padded to 4 bytes
  parseMac(podMac).copy(mac);
  return {
    port: { key: ifindexKey(hostIndex), comment: owner },
    allowed: { key: Buffer.concat([ifindexKey(hostIndex), mac]), comment: owner },
  };
}

function withConnection<T>(netnsPath: string | undefined, fn: (c: NftConnection) => T, given?: NftConnection): T {
  if (given) return fn(given);
  const c = NftConnection.open(netnsPath);
  try {
    return fn(c);
  } finally {
    c.close();
  }
}

/** Starts checking the host veth's frames against the pod's MAC; idempotent. */
export function ensureSpoofCheck(opts: { hostIndex: number; podMac: string; owner: string; netnsPath?: string }): void {
  const { port, allowed } = elements(opts.hostIndex, opts.podMac, opts.owner);
  const fill = (tx: Transaction) =>
    tx.deleteElements(ALLOWED, [allowed], { ifExists: true }).addElements(ALLOWED, [allowed]).deleteElements(PORTS, [port], { ifExists: true }).addElements(PORTS, [port]);
  withConnection(opts.netnsPath, (conn) => {
    if (!conn.chainExists('bridge', SPOOF_TABLE, CHAIN.name)) {
      const tx = new Transaction()
        .addTable({ family: 'bridge', name: SPOOF_TABLE, comment: 'podwire CNI' })
        .addSet(PORTS)
        .addSet(ALLOWED)
        .createChain(CHAIN)
        .addRule(rule());
      try {
        conn.commit(fill(tx));
        return;
      } catch (e) {
        // Another ADD created the chain (and its rule) first: add our elements only.
        if (!(e instanceof NftError && e.code === 'EEXIST')) throw e;
      }
    }
    conn.commit(fill(new Transaction()));
  });
}

/** Removes the elements of these owners (or, with keep, of everyone else); returns how many owners went. */
function removeWhere(netnsPath: string | undefined, drop: (owner: string) => boolean, given?: NftConnection): number {
  return withConnection(netnsPath, (conn) => {
    const tx = new Transaction();
    const gone = new Set<string>();
    for (const set of [PORTS, ALLOWED]) {
      const mine = (dumpElements(conn, set.family, set.table, set.name) ?? []).filter((e) => drop(e.comment ?? ''));
      for (const e of mine) gone.add(e.comment ?? '');
      if (mine.length > 0) tx.deleteElements(set, mine.map((e) => ({ key: e.key })), { ifExists: true });
    }
    conn.commit(tx);
    return gone.size;
  }, given);
}

/** Removes the owner's elements; with conn, on that open connection (left open, see removeMasquerade). */
export function removeSpoofCheck(opts: { owner: string; netnsPath?: string; conn?: NftConnection }): void {
  removeWhere(opts.netnsPath, (o) => o === opts.owner, opts.conn);
}

export function gcSpoofCheck(opts: { keep: string[]; netnsPath?: string }): number {
  const keep = new Set(opts.keep);
  return removeWhere(opts.netnsPath, (o) => !keep.has(o));
}
