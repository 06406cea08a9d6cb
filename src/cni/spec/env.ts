// The CNI_* environment of one plugin invocation (SPEC.md "Parameters"), validated per command
// the way libcni's skel does, so podwire and the reference plugins reject the same inputs.
import { CniError, ErrorCode } from './errors.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'];

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS "K=V;K=V", parsed. */
  args: Record<string, string>;
  /** CNI_PATH, split on ':'. */
  path: string[];
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Which variables each command needs (as libcni's skel requires them). */
const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

export function validateContainerId(id: string): void {
  if (id === '') throw new CniError(ErrorCode.UnknownContainer, 'missing containerID');
  if (!NAME_RE.test(id)) throw new CniError(ErrorCode.InvalidEnv, 'invalid characters in CNI_CONTAINERID', id);
}

export function validateIfname(name: string): void {
  if (name === '') throw new CniError(ErrorCode.InvalidEnv, 'CNI_IFNAME is empty');
  if (name.length > 15) {
    throw new CniError(ErrorCode.InvalidEnv, `CNI_IFNAME "${name}" is too long`, 'interface names have at most 15 characters');
  }
  if (name === '.' || name === '..') throw new CniError(ErrorCode.InvalidEnv, `CNI_IFNAME "${name}" is not a valid interface name`);
  if (/[/:\s]/.test(name)) {
    throw new CniError(ErrorCode.InvalidEnv, `CNI_IFNAME "${name}" contains '/', ':' or whitespace`);
  }
}

export function validateNetworkName(name: string): void {
  if (name === '') throw new CniError(ErrorCode.InvalidNetworkConfig, 'missing network name');
  if (!NAME_RE.test(name)) throw new CniError(ErrorCode.InvalidNetworkConfig, 'invalid characters found in network name', name);
}

/** CNI_ARGS: "K=V;K=V". A pair without '=' is an error (code 4), as in libcni's LoadArgs. */
export function parseCniArgs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (s === '') return out;
  for (const pair of s.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(ErrorCode.InvalidEnv, `invalid CNI_ARGS pair "${pair}": expected KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function formatCniArgs(args: Record<string, string>): string {
  return Object.entries(args)
    .map(([k, v]) => `${k}=${v}`)
    .join(';');
}

export function readEnv(env: NodeJS.ProcessEnv): CniEnv {
  const raw = env.CNI_COMMAND ?? '';
  if (raw === '') throw new CniError(ErrorCode.InvalidEnv, 'required env variables [CNI_COMMAND] missing');
  if (!(COMMANDS as readonly string[]).includes(raw)) {
    throw new CniError(ErrorCode.InvalidEnv, `unknown CNI_COMMAND: ${raw}`, `expected one of ${COMMANDS.join(', ')}`);
  }
  const command = raw as CniCommand;
  const missing = REQUIRED[command].filter((name) => (env[name] ?? '') === '');
  if (missing.length > 0) {
    throw new CniError(ErrorCode.InvalidEnv, `required env variables [${missing.join(',')}] missing for ${command}`);
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  if (REQUIRED[command].includes('CNI_CONTAINERID')) validateContainerId(containerId);
  if (REQUIRED[command].includes('CNI_IFNAME')) validateIfname(ifname);
  return {
    command,
    containerId,
    netns: env.CNI_NETNS ?? '',
    ifname,
    args: parseCniArgs(env.CNI_ARGS ?? ''),
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
  };
}
