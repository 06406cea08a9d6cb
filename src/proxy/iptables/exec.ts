// Runs iptables programs of one flavour and family, inside a namespace when
// asked (nsenter --net=PATH, argument arrays, never a shell).
import { runProgram } from '../program.js';
import type { IPFamily } from '../model.js';

export type Flavour = 'nft' | 'legacy';

export interface IptablesTool {
  readonly flavour: Flavour;
  readonly family: IPFamily;
  /** iptables-restore -w 5 --noflush with the text (or its chunks, in order) on stdin. */
  restore(text: string | readonly string[]): Promise<void>;
  /** iptables-save [-t table]. */
  save(table?: string): Promise<string>;
  /** iptables -w 5 ARGS; resolves with the exit code (for existence checks). */
  check(args: readonly string[]): Promise<number>;
}

export function programName(flavour: Flavour, family: IPFamily, what: '' | '-save' | '-restore'): string {
  return `${family === 6 ? 'ip6tables' : 'iptables'}-${flavour}${what}`;
}

export function iptablesTool(flavour: Flavour, family: IPFamily, netnsPath?: string): IptablesTool {
  const wrap = (argv: string[]) => (netnsPath ? ['nsenter', `--net=${netnsPath}`, ...argv] : argv);
  const restoreName = programName(flavour, family, '-restore');
  return {
    flavour,
    family,
    async restore(text) {
      const r = await runProgram(wrap([restoreName, '-w', '5', '--noflush']), text);
      if (r.code !== 0) {
        const at = /line:? (\d+)/i.exec(r.stderr);
        const line = at ? (typeof text === 'string' ? text : text.join('')).split('\n')[Number(at[1]) - 1] : undefined;
        throw new Error(`${restoreName} failed (exit ${r.code}): ${r.stderr.trim()}${line ? ` [line ${at![1]}: ${line}]` : ''}`);
      }
    },
    async save(table) {
      const name = programName(flavour, family, '-save');
      const r = await runProgram(wrap([name, ...(table ? ['-t', table] : [])]));
      if (r.code !== 0) throw new Error(`${name} failed (exit ${r.code}): ${r.stderr.trim()}`);
      return r.stdout;
    },
    async check(args) {
      return (await runProgram(wrap([programName(flavour, family, ''), '-w', '5', ...args]))).code;
    },
  };
}

/**
 * The flavour the node already uses, as kube-proxy's image decides: the one
 * holding more KUBE-/podwire rules, else the one with more rules at all, else nft.
 */
export async function detectFlavour(family: IPFamily, netnsPath?: string): Promise<Flavour> {
  const score = async (f: Flavour) => {
    try {
      const text = await iptablesTool(f, family, netnsPath).save();
      const lines = text.split('\n');
      return { ours: lines.filter((l) => /KUBE-|podwire/.test(l)).length, rules: lines.filter((l) => l.startsWith('-A ')).length };
    } catch {
      return { ours: -1, rules: -1 };
    }
  };
  const [nft, legacy] = await Promise.all([score('nft'), score('legacy')]);
  if (legacy.ours !== nft.ours) return legacy.ours > nft.ours ? 'legacy' : 'nft';
  return legacy.rules > nft.rules ? 'legacy' : 'nft';
}
