// The IPVS mode's iptables rules: a fixed set of lines from
// rules-templates/ipvs/rules.tpl that match ipsets, written with one
// iptables-restore --noflush (podwire's chains are declared, so flushed and
// refilled; the jumps from the built-in chains are inserted only when
// missing). A full sync reads the rules back with one iptables-save and
// rewrites them only when podwire's part differs from what the last write
// left (compared as iptables-save prints it, so no rule text is normalized).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Templates, type Vars } from '../iptables/templates.js';
import type { IptablesTool } from '../iptables/exec.js';
import type { ProxyConfig } from '../model.js';
import { SETS, setName } from './names.js';

function templatePath(): string {
  const starts = [dirname(fileURLToPath(import.meta.url)), ...(process.argv[1] ? [dirname(process.argv[1])] : []), process.cwd()];
  for (const start of starts) {
    let dir = start;
    for (let i = 0; i < 6; i++) {
      const p = join(dir, 'rules-templates', 'ipvs', 'rules.tpl');
      if (existsSync(p)) return p;
      dir = dirname(dir);
    }
  }
  throw new Error(`rules-templates/ipvs/rules.tpl not found above ${starts.join(' or ')}`);
}

let loaded: Templates | null = null;
export function ipvsTemplates(): Templates {
  loaded ??= new Templates(readFileSync(templatePath(), 'utf8'));
  return loaded;
}

const TABLES = ['nat', 'filter'] as const;

function vars(config: ProxyConfig): Record<string, string> {
  const bit = `0x${(1 << config.masqueradeBit).toString(16)}`;
  const v: Record<string, string> = { markBit: bit, mark: `${bit}/${bit}` };
  for (const s of SETS) v[s.id] = setName(s.id, config.family);
  return v;
}

/** Every line of podwire's chains, per table (no jumps). */
export function renderChains(config: ProxyConfig): Record<(typeof TABLES)[number], string[]> {
  const t = ipvsTemplates();
  const v: Vars = vars(config);
  const nat: string[] = [];
  t.render('chains.nat', v, nat);
  t.render('nat.head', v, nat);
  if (config.masqueradeAll) t.render('nat.masqueradeAll', v, nat);
  else for (const cidr of config.clusterCIDRs) t.render('nat.clusterCIDR', { ...v, cidr }, nat);
  t.render('nat.tail', v, nat);
  const filter: string[] = [];
  t.render('chains.filter', v, filter);
  t.render('filter', v, filter);
  return { nat, filter };
}

export function jumpLines(table: 'nat' | 'filter'): string[] {
  const out: string[] = [];
  ipvsTemplates().render(`jump.${table}`, {}, out);
  return out;
}

/** The restore text: chains rewritten, missing jumps inserted at the top of their built-in chain. */
export function renderRestore(config: ProxyConfig, saved: string): string {
  const present = new Set(saved.split('\n').map((l) => l.trim()));
  const chains = renderChains(config);
  const out: string[] = [];
  for (const table of TABLES) {
    out.push(`*${table}`, ...chains[table]);
    for (const j of jumpLines(table)) if (!present.has(j)) out.push(j.replace(/^-A (\S+)/, '-I $1 1'));
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}

/**
 * podwire's part of an iptables-save text (every table): the rules of its
 * chains and its jumps from the built-in chains, per table, in order.
 */
export function ownedRules(saved: string): string {
  const chains = renderChains({ family: 4, clusterCIDRs: [], masqueradeAll: false, masqueradeBit: 14, nodePortAddresses: [], localhostNodePorts: false });
  const out: string[] = [];
  let table = '';
  let ours = new Set<string>();
  let jumps = new Set<string>();
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      const t = TABLES.find((x) => x === table);
      ours = new Set(t ? chains[t].filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!) : []);
      jumps = new Set(t ? jumpLines(t) : []);
      if (t) out.push(line);
      continue;
    }
    if (!line.startsWith('-A ') || ours.size === 0) continue;
    const chain = line.slice(3, line.indexOf(' ', 3));
    if (ours.has(chain) || jumps.has(line.trim())) out.push(line.trim());
  }
  return out.join('\n');
}

/**
 * Brings the rules to the rendered ones. `last` is what the previous call
 * returned (podwire's part as it read back after writing): when the node
 * still shows exactly that, nothing is written. Returns the new `last` and
 * whether the rules were rewritten.
 */
export async function syncRules(tool: IptablesTool, config: ProxyConfig, last: string | null = null): Promise<{ last: string; rewritten: boolean }> {
  const saved = await tool.save();
  if (last !== null && ownedRules(saved) === last) return { last, rewritten: false };
  await tool.restore(renderRestore(config, saved));
  return { last: ownedRules(await tool.save()), rewritten: true };
}

/**
 * Removes the jumps and podwire's chains (what --cleanup does), reading the
 * rules once: one restore deletes every jump present, then one per table
 * flushes and deletes the chains. Missing pieces are fine.
 */
export async function removeRules(tool: IptablesTool): Promise<void> {
  const saved = await tool.save();
  const chains = renderChains({ family: tool.family, clusterCIDRs: [], masqueradeAll: false, masqueradeBit: 14, nodePortAddresses: [], localhostNodePorts: false });
  const present = new Map<string, number>();
  let table = '';
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith('-A ')) present.set(`${table} ${line.trim()}`, (present.get(`${table} ${line.trim()}`) ?? 0) + 1);
  }
  const jumps: string[] = [];
  for (const t of TABLES) {
    const dels = jumpLines(t).flatMap((j) => Array<string>(present.get(`${t} ${j}`) ?? 0).fill(j.replace(/^-A /, '-D ')));
    if (dels.length) jumps.push(`*${t}`, ...dels, 'COMMIT');
  }
  if (jumps.length) await tool.restore(jumps.join('\n') + '\n');
  for (const t of TABLES) {
    const names = chains[t].filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!);
    if (!names.some((n) => new RegExp(`^:${n} `, 'm').test(saved))) continue;
    const text = [`*${t}`, ...names.map((n) => `:${n} - [0:0]`), ...names.map((n) => `-X ${n}`), 'COMMIT', ''].join('\n');
    try {
      await tool.restore(text);
    } catch {
      // A chain still referenced from elsewhere (e.g. the iptables mode's rules) stays; that mode's cleanup owns it.
    }
  }
}
