// Network namespaces for kernel tests. Every name carries the suite's prefix
// (pw-t-<suite>-), so a suite can remove what a crashed earlier run left
// without touching anyone else's, and nothing is ever created in the
// machine's own namespace.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a program with an argument array (never a shell); resolves with its exit code instead of throwing. */
export async function run(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ stdout: String(stdout), stderr: String(stderr), code });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Like run, but throws when the program fails. */
export async function must(cmd: string, args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

/** Runs a program inside a namespace (ip netns exec also gives it that namespace's /sys). */
export function nsRun(ns: string, cmd: string, args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

export function nsMust(ns: string, cmd: string, args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  return must('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/**
 * A set of namespaces owned by one test suite. `create` makes one with
 * loopback up; `cleanup` removes every namespace with the prefix (also those a
 * crashed run left), killing what still runs inside.
 */
export class NetnsScope {
  readonly prefix: string;

  constructor(suite: string) {
    if (!/^[a-z0-9-]+$/.test(suite)) throw new Error(`bad suite name ${suite}`);
    this.prefix = `pw-t-${suite}-`;
  }

  name(short: string): string {
    return `${this.prefix}${short}`;
  }

  async create(short: string): Promise<string> {
    const name = this.name(short);
    if (name.length > 64) throw new Error(`namespace name too long: ${name}`);
    await must('ip', ['netns', 'add', name]);
    await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  async remove(name: string): Promise<void> {
    const pids = await run('ip', ['netns', 'pids', name]);
    for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await run('ip', ['netns', 'del', name]);
  }

  async cleanup(): Promise<void> {
    for (const ns of listNetns().filter((n) => n.startsWith(this.prefix))) await this.remove(ns);
  }
}
