// What podwire-bridge's start-up rests on: the built executable runs from its
// V8 code cache (and still runs without a usable one), it loads no Node
// module that costs milliseconds, and the address checks that replaced
// node:net's (netlink/ip.ts) accept exactly what node:net accepts, zones
// apart (Go's rules: a zone is refused).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isIP } from '../../src/netlink/ip.js';

const BIN = new URL('../../dist/cni-bin/', import.meta.url).pathname;
const BRIDGE = join(BIN, 'podwire-bridge');
const scratch = mkdtempSync(join(tmpdir(), 'pw-cni-startup-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Runs a CNI executable with CNI_COMMAND=VERSION; returns stdout, stderr and the Node modules it
 * loaded. With timing (PODWIRE_CNI_TIMING=1) it reports on stderr whether it used its code cache.
 */
function runVersion(file: string, timing = true): { status: number | null; stdout: string; stderr: string; modules: string[] } {
  const probe = join(scratch, 'probe.cjs');
  writeFileSync(
    probe,
    `const before = new Set(process.moduleLoadList);
process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(join(scratch, 'modules.txt'))},
  process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13)).join('\\n')));\n`,
  );
  const r = spawnSync(process.execPath, ['-r', probe, file], {
    input: '{"cniVersion":"1.0.0"}',
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: 'VERSION', ...(timing ? { PODWIRE_CNI_TIMING: '1' } : {}) },
  });
  const modules = readFileSync(join(scratch, 'modules.txt'), 'utf8').split('\n').filter(Boolean);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, modules };
}

describe('podwire-bridge executable start-up', () => {
  it('runs from its code cache and loads only cheap Node modules', () => {
    expect(runVersion(BRIDGE).stderr).toMatch(/code cache used/);
    // Without timing (which writes to stderr, a stream): what a runtime's call loads.
    const r = runVersion(BRIDGE, false);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '1.0.0' });
    expect(r.stderr).toBe('');
    // Each of these costs 0.3–3 ms of every call (measured in bench/cni.ts's notes).
    for (const costly of ['net', 'stream', 'child_process', 'module', 'perf_hooks', 'crypto', 'url']) {
      expect(r.modules).not.toContain(costly);
    }
  });

  it('still runs, compiling itself, when the cache is missing, stale or corrupt', () => {
    const copy = join(scratch, 'podwire-bridge');
    copyFileSync(BRIDGE, copy);
    expect(runVersion(copy).stderr).toMatch(/code cache none/);

    const cache = readFileSync(`${BRIDGE}.jscache`);
    // A cache made for another source (different header) is not even handed to V8.
    const other = Buffer.from(cache);
    other.write('0'.repeat(64), 0, 'latin1');
    writeFileSync(`${copy}.jscache`, other);
    const stale = runVersion(copy);
    expect(stale.status).toBe(0);
    expect(stale.stderr).toMatch(/code cache none/);

    // The right header with damaged V8 data: V8 refuses it, the plugin compiles as usual.
    const damaged = Buffer.from(cache);
    damaged.fill(0x5a, 64 + 16, 64 + 4096);
    writeFileSync(`${copy}.jscache`, damaged);
    const bad = runVersion(copy);
    expect(bad.status).toBe(0);
    expect(JSON.parse(bad.stdout)).toMatchObject({ cniVersion: '1.0.0' });
    expect(bad.stderr).toMatch(/code cache rejected by V8/);
  });
});

describe('IP address syntax (netlink/ip.ts) matches node:net, zones apart', () => {
  const nodeFamily = (s: string): number => (isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0);
  /** Whether ours and node:net disagree on s beyond zones (node:net takes "fe80::1%eth0", ours refuses any zone). */
  const disagree = (s: string): boolean => {
    const pct = s.indexOf('%');
    if (pct < 0) return isIP(s) !== nodeFamily(s);
    // Refused, though when node:net takes it, the address before the zone is ours too.
    return isIP(s) !== 0 || (isIPv6(s) && isIP(s.slice(0, pct)) !== 6);
  };

  it('agrees on the edge cases', () => {
    const cases = [
      '', '::', ':::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9',
      '1::2::3', '::ffff:1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5::1.2.3.4', '1:2:3:4:5:6::1.2.3.4', '1.2.3.4::',
      'fe80::1%eth0', 'fe80::1%', '%eth0', '::%1', 'fe80::1%a b', 'fe80::1%a_b', 'fe80::1%x-y.z:1', '1.2.3.4',
      '01.2.3.4', '1.2.3', '1.2.3.4.5', '255.255.255.255', '256.1.1.1', '1.2.3.4%eth0', ':1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:', '::1.2.3.4', '::1:1.2.3.4', '1::1.2.3.4', '2001:db8::', '0.0.0.0', '00.0.0.0', '1.2.3.04',
      '::ffff:01.2.3.4', '12345::', 'g::1', 'FFFF::', ' 1.2.3.4', '1.2.3.4 ',
    ];
    expect(cases.filter(disagree)).toEqual([]);
    expect(['fe80::1%eth0', '::%1', 'fe80::1%x-y.z:1'].map(isIP)).toEqual([0, 0, 0]);
  });

  it('agrees on 200k generated strings', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor((seed / 2147483648) * n);
    };
    const atoms = ['0', '1', '9', 'a', 'f', 'F', 'g', ':', '.', '%', '2', '5', '::', '255', '256', '01', 'ffff', '12345', '-', 'z'];
    const mismatches: string[] = [];
    for (let i = 0; i < 200_000; i++) {
      let s = '';
      if (i % 2 === 0) {
        for (let j = rnd(14) + 1; j > 0; j--) s += atoms[rnd(atoms.length)];
      } else {
        const parts: string[] = [];
        for (let j = rnd(9) + 1; j > 0; j--) {
          const r = rnd(100);
          parts.push(r < 15 ? '' : r < 25 ? `${rnd(300)}.${rnd(300)}.${rnd(3)}.${rnd(260)}` : rnd(70000).toString(16));
        }
        s = parts.join(':') + (rnd(10) === 0 ? `%${['eth0', '', 'a.b', 'x-y', 'a b'][rnd(5)]}` : '');
      }
      if (disagree(s)) mismatches.push(s);
    }
    expect(mismatches).toEqual([]);
  });
});
