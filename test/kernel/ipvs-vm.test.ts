// Runs the IPVS suite (test/ipvs/) inside the IPVS VM: this machine's kernel
// has no IPVS. One boot for the whole suite.
import { describe, expect, it } from 'vitest';
import { runVmSuite, vmReady, vmSkipReason } from '../helpers/vm.js';

describe.skipIf(!vmReady)(`IPVS suite in the VM${vmSkipReason}`, () => {
  it('passes every in-VM test', { timeout: 720_000 }, async () => {
    const r = await runVmSuite('test/ipvs/suite.ts', 'test/ipvs/run.sh', { timeoutMs: 700_000 });
    expect(r.failed, r.output.slice(-4000)).toBe(0);
    expect(r.passed, r.output.slice(-4000)).toBeGreaterThanOrEqual(26);
    expect(r.code, r.output.slice(-2000)).toBe(0);
  });
});
