// Reads set elements back from the kernel (GETSETELEM dump). Used off the hot
// path only: by the CNI plugin's DEL and GC, which must find elements by the
// comment that names their container, and by tests.
import { parseAttrList, parseAttrs } from '../attrs.js';
import { NetlinkError } from '../socket.js';
import { DATA_ATTR, ELEM_ATTR, ELEM_LIST_ATTR, MSG } from './consts.js';
import { msgType, nfgenmsg } from './encode.js';
import { AttrBuilder } from '../attrs.js';
import type { NftConnection } from './transaction.js';
import type { Family } from './types.js';

export interface DumpedElement {
  key: Buffer;
  keyEnd?: Buffer;
  /** Map data value (verdict data is not decoded). */
  data?: Buffer;
  flags: number;
  comment?: string;
}

function value(nested: Buffer | undefined): Buffer | undefined {
  if (!nested) return undefined;
  const v = parseAttrs(nested).get(DATA_ATTR.VALUE);
  return v ? Buffer.from(v) : undefined;
}

function comment(ud: Buffer | undefined): string | undefined {
  if (!ud) return undefined;
  for (let off = 0; off + 2 <= ud.length; ) {
    const type = ud[off]!;
    const len = ud[off + 1]!;
    if (type === 0) {
      const v = ud.subarray(off + 2, off + 2 + len);
      const nul = v.indexOf(0);
      return v.toString('utf8', 0, nul < 0 ? v.length : nul);
    }
    off += 2 + len;
  }
  return undefined;
}

/** Every element of a set, or null when the table or set does not exist. */
export function dumpElements(conn: NftConnection, family: Family, table: string, set: string): DumpedElement[] | null {
  const payload = new AttrBuilder().raw(nfgenmsg(family)).str(ELEM_LIST_ATTR.TABLE, table).str(ELEM_LIST_ATTR.SET, set).build();
  let msgs;
  try {
    msgs = conn.socket.request(msgType(MSG.GETSETELEM), 0, payload, { dump: true, what: `list set ${family} ${table} ${set}` });
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'ENOENT') return null;
    throw e;
  }
  const out: DumpedElement[] = [];
  for (const m of msgs) {
    const attrs = parseAttrs(m.payload, 4);
    const list = attrs.get(ELEM_LIST_ATTR.ELEMENTS);
    if (!list) continue;
    for (const el of parseAttrList(list)) {
      const a = parseAttrs(el.value);
      const key = value(a.get(ELEM_ATTR.KEY));
      if (!key) continue;
      const flags = a.get(ELEM_ATTR.FLAGS)?.readUInt32BE(0) ?? 0;
      out.push({ key, keyEnd: value(a.get(ELEM_ATTR.KEY_END)), data: value(a.get(ELEM_ATTR.DATA)), flags, comment: comment(a.get(ELEM_ATTR.USERDATA)) });
    }
  }
  return out;
}
