// What a full sync needs to know about the kernel's copy of podwire's table
// after a restart: the NAMES of its chains and sets (with each set's
// parameters, which come in the same messages), one netlink dump each. No
// rules and no elements are read: kube-proxy lists its chains the same way.
import { attrStr, parseAttrs, AttrBuilder } from '../../netlink/attrs.js';
import { CHAIN_ATTR, MSG, NFT_DATA_VERDICT, SET_ATTR } from '../../netlink/nftables/consts.js';
import { msgType, nfgenmsg, setFlags, typesId, typesLen } from '../../netlink/nftables/encode.js';
import type { NftConnection, SetDef } from '../../netlink/nftables/index.js';
import { NetlinkError } from '../../netlink/socket.js';

/** A set as the kernel describes it, in the numbers it compares when a set is added again. */
export interface SetParams {
  flags: number;
  keyType: number;
  keyLen: number;
  dataType: number;
  dataLen: number;
  timeoutMs: number;
}

export interface TableNames {
  chains: ReadonlySet<string>;
  sets: ReadonlyMap<string, SetParams>;
}

/** The parameters a SetDef asks for (what encode.newSet sends). */
export function paramsOf(s: SetDef): SetParams {
  const data = s.data === 'verdict' || s.data === undefined ? undefined : s.data;
  return {
    flags: setFlags(s),
    keyType: typesId(s.key),
    keyLen: typesLen(s.key),
    dataType: s.data === 'verdict' ? NFT_DATA_VERDICT : data ? typesId(data) : 0,
    dataLen: data ? typesLen(data) : 0,
    timeoutMs: s.timeoutMs ?? 0,
  };
}

export function sameParams(a: SetParams, b: SetParams): boolean {
  // A verdict map's data length is the kernel's own (sizeof struct nft_verdict): not compared.
  const dataLen = a.dataType === NFT_DATA_VERDICT || a.dataLen === b.dataLen;
  return a.flags === b.flags && a.keyType === b.keyType && a.keyLen === b.keyLen && a.dataType === b.dataType && dataLen && a.timeoutMs === b.timeoutMs;
}

/** Names of the chains and sets of one table, or null when the table does not exist. */
export function readTableNames(conn: NftConnection, family: 'ip' | 'ip6', table: string): TableNames | null {
  const filter = new AttrBuilder().raw(nfgenmsg(family)).str(SET_ATTR.TABLE, table).build();
  let setMsgs;
  try {
    setMsgs = conn.socket.request(msgType(MSG.GETSET), 0, filter, { dump: true, what: `list sets ${family} ${table}` });
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'ENOENT') return null;
    throw e;
  }
  const sets = new Map<string, SetParams>();
  for (const m of setMsgs) {
    const a = parseAttrs(m.payload, 4);
    const name = attrStr(a.get(SET_ATTR.NAME));
    if (!name || attrStr(a.get(SET_ATTR.TABLE)) !== table) continue;
    const be32 = (t: number) => a.get(t)?.readUInt32BE(0) ?? 0;
    const timeout = a.get(SET_ATTR.TIMEOUT);
    sets.set(name, {
      flags: be32(SET_ATTR.FLAGS),
      keyType: be32(SET_ATTR.KEY_TYPE),
      keyLen: be32(SET_ATTR.KEY_LEN),
      dataType: be32(SET_ATTR.DATA_TYPE),
      dataLen: be32(SET_ATTR.DATA_LEN),
      timeoutMs: timeout ? Number(timeout.readBigUInt64BE(0)) : 0,
    });
  }
  // A chain dump is not filtered by table in the kernel: the family is, the table name is checked here.
  const chainMsgs = conn.socket.request(msgType(MSG.GETCHAIN), 0, new AttrBuilder().raw(nfgenmsg(family)).build(), { dump: true, what: `list chains ${family}` });
  const chains = new Set<string>();
  for (const m of chainMsgs) {
    const a = parseAttrs(m.payload, 4);
    const name = attrStr(a.get(CHAIN_ATTR.NAME));
    if (name && attrStr(a.get(CHAIN_ATTR.TABLE)) === table) chains.add(name);
  }
  return { chains, sets };
}
