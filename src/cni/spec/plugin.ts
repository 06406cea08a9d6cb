// runPlugin: the `main` of a CNI executable. Reads env + stdin, validates them as libcni's skel
// does, dispatches to the handlers and prints the result or the error JSON on stdout.
import { statSync, writeSync } from 'node:fs';
import { CniError, ErrorCode, asCniError } from './errors.js';
import { type CniEnv, readEnv, validateNetworkName } from './env.js';
import { type DNS, type Result, formatResult, parseResult } from './result.js';
import { readStdinSync, stdinIsTty } from './stdin.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS, compareVersions, isSupportedVersion } from './version.js';

/** The plugin's configuration from stdin. Plugin-specific keys stay as parsed JSON. */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  ipam?: Record<string, unknown>;
  dns?: DNS;
  prevResult?: Result;
  runtimeConfig?: Record<string, unknown>;
  args?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface PluginContext {
  env: CniEnv;
  conf: NetConf;
  /** stdin as received (for delegating to another plugin unchanged). */
  raw: string;
}

type MaybeAsync<T> = T | Promise<T>;
export interface PluginHandlers {
  add(ctx: PluginContext): MaybeAsync<Result>;
  del(ctx: PluginContext): MaybeAsync<void>;
  check(ctx: PluginContext): MaybeAsync<void>;
  gc?(ctx: PluginContext): MaybeAsync<void>;
  status?(ctx: PluginContext): MaybeAsync<void>;
}

/** Minimum config version for the commands added after 0.1.0. */
const MIN_VERSION: Partial<Record<CniEnv['command'], string>> = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };

/** Parses and validates stdin as a plugin configuration (errors 6, 7, 1 as in libcni). */
export function parseNetConf(raw: string): NetConf {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new CniError(ErrorCode.Decode, `error parsing the network configuration: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CniError(ErrorCode.Decode, 'error parsing the network configuration: expected a JSON object');
  }
  const o = json as Record<string, unknown>;
  const cniVersion = o.cniVersion === undefined || o.cniVersion === '' ? '0.1.0' : o.cniVersion;
  if (typeof cniVersion !== 'string') throw new CniError(ErrorCode.Decode, 'cniVersion must be a string');
  compareVersions(cniVersion, cniVersion); // CniError 6 when it is not a version at all
  if (!isSupportedVersion(cniVersion)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      'incompatible CNI versions',
      `config is "${cniVersion}", plugin supports [${SUPPORTED_VERSIONS.join(' ')}]`,
    );
  }
  if (typeof o.name !== 'string') throw new CniError(ErrorCode.InvalidNetworkConfig, 'missing network name');
  validateNetworkName(o.name);
  if (typeof o.type !== 'string' || o.type === '') throw new CniError(ErrorCode.InvalidNetworkConfig, 'missing plugin "type"');
  const conf = { ...o, cniVersion, name: o.name, type: o.type } as NetConf;
  if (o.prevResult !== undefined && o.prevResult !== null) {
    conf.prevResult = parseResult(o.prevResult);
  } else {
    delete conf.prevResult;
  }
  if (o.ipam !== undefined && (typeof o.ipam !== 'object' || o.ipam === null || Array.isArray(o.ipam))) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, '"ipam" must be an object');
  }
  return conf;
}

function sameNetns(a: string, b: string): boolean {
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false; // a missing netns is the handler's business (DEL must still succeed)
  }
}

function print(obj: object): void {
  writeSync(1, JSON.stringify(obj) + '\n');
}

async function dispatch(handlers: PluginHandlers, about: string | undefined): Promise<number> {
  let cniVersion: string = CURRENT_VERSION;
  try {
    if ((process.env.CNI_COMMAND ?? '') === '' && about) {
      writeSync(2, `${about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`);
      return 0;
    }
    const env = readEnv(process.env);
    if (env.command === 'VERSION') {
      // Echo the caller's version when it sent one (SPEC.md "VERSION Success").
      const raw = stdinIsTty() ? '' : readStdinSync();
      try {
        const v = (JSON.parse(raw) as { cniVersion?: unknown }).cniVersion;
        if (typeof v === 'string' && v !== '') cniVersion = v;
      } catch {
        /* no or bad stdin: answer with ours */
      }
      print({ cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] });
      return 0;
    }
    const raw = readStdinSync();
    const conf = parseNetConf(raw);
    cniVersion = conf.cniVersion;
    const min = MIN_VERSION[env.command];
    if (min && compareVersions(conf.cniVersion, min) < 0) {
      throw new CniError(ErrorCode.IncompatibleVersion, `config version ${conf.cniVersion} does not allow ${env.command} (needs ${min} or later)`);
    }
    if (env.command === 'ADD' && sameNetns(env.netns, '/proc/self/ns/net')) {
      throw new CniError(ErrorCode.InvalidNetns, "the plugin's netns and CNI_NETNS must not be the same", env.netns);
    }
    const ctx: PluginContext = { env, conf, raw };
    switch (env.command) {
      case 'ADD': {
        const result = await handlers.add(ctx);
        print(formatResult(result, conf.cniVersion));
        break;
      }
      case 'DEL':
        await handlers.del(ctx);
        break;
      case 'CHECK':
        await handlers.check(ctx);
        break;
      case 'GC':
        if (handlers.gc) await handlers.gc(ctx);
        break;
      case 'STATUS':
        if (handlers.status) await handlers.status(ctx);
        break;
    }
    return 0;
  } catch (err) {
    const e = asCniError(err);
    print(e.toJSON(cniVersion));
    if (!(err instanceof CniError) && err instanceof Error && err.stack) writeSync(2, `${err.stack}\n`);
    return 1;
  }
}

/**
 * Runs a CNI plugin and exits the process: 0 on success, 1 after printing an error JSON.
 * Handlers may be synchronous or return promises.
 */
export function runPlugin(handlers: PluginHandlers, about?: string): void {
  dispatch(handlers, about).then(
    (code) => process.exit(code),
    (err: unknown) => {
      writeSync(2, `podwire: unexpected failure: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
