// The lab on its default topology, as the README runs it: every check passes,
// and `lab down` leaves no namespace, process or file behind.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/netns.js';

const repo = join(import.meta.dirname, '..', '..');
const bin = join(repo, 'bin', 'podwire');
const prefix = 'pw-t-lab-';
const stateDir = '/run/pw-t-lab';
const where = ['--prefix', prefix, '--state-dir', stateDir];
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

const labNamespaces = () => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(prefix)) : []);

async function labProcesses(): Promise<string[]> {
  const r = await run('pgrep', ['-f', stateDir]);
  return r.stdout.split('\n').filter(Boolean);
}

beforeAll(async () => {
  await run(process.execPath, [bin, 'lab', 'down', ...where], { env });
});
afterAll(async () => {
  await run(process.execPath, [bin, 'lab', 'down', ...where], { env });
});

describe('podwire lab', () => {
  it('builds the default lab, passes every check, and shows its state', async () => {
    const up = await run(process.execPath, [bin, 'lab', 'up', '--keep', ...where], { env, timeoutMs: 120_000 });
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toMatch(/all \d+ checks passed/);
    expect(up.stdout).not.toMatch(/FAIL/);
    // The report names every pod with its address and ADD time.
    expect(up.stdout.match(/CNI ADD +[\d.]+ ms/g)?.length).toBe(6);
    expect(labNamespaces().length).toBe(2 + 6 + 2); // nodes, pods, underlay, client
    const status = await run(process.execPath, [bin, 'lab', 'status', ...where], { env });
    expect(status.code).toBe(0);
    expect(status.stdout.match(/proxy pid \d+ running/g)?.length).toBe(2);
  }, 180_000);

  it.each([
    ['nftables', 'pw-t-labn-'],
    ['userspace', 'pw-t-labu-'],
  ])('passes every check with the %s backend too, and removes itself without --keep', async (mode, other) => {
    const dir = `/run/${other.slice(0, -1)}`;
    const up = await run(process.execPath, [bin, 'lab', 'up', '--proxy-mode', mode, '--prefix', other, '--state-dir', dir], { env, timeoutMs: 120_000 });
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toContain(`podwire proxy (${mode})`);
    expect(up.stdout).toMatch(/all \d+ checks passed/);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(other)) : []).toEqual([]);
  }, 180_000);

  it('lab down leaves no namespace, process or file', async () => {
    const down = await run(process.execPath, [bin, 'lab', 'down', ...where], { env });
    expect(down.code).toBe(0);
    expect(labNamespaces()).toEqual([]);
    expect(existsSync(stateDir)).toBe(false);
    expect(await labProcesses()).toEqual([]);
  });
});
