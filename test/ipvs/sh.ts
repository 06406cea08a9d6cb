// Running programs inside the VM (argument arrays, never a shell string).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export function sh(cmd: string, args: readonly string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export function shTry(cmd: string, args: readonly string[]): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  return { code: r.status ?? 1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

export function inNs(ns: string, cmd: string, args: readonly string[], input?: string): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

export function addNs(name: string): string {
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return `/run/netns/${name}`;
}

export function delNs(name: string): void {
  spawnSync('ip', ['netns', 'del', name]);
}

/** Resolves once the child prints a line containing `want` on stdout. */
export function waitLine(child: ChildProcess, want: string, ms = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${want}" from ${child.spawnargs.join(' ')}`)), ms);
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.includes(want)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

/** A server in a namespace (`ip netns exec NS cmd args`), started once it prints `ready`. */
export async function serveInNs(ns: string, cmd: string, args: readonly string[], ready: string): Promise<ChildProcess> {
  const c = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitLine(c, ready);
  return c;
}
