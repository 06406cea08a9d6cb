// Helpers for the bridge plugin's kernel tests: a node namespace with pod
// namespaces, network configs, and an IPAM backend that execs Debian's
// reference host-local (so the attachment logic is tested before and apart
// from podwire-ipam).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IpamBackend } from '../../src/cni/bridge/attachment.js';
import type { CniEnv } from '../../src/cni/spec/env.js';
import { nsRun } from './netns.js';

export const REFERENCE_CNI_DIR = '/usr/lib/cni';

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'pw-t-cni-'));
}

export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Files left in a host-local store for the network (reservations are the files named like IPs). */
export function reservations(dataDir: string, network: string): string[] {
  try {
    return readdirSync(join(dataDir, network)).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
  } catch {
    return [];
  }
}

export function netConf(over: Record<string, unknown> & { dataDir: string; subnet?: string; ranges?: unknown }): Record<string, unknown> {
  const { dataDir, subnet, ranges, ...rest } = over;
  return {
    cniVersion: '1.0.0',
    name: 'pwnet',
    type: 'podwire-bridge',
    bridge: 'pwbr0',
    isGateway: true,
    ipam: {
      type: 'host-local',
      dataDir,
      ranges: ranges ?? [[{ subnet: subnet ?? '10.77.0.0/24' }]],
    },
    ...rest,
  };
}

export function cniEnv(command: CniEnv['command'], containerId: string, netns: string, ifname = 'eth0', args: Record<string, string> = {}): CniEnv {
  return { command, containerId, netns, ifname, args, path: [REFERENCE_CNI_DIR] };
}

/** Runs a reference plugin from /usr/lib/cni with the CNI environment and config; returns its parsed stdout. */
export function execReference(type: string, env: CniEnv, conf: Record<string, unknown>): { code: number; out: Record<string, unknown> } {
  const r = spawnSync(join(REFERENCE_CNI_DIR, type), [], {
    input: JSON.stringify(conf),
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      CNI_COMMAND: env.command,
      CNI_CONTAINERID: env.containerId,
      CNI_NETNS: env.netns,
      CNI_IFNAME: env.ifname,
      CNI_PATH: env.path.join(':'),
      CNI_ARGS: Object.entries(env.args).map(([k, v]) => `${k}=${v}`).join(';'),
    },
    encoding: 'utf8',
  });
  const text = r.stdout.trim();
  return { code: r.status ?? 1, out: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** host-local as an IpamBackend for addAttachment. */
export function hostLocalIpam(conf: Record<string, unknown>): IpamBackend {
  const call = (env: CniEnv, command: CniEnv['command']) => {
    const r = execReference('host-local', { ...env, command }, conf);
    if (r.code !== 0) throw new Error(`host-local ${command} failed: ${JSON.stringify(r.out)}`);
    return r.out;
  };
  return {
    add: (env) => call(env, 'ADD') as ReturnType<IpamBackend['add']>,
    del: (env) => void call(env, 'DEL'),
    check: (env) => void call(env, 'CHECK'),
  };
}

/** `ip -j` output inside a namespace, parsed. */
export async function ipJson(ns: string, args: string[]): Promise<Array<Record<string, unknown>>> {
  const r = await nsRun(ns, 'ip', ['-j', ...args]);
  if (r.code !== 0) throw new Error(`ip -j ${args.join(' ')} in ${ns}: ${r.stderr}`);
  return JSON.parse(r.stdout || '[]') as Array<Record<string, unknown>>;
}

export async function linkNames(ns: string): Promise<string[]> {
  return (await ipJson(ns, ['link', 'show'])).map((l) => String(l.ifname));
}

export const PODWIRE_BRIDGE = new URL('../../cni-bin/podwire-bridge', import.meta.url).pathname;

export interface PluginRun {
  code: number;
  out: Record<string, unknown>;
  stdout: string;
  stderr: string;
}

/**
 * Execs a CNI plugin inside the node namespace, as a runtime would (env +
 * stdin), without NODE_EXTRA_CA_CERTS. `plugin` is a path.
 */
export async function execInNode(
  node: string,
  plugin: string,
  env: { command: string; containerId?: string; netns?: string; ifname?: string; args?: string; path?: string },
  conf: unknown,
): Promise<PluginRun> {
  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: env.command,
    CNI_PATH: env.path ?? `${REFERENCE_CNI_DIR}:${new URL('../../cni-bin', import.meta.url).pathname}`,
  };
  if (env.containerId !== undefined) childEnv.CNI_CONTAINERID = env.containerId;
  if (env.netns !== undefined) childEnv.CNI_NETNS = env.netns;
  if (env.ifname !== undefined) childEnv.CNI_IFNAME = env.ifname;
  if (env.args !== undefined) childEnv.CNI_ARGS = env.args;
  const r = await nsRun(node, plugin, [], { input: typeof conf === 'string' ? conf : JSON.stringify(conf), env: childEnv });
  const text = r.stdout.trim();
  let out: Record<string, unknown> = {};
  if (text) out = JSON.parse(text) as Record<string, unknown>;
  return { code: r.code, out, stdout: r.stdout, stderr: r.stderr };
}
