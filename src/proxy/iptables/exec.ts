// Runs iptables programs of one flavour and family, inside a namespace when
// asked (nsenter --net=PATH, argument arrays, never a shell). A restore's
// input is pulled from an iterable as the pipe drains, so a 10k-service
// ruleset is rendered while iptables-restore parses it and never held whole.
import { spawn } from 'node:child_process';
import { runProgram, runProgramLines } from '../program.js';
import type { IPFamily } from '../model.js';

export type Flavour = 'nft' | 'legacy';

export interface IptablesTool {
  readonly flavour: Flavour;
  readonly family: IPFamily;
  /** iptables-restore -w 5 --noflush with the text (or its chunks, pulled in order) on stdin. */
  restore(text: string | Iterable<string>): Promise<void>;
  /** iptables-save [-t table]. */
  save(table?: string): Promise<string>;
  /** iptables-save -t table, a line at a time as it is read (never the whole text at once). */
  saveLines(table: string, onLine: (line: string) => void): Promise<void>;
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
      await streamRestore(wrap([restoreName, '-w', '5', '--noflush']), restoreName, typeof text === 'string' ? [text] : text);
    },
    async save(table) {
      const name = programName(flavour, family, '-save');
      const r = await runProgram(wrap([name, ...(table ? ['-t', table] : [])]));
      if (r.code !== 0) throw new Error(`${name} failed (exit ${r.code}): ${r.stderr.trim()}`);
      return r.stdout;
    },
    async saveLines(table, onLine) {
      const name = programName(flavour, family, '-save');
      const r = await runProgramLines(wrap([name, '-t', table]), onLine);
      if (r.code !== 0) throw new Error(`${name} failed (exit ${r.code}): ${r.stderr.trim()}`);
    },
    async check(args) {
      return (await runProgram(wrap([programName(flavour, family, ''), '-w', '5', ...args]))).code;
    },
  };
}

/** Writes at most this much per pipe write: chunks are joined up to it (fewer syscalls than one write per chunk). */
const WRITE_SIZE = 256 * 1024;
/**
 * Input kept to quote the line iptables-restore complains about: all of a partial sync's, the end of a full
 * one's (a 10k-service full sync is ~40 MB of text; keeping it all would double the daemon's peak).
 */
const RECENT_BYTES = 4 * 1024 * 1024;

/**
 * Runs argv with chunks on stdin, pulling the next ones only when the pipe has room. Rejects with the
 * program's stderr and, when it names a line, that line's text; an exception from the iterable (a render
 * error) ends the input before COMMIT, so iptables-restore applies nothing of that transaction.
 */
function streamRestore(argv: readonly string[], name: string, chunks: Iterable<string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    const recent: { line: number; text: string }[] = [];
    let recentBytes = 0;
    let line = 1;
    let failure: Error | null = null;
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {}); // EPIPE when it exits early: its exit code and stderr say why.
    child.on('error', (e) => reject(new Error(`cannot run ${argv[0]}: ${e.message}`)));
    child.on('close', (code) => {
      if (failure) return reject(failure);
      if (code === 0) return resolve();
      const stderr = Buffer.concat(err).toString().trim();
      const at = /line:? (\d+)/i.exec(stderr);
      const quoted = at ? lineOf(recent, Number(at[1])) : undefined;
      const where = quoted !== undefined ? ` [line ${at![1]}: ${quoted}]` : at ? ` [line ${at[1]}: before the last ${RECENT_BYTES >> 20} MiB of input, not kept]` : '';
      reject(new Error(`${name} failed (exit ${code}): ${stderr}${where}`));
    });
    const it = chunks[Symbol.iterator]();
    const pump = () => {
      try {
        for (;;) {
          const parts: string[] = [];
          let size = 0;
          let done = false;
          while (size < WRITE_SIZE) {
            const r = it.next();
            if (r.done) {
              done = true;
              break;
            }
            parts.push(r.value);
            size += r.value.length;
          }
          const text = parts.join('');
          recent.push({ line, text });
          recentBytes += text.length;
          while (recent.length > 1 && recentBytes - recent[0]!.text.length >= RECENT_BYTES) recentBytes -= recent.shift()!.text.length;
          for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) line++;
          if (child.stdin.destroyed) return;
          const room = child.stdin.write(text);
          if (done) return void child.stdin.end();
          if (!room) return void child.stdin.once('drain', pump);
        }
      } catch (e) {
        failure = e as Error;
        child.stdin.destroy();
        child.kill();
      }
    };
    pump();
  });
}

/** The text of line n (1-based) if one of the recent chunks holds it. */
function lineOf(recent: readonly { line: number; text: string }[], n: number): string | undefined {
  for (let k = recent.length - 1; k >= 0; k--) {
    const c = recent[k]!;
    if (c.line > n) continue;
    const lines = c.text.split('\n');
    return lines[n - c.line];
  }
  return undefined;
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
