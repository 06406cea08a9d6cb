// `bin/podwire proxy …` run by a kernel test inside a node namespace: its log
// collected for failure messages, SIGTERM to stop, and polling until traffic
// shows that the daemon has caught up.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PODWIRE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'podwire');

export class ProxyDaemon {
  /** Everything the daemon wrote (stdout and stderr), across restarts. */
  log = '';
  private child: ChildProcess | null = null;

  /** Starts `podwire proxy ARGS` in the namespace (without NODE_EXTRA_CA_CERTS, as a runtime would). */
  start(ns: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
    if (this.running) throw new Error('the daemon is already running');
    const e = { ...env };
    delete e.NODE_EXTRA_CA_CERTS;
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, PODWIRE, 'proxy', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: e });
    child.stdout?.on('data', (d: Buffer) => (this.log += String(d)));
    child.stderr?.on('data', (d: Buffer) => (this.log += String(d)));
    this.child = child;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then the exit code (null when it was not running). */
  async stop(): Promise<number | null> {
    const d = this.child;
    this.child = null;
    if (!d) return null;
    if (d.exitCode !== null || d.signalCode !== null) return d.exitCode;
    const exited = new Promise<number | null>((resolve) => d.once('exit', (code) => resolve(code)));
    d.kill('SIGTERM');
    return exited;
  }

  /** Polls until check passes (it throws otherwise) or ms have passed; the failure carries the log's tail. */
  async eventually(check: () => Promise<void>, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      try {
        return await check();
      } catch (err) {
        if (Date.now() > end) throw new Error(`${(err as Error).message}\n--- daemon log ---\n${this.log.slice(-3000)}`);
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  }
}
