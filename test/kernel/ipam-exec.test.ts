// podwire-ipam as a runtime runs it: the real bundle exec'd with CNI_* env and stdin, on a real
// data dir; interop with Debian's reference host-local on the same directory.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsScope, must, netnsPath, run } from '../helpers/netns.js';

const PLUGIN = join(process.cwd(), 'cni-bin', 'podwire-ipam');
const HOST_LOCAL = '/usr/lib/cni/host-local';
const scope = new NetnsScope('ipam');
let podNs = '';
let dataDir = '';

interface Call {
  code: number;
  json: Record<string, unknown> | null;
  stderr: string;
}

async function cni(bin: string, command: string, conf: object, over: Record<string, string> = {}): Promise<Call> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'ctr1',
    CNI_NETNS: podNs,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    ...over,
  };
  for (const [k, v] of Object.entries(env)) if (v === '') delete env[k];
  const args = bin === HOST_LOCAL ? [] : [bin];
  const r = await run(bin === HOST_LOCAL ? bin : process.execPath, args, { env, input: JSON.stringify(conf) });
  const out = r.stdout.trim();
  return { code: r.code, json: out ? (JSON.parse(out) as Record<string, unknown>) : null, stderr: r.stderr };
}
const add = (conf: object, id: string, bin = PLUGIN) => cni(bin, 'ADD', conf, { CNI_CONTAINERID: id });
const del = (conf: object, id: string, bin = PLUGIN) => cni(bin, 'DEL', conf, { CNI_CONTAINERID: id });

function conf(network: string, ranges: object[][], cniVersion = '1.1.0', extra: object = {}): Record<string, unknown> {
  return { cniVersion, name: network, type: 'podwire-ipam', ipam: { type: 'podwire-ipam', dataDir, ranges, ...extra } };
}
function firstIp(c: Call): string {
  const ips = c.json?.ips as Array<{ address: string }> | undefined;
  if (c.code !== 0 || !ips?.[0]) throw new Error(`ADD failed: ${JSON.stringify(c.json)} ${c.stderr}`);
  return ips[0].address.split('/')[0] as string;
}
const files = (network: string) => readdirSync(join(dataDir, network)).sort();

beforeAll(async () => {
  await scope.cleanup();
  for (const d of readdirSync('/tmp').filter((n) => n.startsWith('pw-t-ipam-'))) rmSync(join('/tmp', d), { recursive: true, force: true });
  await must(process.execPath, ['scripts/build.mjs']);
  podNs = netnsPath(await scope.create('pod'));
  dataDir = mkdtempSync('/tmp/pw-t-ipam-');
});
afterAll(async () => {
  await scope.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('podwire-ipam executable', () => {
  it('VERSION lists every spec version and echoes the caller\'s', async () => {
    const r = await cni(PLUGIN, 'VERSION', { cniVersion: '0.4.0' });
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });

  it('ADD, CHECK, STATUS, DEL with host-local\'s disk layout', async () => {
    const c = conf('life', [[{ subnet: '10.50.0.0/24' }], [{ subnet: 'fd50::/64' }]], '1.1.0', { routes: [{ dst: '0.0.0.0/0' }] });
    const r = await add(c, 'ctr1');
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      ips: [{ address: '10.50.0.2/24', gateway: '10.50.0.1' }, { address: 'fd50::2/64', gateway: 'fd50::1' }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: {},
    });
    expect(files('life')).toEqual(['10.50.0.2', 'fd50::2', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
    expect(readFileSync(join(dataDir, 'life', '10.50.0.2'), 'utf8')).toBe('ctr1\r\neth0');
    expect(readFileSync(join(dataDir, 'life', 'last_reserved_ip.1'), 'utf8')).toBe('fd50::2');
    expect((await cni(PLUGIN, 'CHECK', c)).code).toBe(0);
    expect((await cni(PLUGIN, 'STATUS', c)).code).toBe(0);
    expect((await del(c, 'ctr1')).code).toBe(0);
    expect((await del(c, 'ctr1')).code).toBe(0); // DEL twice
    const chk = await cni(PLUGIN, 'CHECK', c);
    expect([chk.code, chk.json?.code]).toEqual([1, 999]);
    expect(files('life')).toEqual(['last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
  });

  it('results in every spec version', async () => {
    for (const v of ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0']) {
      const c = conf(`ver${v.replaceAll('.', '')}`, [[{ subnet: '10.51.0.0/24' }]], v);
      const r = await add(c, 'ctr1');
      expect(r.code).toBe(0);
      if (v < '0.3.0') expect(r.json).toEqual({ cniVersion: v, ip4: { ip: '10.51.0.2/24', gateway: '10.51.0.1' }, dns: {} });
      else if (v < '1.0.0') expect(r.json).toEqual({ cniVersion: v, ips: [{ version: '4', address: '10.51.0.2/24', gateway: '10.51.0.1' }], dns: {} });
      else expect(r.json).toEqual({ cniVersion: v, ips: [{ address: '10.51.0.2/24', gateway: '10.51.0.1' }], dns: {} });
    }
  });

  it('exhaustion of a /29 (code 11), STATUS 50, and GC frees what is not valid', async () => {
    const c = conf('small', [[{ subnet: '10.52.0.0/29' }]]);
    const got: string[] = [];
    for (let i = 0; i < 5; i++) got.push(firstIp(await add(c, `c${i}`)));
    expect(got).toEqual(['10.52.0.2', '10.52.0.3', '10.52.0.4', '10.52.0.5', '10.52.0.6']);
    const full = await add(c, 'c5');
    expect([full.code, full.json?.code]).toEqual([1, 11]);
    const st = await cni(PLUGIN, 'STATUS', c);
    expect([st.code, st.json?.code]).toEqual([1, 50]);
    const gc = await cni(PLUGIN, 'GC', { ...c, 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }] });
    expect(gc.code).toBe(0);
    expect(files('small')).toEqual(['10.52.0.3', 'last_reserved_ip.0', 'lock']);
    expect((await cni(PLUGIN, 'STATUS', c)).code).toBe(0);
  });

  it('requested IPs from CNI_ARGS and runtimeConfig; taken → 11, outside → 7', async () => {
    const c = conf('req', [[{ subnet: '10.53.0.0/24' }]]);
    expect(firstIp(await cni(PLUGIN, 'ADD', c, { CNI_CONTAINERID: 'a', CNI_ARGS: 'IgnoreUnknown=1;IP=10.53.0.99' }))).toBe('10.53.0.99');
    expect(firstIp(await add({ ...c, runtimeConfig: { ips: ['10.53.0.98/24'] } }, 'b'))).toBe('10.53.0.98');
    expect((await cni(PLUGIN, 'ADD', c, { CNI_CONTAINERID: 'c', CNI_ARGS: 'IP=10.53.0.99' })).json?.code).toBe(11);
    expect((await cni(PLUGIN, 'ADD', c, { CNI_CONTAINERID: 'c', CNI_ARGS: 'IP=10.54.0.1' })).json?.code).toBe(7);
    expect(files('req')).toEqual(['10.53.0.98', '10.53.0.99', 'last_reserved_ip.0', 'lock']);
  });

  it('30 concurrent ADDs get 30 distinct IPs; 30 concurrent DELs empty the store', async () => {
    const c = conf('many', [[{ subnet: '10.55.0.0/24' }]]);
    const ids = Array.from({ length: 30 }, (_, i) => `p${i}`);
    const ips = (await Promise.all(ids.map((id) => add(c, id)))).map(firstIp);
    expect(new Set(ips).size).toBe(30);
    expect(files('many')).toHaveLength(32);
    const dels = await Promise.all(ids.map((id) => del(c, id)));
    expect(dels.every((d) => d.code === 0)).toBe(true);
    expect(files('many')).toEqual(['last_reserved_ip.0', 'lock']);
  });

  it.skipIf(!existsSync(HOST_LOCAL))('shares one data dir with the reference host-local', async () => {
    const c = conf('interop', [[{ subnet: '10.56.0.0/24' }]], '1.0.0');
    const jobs: Array<Promise<Call>> = [];
    for (let i = 0; i < 20; i++) jobs.push(add(c, `i${i}`, i % 2 ? HOST_LOCAL : PLUGIN));
    const ips = (await Promise.all(jobs)).map(firstIp);
    expect(new Set(ips).size).toBe(20);
    // each frees the other's reservations by container ID
    for (let i = 0; i < 20; i++) expect((await del(c, `i${i}`, i % 2 ? PLUGIN : HOST_LOCAL)).code).toBe(0);
    expect(files('interop')).toEqual(['last_reserved_ip.0', 'lock']);
    // host-local's CHECK sees podwire's reservation
    await add(c, 'x1');
    expect((await cni(HOST_LOCAL, 'CHECK', c, { CNI_CONTAINERID: 'x1' })).code).toBe(0);
  });

  it('error codes: 1, 4, 5, 6, 7, 8', async () => {
    const c = conf('errs', [[{ subnet: '10.57.0.0/24' }]]);
    const code = async (r: Promise<Call>) => ((await r).json?.code as number | undefined) ?? 0;
    expect(await code(cni(PLUGIN, 'ADD', { ...c, cniVersion: '0.9.0' }))).toBe(1);
    expect(await code(cni(PLUGIN, 'CHECK', { ...c, cniVersion: '0.3.1' }))).toBe(1);
    expect(await code(cni(PLUGIN, 'GC', { ...c, cniVersion: '1.0.0' }))).toBe(1);
    expect(await code(cni(PLUGIN, 'ADD', c, { CNI_NETNS: '' }))).toBe(4);
    expect(await code(cni(PLUGIN, 'ADD', c, { CNI_IFNAME: 'bad/name' }))).toBe(4);
    expect(await code(cni(PLUGIN, 'ADD', c, { CNI_COMMAND: 'NOPE' }))).toBe(4);
    expect(await code(cni(PLUGIN, 'ADD', { ...c, ipam: { dataDir: '/dev/null/x', ranges: [[{ subnet: '10.57.0.0/24' }]] } }))).toBe(5);
    const bad = await run(process.execPath, [PLUGIN], { env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'a', CNI_NETNS: podNs, CNI_IFNAME: 'eth0', CNI_PATH: '/x' }, input: '{not json' });
    expect([bad.code, JSON.parse(bad.stdout).code]).toEqual([1, 6]);
    expect(await code(cni(PLUGIN, 'ADD', { ...c, ipam: { dataDir, ranges: [[{ subnet: '10.57.0.1/24' }]] } }))).toBe(7);
    expect(await code(cni(PLUGIN, 'ADD', { cniVersion: '1.0.0', name: 'errs', type: 'x' }))).toBe(7);
    expect(await code(cni(PLUGIN, 'ADD', c, { CNI_NETNS: '/proc/self/ns/net' }))).toBe(8);
  });
});
