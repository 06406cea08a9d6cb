// The IPAM behind the bridge. podwire-ipam runs in this process (no exec, no
// second Node start); any other ipam.type is exec'd from CNI_PATH with the
// same config on stdin, as the spec says, so the reference host-local works
// under podwire-bridge.
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus } from '../../ipam/index.js';
import type { CniEnv } from '../spec/env.js';
import { CniError, ErrorCode } from '../spec/errors.js';
import type { execPlugin } from '../spec/exec.js';
import type { Attachment } from '../spec/gc.js';
import type { Result } from '../spec/result.js';
import type { IpamBackend } from './attachment.js';

export const IN_PROCESS_IPAM = 'podwire-ipam';

export interface IpamClient extends IpamBackend {
  gc(env: CniEnv, valid: Attachment[]): void;
  status(env: CniEnv): void;
}

export type ExecPlugin = typeof execPlugin;

/**
 * The exec path is loaded only when a network delegates its IPAM: Node's
 * child_process module costs ~6 ms of start-up that podwire-ipam never needs.
 */
export async function ipamClient(type: string, conf: Record<string, unknown>, raw: string): Promise<IpamClient> {
  if (type === IN_PROCESS_IPAM) return new InProcessIpam(conf);
  const { execPlugin } = await import('../spec/exec.js');
  return new ExecIpam(type, raw, execPlugin);
}

class InProcessIpam implements IpamClient {
  constructor(private readonly conf: Record<string, unknown>) {}
  add(env: CniEnv): Result {
    return ipamAdd(this.conf, env);
  }
  del(env: CniEnv): void {
    ipamDel(this.conf, env);
  }
  check(env: CniEnv): void {
    ipamCheck(this.conf, env);
  }
  gc(_env: CniEnv, valid: Attachment[]): void {
    ipamGc(this.conf, valid);
  }
  status(): void {
    ipamStatus(this.conf);
  }
}

class ExecIpam implements IpamClient {
  constructor(
    private readonly type: string,
    private readonly raw: string,
    private readonly exec: ExecPlugin,
  ) {}

  add(env: CniEnv): Result {
    const r = this.exec(this.type, { ...env, command: 'ADD' }, this.raw);
    if (!r) throw new CniError(ErrorCode.Internal, `IPAM plugin ${this.type} returned no result for ADD`);
    return r;
  }

  del(env: CniEnv): void {
    this.exec(this.type, { ...env, command: 'DEL' }, this.raw);
  }

  check(env: CniEnv): void {
    this.exec(this.type, { ...env, command: 'CHECK' }, this.raw);
  }

  /**
   * An IPAM older than spec 1.1 has no GC/STATUS: it answers 1 (version), or
   * 3/4 because its env checks predate those commands (host-local 1.1.1 says
   * "missing containerID"). Then it is skipped with a note on stderr.
   */
  private optional(env: CniEnv, command: 'GC' | 'STATUS'): void {
    try {
      this.exec(this.type, { ...env, command }, this.raw);
    } catch (e) {
      if (e instanceof CniError && (e.code === ErrorCode.IncompatibleVersion || e.code === ErrorCode.UnknownContainer || e.code === ErrorCode.InvalidEnv || /unknown CNI_COMMAND/i.test(e.message))) {
        process.stderr.write(`podwire-bridge: IPAM plugin ${this.type} does not support ${command}: ${e.message}\n`);
        return;
      }
      throw e;
    }
  }

  gc(env: CniEnv, _valid: Attachment[]): void {
    this.optional(env, 'GC');
  }

  status(env: CniEnv): void {
    this.optional(env, 'STATUS');
  }
}
