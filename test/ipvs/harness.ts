// A tiny test runner for the suite that runs inside the IPVS VM, where
// starting vitest costs seconds: named tests run one after another, each
// failure is printed with its stack, and the closing line is CI's
// `N passed, N failed`.
import { strict as assert } from 'node:assert';

export { assert };

type TestFn = () => Promise<void> | void;
const tests: Array<{ name: string; fn: TestFn }> = [];

export function test(name: string, fn: TestFn): void {
  tests.push({ name, fn });
}

/** filter: a regular expression over test names (e.g. 'setup|UDP'). */
export async function runTests(filter?: string): Promise<number> {
  const only = filter ? new RegExp(filter) : null;
  let passed = 0;
  let failed = 0;
  for (const t of tests) {
    if (only && !only.test(t.name)) continue;
    const t0 = performance.now();
    try {
      await t.fn();
      passed++;
      console.log(`ok   ${t.name} (${Math.round(performance.now() - t0)} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name} (${Math.round(performance.now() - t0)} ms)`);
      console.log(e instanceof Error ? (e.stack ?? e.message) : String(e));
    }
  }
  console.log(`\n${passed} passed, ${failed} failed`);
  return failed;
}
