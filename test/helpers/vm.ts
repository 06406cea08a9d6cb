// Runs a suite inside the VM of ../shared/tools/ipvs-vm (a kernel with IPVS and
// SCTP, which this machine's lacks): the suite's entry is bundled with esbuild
// into dist/ (inside the project, so the backends find rules-templates/ above
// it), booted once with its run script, and its `N passed, N failed` line read.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { run } from './netns.js';

const root = resolve(import.meta.dirname, '..', '..');
const runner = resolve(root, '..', 'shared', 'tools', 'ipvs-vm', 'run-in-vm.sh');
const vmDir = process.env.IPVS_VM_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache'), 'podwire-ipvs-vm');

/** Whether the VM tooling is set up (CI runs its setup.sh). */
export const vmReady = existsSync(runner) && existsSync(join(vmDir, 'vmlinux'));
export const vmSkipReason = vmReady ? '' : ' (skipped: ../shared/tools/ipvs-vm is not set up; run its setup.sh)';

export interface VmSuiteResult {
  passed: number;
  failed: number;
  code: number;
  /** The suite's output (stdout then stderr). */
  output: string;
}

/** Bundles `entry` (relative to the project), runs it in the VM through `script` and returns its counts. */
export async function runVmSuite(entry: string, script: string, opts: { timeoutMs: number }): Promise<VmSuiteResult> {
  mkdirSync(join(root, 'dist'), { recursive: true });
  const dir = mkdtempSync(join(root, 'dist', 'vm-'));
  try {
    const bundle = join(dir, 'suite.mjs');
    await build({
      entryPoints: [join(root, entry)],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: bundle,
      logLevel: 'warning',
      banner: { js: "import { createRequire as __c } from 'node:module'; const require = __c(import.meta.url);" },
    });
    const guestSeconds = Math.floor(opts.timeoutMs / 1000) - 20;
    const r = await run(runner, [join(root, script), bundle], { timeoutMs: opts.timeoutMs, env: { ...process.env, IPVSLAB_TIMEOUT: String(guestSeconds) } });
    const output = r.stdout + r.stderr;
    const m = /(\d+) passed, (\d+) failed/.exec(output);
    return { passed: m ? Number(m[1]) : 0, failed: m ? Number(m[2]) : -1, code: r.code, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
