// execPlugin: runs another CNI plugin (delegated IPAM, e.g. the reference host-local) the way
// libcni's invoke package does: found in CNI_PATH, CNI_* in its environment, config on stdin.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, ErrorCode } from './errors.js';
import { type CniEnv, formatCniArgs } from './env.js';
import { type Result, parseResult } from './result.js';

export function findPlugin(type: string, path: string[]): string {
  if (type.includes('/')) throw new CniError(ErrorCode.InvalidNetworkConfig, `plugin type "${type}" must be a plain name, not a path`);
  for (const dir of path) {
    const p = join(dir, type);
    try {
      if (statSync(p).isFile()) {
        accessSync(p, constants.X_OK);
        return p;
      }
    } catch {
      /* not here */
    }
  }
  throw new CniError(ErrorCode.InvalidNetworkConfig, `failed to find plugin "${type}" in CNI_PATH [${path.join(':')}]`);
}

/** Execs plugin `type`; the parsed result for ADD, null for other commands. Failures become CniErrors with the plugin's code. */
export function execPlugin(type: string, env: CniEnv, stdin: string): Result | null {
  const bin = findPlugin(type, env.path);
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    CNI_COMMAND: env.command,
    CNI_CONTAINERID: env.containerId,
    CNI_NETNS: env.netns,
    CNI_IFNAME: env.ifname,
    CNI_ARGS: formatCniArgs(env.args),
    CNI_PATH: env.path.join(':'),
  };
  const r = spawnSync(bin, [], { input: stdin, env: childEnv, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.error) throw new CniError(ErrorCode.IO, `failed to run plugin ${bin}: ${r.error.message}`);
  const out = r.stdout.trim();
  if (r.status !== 0) {
    try {
      const e = JSON.parse(out) as { code?: unknown; msg?: unknown; details?: unknown };
      if (typeof e.code === 'number' && typeof e.msg === 'string') {
        throw new CniError(e.code, e.msg, typeof e.details === 'string' ? e.details : undefined);
      }
    } catch (err) {
      if (err instanceof CniError) throw err;
    }
    const why = r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
    throw new CniError(ErrorCode.Internal, `plugin ${type} failed (${why})`, (r.stderr || out).trim());
  }
  if (out === '') return null;
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch (err) {
    throw new CniError(ErrorCode.Decode, `plugin ${type} printed a result that is not JSON: ${(err as Error).message}`);
  }
  return env.command === 'ADD' ? parseResult(json) : null;
}
