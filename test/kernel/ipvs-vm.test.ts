// Runs the IPVS suite (test/ipvs/) inside the IPVS VM: this machine's kernel
// has no IPVS. The suite is bundled with esbuild, booted once, and its
// closing `N passed, N failed` line is asserted here.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/netns.js';

const root = resolve(import.meta.dirname, '..', '..');
const runner = resolve(root, '..', 'shared', 'tools', 'ipvs-vm', 'run-in-vm.sh');
const vmDir = process.env.IPVS_VM_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache'), 'podwire-ipvs-vm');
const ready = existsSync(runner) && existsSync(join(vmDir, 'vmlinux'));

describe.skipIf(!ready)(`IPVS suite in the VM${ready ? '' : ' (skipped: ../shared/tools/ipvs-vm is not set up; run its setup.sh)'}`, () => {
  it('passes every in-VM test', { timeout: 720_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-ipvs-'));
    try {
      const bundle = join(dir, 'suite.mjs');
      await build({
        entryPoints: [join(root, 'test/ipvs/suite.ts')],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outfile: bundle,
        logLevel: 'warning',
        banner: { js: "import { createRequire as __c } from 'node:module'; const require = __c(import.meta.url);" },
      });
      const r = await run(runner, [join(root, 'test/ipvs/run.sh'), bundle], { timeoutMs: 700_000, env: { ...process.env, IPVSLAB_TIMEOUT: '600' } });
      const out = r.stdout + r.stderr;
      const m = /(\d+) passed, (\d+) failed/.exec(out);
      expect(m, out.slice(-4000)).not.toBeNull();
      expect(Number(m![2]), out.slice(-4000)).toBe(0);
      expect(Number(m![1])).toBeGreaterThanOrEqual(26);
      expect(r.code, out.slice(-2000)).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
