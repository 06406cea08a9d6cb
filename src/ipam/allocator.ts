// Chooses addresses from range sets over a Store, in host-local's order: round robin from the
// range set's last reserved address, never the gateway, wrapping across the set's ranges.
import { CniError, ErrorCode } from '../cni/spec/errors.js';
import { type IP, formatIP, parseIP } from '../cni/spec/ip.js';
import type { IPConfig } from '../cni/spec/result.js';
import { type IpRange, type RangeSet, addressIn, rangeContains, rangeSetContains, rangeSetText } from './config.js';
import { type Store, reservationsOf } from './store.js';

/** Every address of the set once, starting after `last` (or at the first range's start). */
export function* candidates(set: RangeSet, last: IP | null): Generator<{ range: IpRange; ip: IP }> {
  const step = (idx: number, v: bigint): [number, bigint] => {
    if (v === (set[idx] as IpRange).end.value) {
      const next = (idx + 1) % set.length;
      return [next, (set[next] as IpRange).start.value];
    }
    return [idx, v + 1n];
  };
  const lastIdx = last ? set.findIndex((r) => rangeContains(r, last)) : -1;
  let [idx, cur] = lastIdx >= 0 && last ? step(lastIdx, last.value) : [0, (set[0] as IpRange).start.value];
  const [startIdx, startVal] = [idx, cur];
  do {
    const r = set[idx] as IpRange;
    if (cur !== r.gateway.value || r.gateway.family !== r.start.family) yield { range: r, ip: { family: r.start.family, value: cur } };
    [idx, cur] = step(idx, cur);
  } while (!(idx === startIdx && cur === startVal));
}

function ipConfig(r: IpRange, ip: IP): IPConfig {
  return { address: addressIn(r, ip), gateway: formatIP(r.gateway) };
}

/**
 * Reserves one address of range set `index` for (id, ifname): `requested` when given
 * (it must be in the set, not the gateway, and free), otherwise the next free one.
 */
export function allocate(store: Store, set: RangeSet, index: number, id: string, ifname: string, requested?: IP): IPConfig {
  if (requested) {
    const r = set.find((x) => rangeContains(x, requested));
    const text = formatIP(requested);
    if (!r) throw new CniError(ErrorCode.InvalidNetworkConfig, `requested IP ${text} is not in range set ${rangeSetText(set)}`);
    if (r.gateway.value === requested.value) throw new CniError(ErrorCode.InvalidNetworkConfig, `requested IP ${text} is the subnet's gateway`);
    if (!store.reserve(id, ifname, text, index)) {
      throw new CniError(ErrorCode.TryAgainLater, `requested IP address ${text} is not available in range set ${rangeSetText(set)}`);
    }
    return ipConfig(r, requested);
  }
  for (const held of reservationsOf(store, id, ifname)) {
    const ip = parseIP(held.ip);
    if (ip && rangeSetContains(set, ip)) {
      throw new CniError(ErrorCode.Internal, `${held.ip} has been allocated to ${id}, duplicate allocation is not allowed`);
    }
  }
  const lastText = store.lastReserved(index);
  for (const { range, ip } of candidates(set, lastText ? parseIP(lastText) : null)) {
    if (store.reserve(id, ifname, formatIP(ip), index)) return ipConfig(range, ip);
  }
  throw new CniError(ErrorCode.TryAgainLater, `no IP addresses available in range set: ${rangeSetText(set)}`);
}

/** One address per range set, requested ones in the set they belong to; all or nothing. */
export function allocateAll(store: Store, sets: RangeSet[], id: string, ifname: string, requested: IP[]): IPConfig[] {
  const pending = [...requested];
  const taken: string[] = [];
  try {
    const out: IPConfig[] = [];
    sets.forEach((set, index) => {
      const k = pending.findIndex((ip) => rangeSetContains(set, ip));
      const want = k >= 0 ? pending.splice(k, 1)[0] : undefined;
      try {
        const c = allocate(store, set, index, id, ifname, want);
        taken.push(c.address.slice(0, c.address.indexOf('/')));
        out.push(c);
      } catch (err) {
        if (err instanceof CniError) throw new CniError(err.code, `failed to allocate for range ${index}: ${err.message}`, err.details);
        throw err;
      }
    });
    if (pending.length > 0) {
      throw new CniError(
        ErrorCode.InvalidNetworkConfig,
        `failed to allocate all requested IPs: ${pending.map(formatIP).join(' ')} (not in any range set)`,
      );
    }
    return out;
  } catch (err) {
    for (const ip of taken) store.release(ip);
    throw err;
  }
}

/** Frees what (id, ifname) holds; the freed addresses. */
export function releaseAll(store: Store, id: string, ifname: string): string[] {
  const held = reservationsOf(store, id, ifname);
  for (const r of held) store.release(r.ip);
  return held.map((r) => r.ip);
}
