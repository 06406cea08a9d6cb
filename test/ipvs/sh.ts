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

/**
 * The node of the VM traffic suites, made afresh: namespaces P+names (they include node, client, s1 and s2); in
 * the node a bridge cni0 10.1.0.1/24 with the server pods s1 10.1.0.2 and s2 10.1.0.3 on it, and the client
 * 10.2.0.2 on a routed veth whose node side is 10.2.0.1.
 */
export function serverTopology(P: string, names: readonly string[]): void {
  const node = `${P}node`;
  for (const n of names) delNs(P + n);
  for (const n of names) addNs(P + n);
  inNs(node, 'ip', ['link', 'add', 'cni0', 'type', 'bridge']);
  inNs(node, 'ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'cni0']);
  inNs(node, 'ip', ['link', 'set', 'cni0', 'up']);
  const pod = (name: string, cidr: string, gw: string, bridge: boolean) => {
    const ns = P + name;
    const v = `v-${name}`;
    sh('ip', ['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', v, 'netns', node]);
    inNs(ns, 'ip', ['addr', 'add', cidr, 'dev', 'eth0']);
    inNs(ns, 'ip', ['link', 'set', 'eth0', 'up']);
    inNs(ns, 'ip', ['route', 'add', 'default', 'via', gw]);
    if (bridge) inNs(node, 'ip', ['link', 'set', v, 'master', 'cni0']);
    inNs(node, 'ip', ['link', 'set', v, 'up']);
  };
  pod('s1', '10.1.0.2/24', '10.1.0.1', true);
  pod('s2', '10.1.0.3/24', '10.1.0.1', true);
  pod('client', '10.2.0.2/24', '10.2.0.1', false);
  inNs(node, 'ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'v-client']);
}
