// Runs the SCTP suite (test/vm/sctp.ts) inside the VM of ../shared/tools/ipvs-vm:
// this machine's kernel has no SCTP. The suite is bundled with esbuild, booted
// once, and its closing `N passed, N failed` line is asserted here.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/netns.js';

const root = resolve(import.meta.dirname, '..', '..');
const runner = resolve(root, '..', 'shared', 'tools', 'ipvs-vm', 'run-in-vm.sh');
const vmDir = process.env.IPVS_VM_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache'), 'podwire-ipvs-vm');
const ready = existsSync(runner) && existsSync(join(vmDir, 'vmlinux'));

describe.skipIf(!ready)(`SCTP through the iptables and nftables backends, in the VM${ready ? '' : ' (skipped: ../shared/tools/ipvs-vm is not set up; run its setup.sh)'}`, () => {
  it('passes every in-VM SCTP test', { timeout: 400_000 }, async () => {
    // Inside the project (dist/), so the backends find rules-templates/ above the bundle.
    mkdirSync(join(root, 'dist'), { recursive: true });
    const dir = mkdtempSync(join(root, 'dist', 'vm-sctp-'));
    try {
      const bundle = join(dir, 'sctp.mjs');
      await build({
        entryPoints: [join(root, 'test/vm/sctp.ts')],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outfile: bundle,
        logLevel: 'warning',
        banner: { js: "import { createRequire as __c } from 'node:module'; const require = __c(import.meta.url);" },
      });
      const r = await run(runner, [join(root, 'test/vm/run.sh'), bundle], { timeoutMs: 380_000, env: { ...process.env, IPVSLAB_TIMEOUT: '360' } });
      const out = r.stdout + r.stderr;
      const m = /(\d+) passed, (\d+) failed/.exec(out);
      expect(m, out.slice(-4000)).not.toBeNull();
      expect(Number(m![2]), out.slice(-4000)).toBe(0);
      expect(Number(m![1])).toBe(12);
      expect(r.code, out.slice(-2000)).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
