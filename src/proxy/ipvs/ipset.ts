// The IPVS mode's ipsets, written with `ipset restore`. A full sync reads
// every set's header once (`ipset list -t`: type, family, number of entries)
// and the members only of a set whose count differs from the desired one
// (dumping members is the slow part: `ipset save` of 20k members took longer
// than a minute in the VM), then sends only the members that differ; a set
// that is missing or of the wrong type is rebuilt in a twin and swapped in,
// atomic per set, so a rule never sees a half-filled set. So a member someone
// replaced by hand with another (same count) is not seen. A partial sync sends
// only the members that changed.
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

/** The desired members of every set, as `ipset save` prints them, by set id. */
export function wantedMembers(members: ReadonlyMap<SetId, readonly string[]>): Map<SetId, Set<string>> {
  return new Map(SETS.map((s) => [s.id, new Set((members.get(s.id) ?? []).map((m) => ipsetMemberText(s.kind, m)))]));
}

function isOurKind(s: SetSpec, family: IPFamily, have: { type: string; family?: string } | undefined): boolean {
  return !!have && have.type === s.kind && (s.kind === 'bitmap:port' || have.family === (family === 6 ? 'inet6' : 'inet'));
}

/**
 * The `ipset restore` text that turns the saved sets into `want`, and how
 * many members it adds or deletes (0 and '' when the sets already match).
 */
export function renderSetRepair(family: IPFamily, want: ReadonlyMap<SetId, ReadonlySet<string>>, saved: ReadonlyMap<string, SavedSet>): { text: string; changes: number } {
  const lines: string[] = [];
  let changes = 0;
  SETS.forEach((s, i) => {
    const name = setName(s.id, family);
    const wanted = want.get(s.id) ?? new Set<string>();
    const have = saved.get(name);
    if (!have || !isOurKind(s, family, have)) {
      const tmp = `PW-TMP-${family}-${i}`;
      lines.push(createArgs(s, name, family), createArgs(s, tmp, family), `flush ${tmp}`);
      for (const m of wanted) lines.push(`add ${tmp} ${m} -exist`);
      lines.push(`swap ${tmp} ${name}`, `destroy ${tmp}`);
      changes += wanted.size + (have?.members.size ?? 0);
      return;
    }
    for (const m of have.members) {
      if (wanted.has(m)) continue;
      lines.push(`del ${name} ${m} -exist`);
      changes++;
    }
    for (const m of wanted) {
      if (have.members.has(m)) continue;
      lines.push(`add ${name} ${m} -exist`);
      changes++;
    }
  });
  return { text: lines.length ? lines.join('\n') + '\n' : '', changes };
}

/** One set's header as `ipset list -t` shows it. */
export interface SetHead {
  readonly type: string;
  readonly family?: string;
  readonly entries: number;
}

/** The headers in an `ipset list -t` text, by set name. */
export function parseIpsetTerse(text: string): Map<string, SetHead> {
  const out = new Map<string, SetHead>();
  let name = '';
  let type = '';
  let family: string | undefined;
  for (const line of text.split('\n')) {
    const i = line.indexOf(': ');
    if (i < 0) continue;
    const key = line.slice(0, i);
    const value = line.slice(i + 2).trim();
    if (key === 'Name') [name, type, family] = [value, '', undefined];
    else if (key === 'Type') type = value;
    else if (key === 'Header') family = /(?:^| )family (\S+)/.exec(value)?.[1];
    else if (key === 'Number of entries' && name) out.set(name, { type, family, entries: Number(value) });
  }
  return out;
}

/**
 * What a full sync knows of the family's sets: every header (one `ipset
 * list -t`), and the members of those whose count differs from `want` (one
 * `ipset save SET` each); a set whose count matches is taken to hold `want`.
 */
export async function readSets(netnsPath: string | undefined, family: IPFamily, want: ReadonlyMap<SetId, ReadonlySet<string>>): Promise<Map<string, SavedSet>> {
  const r = await runIn(netnsPath, ['ipset', 'list', '-t']);
  if (r.code !== 0) throw new Error(`ipset list -t failed (exit ${r.code}): ${r.stderr.trim()}`);
  const heads = parseIpsetTerse(r.stdout);
  const out = new Map<string, SavedSet>();
  for (const s of SETS) {
    const name = setName(s.id, family);
    const head = heads.get(name);
    if (!head || !isOurKind(s, family, head)) continue;
    const wanted = want.get(s.id) ?? new Set<string>();
    if (head.entries === wanted.size) {
      out.set(name, { type: head.type, family: head.family, members: new Set(wanted) });
      continue;
    }
    const saved = await runIn(netnsPath, ['ipset', 'save', name]);
    if (saved.code !== 0) throw new Error(`ipset save ${name} failed (exit ${saved.code}): ${saved.stderr.trim()}`);
    const set = parseIpsetSave(saved.stdout).get(name);
    if (set) out.set(name, set);
  }
  return out;
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

/** Destroys the family's sets (after the rules that use them are gone) in one restore; missing sets are fine. */
export async function destroySets(netnsPath: string | undefined, family: IPFamily): Promise<void> {
  const r = await runIn(netnsPath, ['ipset', 'list', '-n']);
  const have = new Set(r.stdout.split('\n').map((l) => l.trim()));
  const ours = SETS.map((s) => setName(s.id, family)).filter((n) => have.has(n));
  await ipsetRestore(netnsPath, ours.map((n) => `destroy ${n}`).join('\n') + (ours.length ? '\n' : ''));
}
