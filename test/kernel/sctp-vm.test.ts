// Runs the SCTP suite (test/vm/sctp.ts) inside the VM of ../shared/tools/ipvs-vm:
// this machine's kernel has no SCTP. One boot for the whole suite.
import { describe, expect, it } from 'vitest';
import { runVmSuite, vmReady, vmSkipReason } from '../helpers/vm.js';

describe.skipIf(!vmReady)(`SCTP through the iptables and nftables backends, in the VM${vmSkipReason}`, () => {
  it('passes every in-VM SCTP test', { timeout: 400_000 }, async () => {
    const r = await runVmSuite('test/vm/sctp.ts', 'test/vm/run.sh', { timeoutMs: 380_000 });
    expect(r.failed, r.output.slice(-4000)).toBe(0);
    expect(r.passed, r.output.slice(-4000)).toBe(12);
    expect(r.code, r.output.slice(-2000)).toBe(0);
  });
});
