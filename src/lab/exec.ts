// Process helpers for the lab: argument arrays only, never a shell.
import { execFile, spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The environment for child processes: without NODE_EXTRA_CA_CERTS, which costs every Node start ~40 ms. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export function run(cmd: string, args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: opts.env ?? childEnv(), timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: performance.now() - started });
    });
    // A program may exit before reading its input; that is its answer, not ours to crash on.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

export async function must(cmd: string, args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

export const inNs = (ns: string, cmd: string, args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) =>
  run('ip', ['netns', 'exec', ns, cmd, ...args], opts);

export const mustInNs = (ns: string, cmd: string, args: readonly string[]) => must('ip', ['netns', 'exec', ns, cmd, ...args]);

/** Starts a long-running program inside a namespace, detached, its output in logFile. Returns the pid. */
export function daemonInNs(ns: string, cmd: string, args: readonly string[], logFile: string): number {
  const fd = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { detached: true, stdio: ['ignore', fd, fd], env: childEnv() });
  child.unref();
  return child.pid ?? 0;
}

/** The repository (or installed package) root: where package.json, lab/ and cni-bin/ are. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'lab'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the podwire tree (package.json beside lab/)');
}
