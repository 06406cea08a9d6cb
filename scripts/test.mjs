// The whole test suite: type check, then vitest. Prints the plain closing line
// `N passed, N failed` that CI reads, and exits non-zero on any failure.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const report = join(root, '.vitest-report.json');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const extra = process.argv.slice(2);

let failed = 0;
let passed = 0;
let skipped = 0;

const tsc = spawnSync(bin('tsc'), ['--noEmit', '-p', root], { stdio: 'inherit', cwd: root });
if (tsc.status === 0) passed++;
else {
  failed++;
  console.error('typecheck: FAILED');
}

rmSync(report, { force: true });
const vt = spawnSync(bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra], {
  stdio: 'inherit',
  cwd: root,
});
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  // A file that fails to load has no tests to count, but it is a failure.
  for (const f of r.testResults ?? []) {
    if (f.status === 'failed' && (f.assertionResults ?? []).length === 0) failed++;
  }
} else {
  failed++;
  console.error('vitest wrote no report');
}
if (vt.status !== 0 && failed === 0) failed++;
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
