// The IPVS mode's ipsets, written with `ipset restore`: a full write swaps
// each set with a freshly filled twin (atomic per set, so a rule never sees a
// half-filled set); a partial sync sends only the members that changed.
import type { IPFamily } from '../model.js';
import { runIn } from './exec.js';
import { SETS, setName, type SetId, type SetSpec } from './names.js';

function createArgs(s: SetSpec, name: string, family: IPFamily): string {
  if (s.kind === 'bitmap:port') return `create ${name} bitmap:port range 0-65535 -exist`;
  return `create ${name} ${s.kind} family ${family === 6 ? 'inet6' : 'inet'} -exist`;
}

/** The `ipset restore` text that makes every set hold exactly `members`. */
export function renderFullSets(family: IPFamily, members: ReadonlyMap<SetId, readonly string[]>): string {
  const lines: string[] = [];
  SETS.forEach((s, i) => {
    const name = setName(s.id, family);
    const tmp = `PW-TMP-${family}-${i}`;
    lines.push(createArgs(s, name, family), createArgs(s, tmp, family), `flush ${tmp}`);
    for (const m of members.get(s.id) ?? []) lines.push(`add ${tmp} ${m} -exist`);
    lines.push(`swap ${tmp} ${name}`, `destroy ${tmp}`);
  });
  return lines.join('\n') + '\n';
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
