// The IPVS mode's ipsets, written with `ipset restore`: a full sync reads
// every set once (`ipset save`) and sends only the members that differ (a set
// that is missing or of the wrong type is rebuilt in a twin and swapped in,
// atomic per set, so a rule never sees a half-filled set); a partial sync
// sends only the members that changed.
import ipaddr from 'ipaddr.js';
import type { IPFamily } from '../model.js';
import { runIn } from './exec.js';
import { SETS, setName, type SetId, type SetSpec } from './names.js';

function createArgs(s: SetSpec, name: string, family: IPFamily): string {
  if (s.kind === 'bitmap:port') return `create ${name} bitmap:port range 0-65535 -exist`;
  return `create ${name} ${s.kind} family ${family === 6 ? 'inet6' : 'inet'} -exist`;
}

/** One set as `ipset save` shows it. */
export interface SavedSet {
  readonly type: string;
  /** inet / inet6; absent for bitmap:port. */
  readonly family?: string;
  readonly members: Set<string>;
}

/** The sets in an `ipset save` text, by name. */
export function parseIpsetSave(text: string): Map<string, SavedSet> {
  const out = new Map<string, SavedSet>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'create' && f.length >= 3) {
      const i = f.indexOf('family');
      out.set(f[1]!, { type: f[2]!, family: i > 0 ? f[i + 1] : undefined, members: new Set() });
    } else if (f[0] === 'add' && f.length >= 3) {
      out.get(f[1]!)?.members.add(f[2]!);
    }
  }
  return out;
}

/** A net as ipset prints it: the network address, and no prefix for a single host. */
function ipsetNet(cidr: string): string {
  const [addr, bits] = ipaddr.parseCIDR(cidr);
  const max = addr.kind() === 'ipv6' ? 128 : 32;
  const net = addr.kind() === 'ipv6' ? ipaddr.IPv6.networkAddressFromCIDR(cidr) : ipaddr.IPv4.networkAddressFromCIDR(cidr);
  return bits === max ? net.toString() : `${net.toString()}/${bits}`;
}

/** A member as podwire renders it, in the text `ipset save` prints for it. */
export function ipsetMemberText(kind: SetSpec['kind'], member: string): string {
  if (kind !== 'hash:ip,port,net') return member;
  const i = member.lastIndexOf(',');
  return `${member.slice(0, i)},${ipsetNet(member.slice(i + 1))}`;
}

/**
 * The `ipset restore` text that turns the saved sets into `members`, and how
 * many members it adds or deletes (0 and '' when the sets already match).
 */
export function renderSetRepair(family: IPFamily, members: ReadonlyMap<SetId, readonly string[]>, saved: ReadonlyMap<string, SavedSet>): { text: string; changes: number } {
  const lines: string[] = [];
  let changes = 0;
  SETS.forEach((s, i) => {
    const name = setName(s.id, family);
    const want = new Set((members.get(s.id) ?? []).map((m) => ipsetMemberText(s.kind, m)));
    const have = saved.get(name);
    const fam = family === 6 ? 'inet6' : 'inet';
    if (!have || have.type !== s.kind || (s.kind !== 'bitmap:port' && have.family !== fam)) {
      const tmp = `PW-TMP-${family}-${i}`;
      lines.push(createArgs(s, name, family), createArgs(s, tmp, family), `flush ${tmp}`);
      for (const m of want) lines.push(`add ${tmp} ${m} -exist`);
      lines.push(`swap ${tmp} ${name}`, `destroy ${tmp}`);
      changes += want.size + (have?.members.size ?? 0);
      return;
    }
    for (const m of have.members) {
      if (want.has(m)) continue;
      lines.push(`del ${name} ${m} -exist`);
      changes++;
    }
    for (const m of want) {
      if (have.members.has(m)) continue;
      lines.push(`add ${name} ${m} -exist`);
      changes++;
    }
  });
  return { text: lines.length ? lines.join('\n') + '\n' : '', changes };
}

/** Every set of the namespace, read with one `ipset save`. */
export async function ipsetSave(netnsPath: string | undefined): Promise<Map<string, SavedSet>> {
  const r = await runIn(netnsPath, ['ipset', 'save']);
  if (r.code !== 0) throw new Error(`ipset save failed (exit ${r.code}): ${r.stderr.trim()}`);
  return parseIpsetSave(r.stdout);
}

export function renderSetDelta(family: IPFamily, added: ReadonlyArray<readonly [SetId, string]>, removed: ReadonlyArray<readonly [SetId, string]>): string {
  const lines: string[] = [];
  for (const [id, m] of removed) lines.push(`del ${setName(id, family)} ${m} -exist`);
  for (const [id, m] of added) lines.push(`add ${setName(id, family)} ${m} -exist`);
  return lines.length ? lines.join('\n') + '\n' : '';
}

export async function ipsetRestore(netnsPath: string | undefined, text: string): Promise<void> {
  if (!text) return;
  const r = await runIn(netnsPath, ['ipset', 'restore'], text);
  if (r.code !== 0) {
    const at = /line (\d+)/i.exec(r.stderr);
    const line = at ? text.split('\n')[Number(at[1]) - 1] : undefined;
    throw new Error(`ipset restore failed (exit ${r.code}): ${r.stderr.trim()}${line ? ` [line ${at![1]}: ${line}]` : ''}`);
  }
}

/** Destroys the family's sets (after the rules that use them are gone); missing sets are fine. */
export async function destroySets(netnsPath: string | undefined, family: IPFamily): Promise<void> {
  for (const s of SETS) await runIn(netnsPath, ['ipset', 'destroy', setName(s.id, family)]);
}
