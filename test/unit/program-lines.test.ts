// runProgramLines: a program's output handed over a line at a time as it is read
// (how the iptables backend reads a 40 MB iptables-save back without one string).
import { describe, expect, it } from 'vitest';
import { runProgramLines } from '../../src/proxy/program.js';

// Writes 200k lines in pieces that split lines and multi-byte characters, and no final newline.
const WRITER = `
const lines = [];
for (let i = 0; i < 200000; i++) lines.push('-A KUBE-SVC-' + i + ' é→' + 'x'.repeat(i % 50));
const all = Buffer.from(lines.join('\\n'));
let at = 0;
const step = () => {
  if (at >= all.length) return;
  const n = 1 + ((at * 7919) % 65521);
  process.stdout.write(all.subarray(at, at + n), step);
  at += n;
};
step();
`;

describe('runProgramLines', () => {
  it('gives every line whole, across chunk boundaries and multi-byte characters, the last one without a newline', async () => {
    const got: string[] = [];
    const r = await runProgramLines([process.execPath, '-e', WRITER], (l) => got.push(l));
    expect(r.code).toBe(0);
    expect(got).toHaveLength(200000);
    for (const i of [0, 1, 4999, 123457, 199999]) expect(got[i]).toBe(`-A KUBE-SVC-${i} é→${'x'.repeat(i % 50)}`);
  });

  it('rejects with the consumer\'s error, and reports a failing program\'s exit code and stderr', async () => {
    await expect(runProgramLines([process.execPath, '-e', 'console.log("a\\nb")'], (l) => {
      if (l === 'b') throw new Error('bad line b');
    })).rejects.toThrow('bad line b');
    const r = await runProgramLines([process.execPath, '-e', 'console.error("no table"); process.exit(3)'], () => {});
    expect(r).toEqual({ code: 3, stderr: 'no table\n' });
    await expect(runProgramLines(['/nonexistent/podwire-test'], () => {})).rejects.toThrow(/cannot run \/nonexistent\/podwire-test/);
  });
});
