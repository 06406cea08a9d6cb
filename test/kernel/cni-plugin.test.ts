// The podwire-bridge executable as a runtime runs it: exec'd inside a node
// namespace with CNI_* and the config on stdin. Result versions, error codes
// and exit status, concurrency, and chaining with Debian's portmap and tuning.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PODWIRE_BRIDGE, REFERENCE_CNI_DIR, execInNode, ipJson, linkNames, netConf, removeDataDir, reservations, tempDataDir } from '../helpers/cni.js';
import { NetnsScope, netnsPath, nsMust, nsRun } from '../helpers/netns.js';

const scope = new NetnsScope('cnix');
let node = '';
let dataDir = '';

const pw = (env: Parameters<typeof execInNode>[2], conf: unknown) => execInNode(node, PODWIRE_BRIDGE, env, conf);
const addEnv = (id: string, pod: string) => ({ command: 'ADD', containerId: id, netns: netnsPath(pod), ifname: 'eth0' });
const delEnv = (id: string, pod: string) => ({ command: 'DEL', containerId: id, netns: netnsPath(pod), ifname: 'eth0' });

async function vethsOnNode(): Promise<string[]> {
  return (await linkNames(node)).filter((n) => n.startsWith('veth'));
}

beforeAll(async () => {
  await scope.cleanup();
  node = await scope.create('node');
  dataDir = tempDataDir();
});

afterAll(async () => {
  await scope.cleanup();
  removeDataDir(dataDir);
});

describe('results in the requested version', () => {
  const versions = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'];
  for (const v of versions) {
    it(`cniVersion ${v}`, async () => {
      const pod = await scope.create(`v${v.replace(/\./g, '')}`);
      const conf = { ...netConf({ dataDir, name: 'pw-ver', subnet: '10.91.0.0/24' }), cniVersion: v };
      const r = await pw(addEnv(`ctr-${v}`, pod), conf);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.out.cniVersion).toBe(v);
      if (v === '0.1.0' || v === '0.2.0') {
        expect(r.out.ip4).toMatchObject({ ip: expect.stringMatching(/^10\.91\.0\.\d+\/24$/), gateway: '10.91.0.1' });
        expect(r.out.interfaces).toBeUndefined();
      } else {
        const ips = r.out.ips as Array<Record<string, unknown>>;
        expect(ips[0]).toMatchObject({ address: expect.stringMatching(/^10\.91\.0\.\d+\/24$/), gateway: '10.91.0.1', interface: 2 });
        if (v.startsWith('0.3') || v === '0.4.0') expect(ips[0]?.version).toBe('4');
        else expect(ips[0]?.version).toBeUndefined();
        expect((r.out.interfaces as Array<{ name: string }>).map((i) => i.name)[2]).toBe('eth0');
      }
      if (v === '0.4.0' || v === '1.0.0') {
        const c = await pw({ ...addEnv(`ctr-${v}`, pod), command: 'CHECK' }, { ...conf, prevResult: r.out });
        expect(c.code, c.stdout).toBe(0);
      }
      const d = await pw(delEnv(`ctr-${v}`, pod), conf);
      expect(d.code, d.stdout).toBe(0);
      expect(d.stdout).toBe('');
    });
  }
  it('leaves the store and the node clean', async () => {
    expect(reservations(dataDir, 'pw-ver')).toEqual([]);
    expect(await vethsOnNode()).toEqual([]);
  });
});

describe('errors: spec JSON on stdout, non-zero exit, nothing left', () => {
  let pod = '';
  beforeAll(async () => {
    pod = await scope.create('err');
  });
  const conf = () => netConf({ dataDir, name: 'pw-err', subnet: '10.92.0.0/24' });
  const cases: Array<[string, number, () => [Parameters<typeof execInNode>[2], unknown]]> = [
    ['unsupported cniVersion', 1, () => [addEnv('e', pod), { ...conf(), cniVersion: '9.9.9' }]],
    ['CNI_IFNAME missing', 4, () => [{ command: 'ADD', containerId: 'e', netns: netnsPath(pod) }, conf()]],
    ['not JSON', 6, () => [addEnv('e', pod), '{"cniVersion": ']],
    ['bad mtu', 7, () => [addEnv('e', pod), { ...conf(), mtu: 'big' }]],
    ['IPAM plugin not in CNI_PATH', 7, () => [addEnv('e', pod), { ...conf(), ipam: { type: 'no-such-ipam' } }]],
    ['CNI_NETNS is not a namespace', 8, () => [{ ...addEnv('e', pod), netns: '/tmp' }, conf()]],
    ['a route the kernel refuses (with ipMasq)', 999, () => [addEnv('e', pod), { ...conf(), ipMasq: true, ipam: { ...(conf().ipam as object), routes: [{ dst: '10.201.0.0/16', gw: '192.168.251.1' }] } }]],
  ];
  for (const [what, code, mk] of cases) {
    it(`${what} → code ${code}`, async () => {
      const [env, c] = mk();
      const r = await pw(env, c);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatchObject({ code, msg: expect.any(String) });
      expect(await vethsOnNode()).toEqual([]);
      expect(await linkNames(pod)).toEqual(['lo']);
      expect(reservations(dataDir, 'pw-err')).toEqual([]);
      expect(await masqElements()).not.toContain('e/eth0');
    });
  }
});

describe('30 concurrent ADDs and DELs', () => {
  for (const ipamType of ['podwire-ipam', 'host-local']) {
    it(`${ipamType}: 30 distinct addresses, and the DELs leave an empty store, no veth, no masquerade entry`, async () => {
      const name = `pw-many-${ipamType}`;
      const base = netConf({ dataDir, name, bridge: ipamType === 'host-local' ? 'pwbrm' : 'pwbrn', subnet: ipamType === 'host-local' ? '10.93.0.0/24' : '10.93.1.0/24' });
      const conf = { ...base, ipMasq: true, ipam: { ...(base.ipam as object), type: ipamType } };
      const pods = await Promise.all(Array.from({ length: 30 }, (_, i) => scope.create(`m${ipamType[0]}${i}`)));
      const adds = await Promise.all(pods.map((p, i) => pw(addEnv(`ctr-m${i}`, p), conf)));
      for (const a of adds) expect(a.code, a.stdout + a.stderr).toBe(0);
      const ips = adds.map((a) => (a.out.ips as Array<{ address: string }>)[0]!.address);
      expect(new Set(ips).size).toBe(30);
      expect(reservations(dataDir, name).length).toBe(30);
      expect((await vethsOnNode()).length).toBe(30);
      const dels = await Promise.all(pods.map((p, i) => pw(delEnv(`ctr-m${i}`, p), conf)));
      for (const d of dels) expect(d.code, d.stdout).toBe(0);
      expect(reservations(dataDir, name)).toEqual([]);
      expect(await vethsOnNode()).toEqual([]);
      expect(await masqElements()).not.toMatch(/ctr-m\d+\/eth0/);
      for (const p of pods) await scope.remove(p);
    }, 120_000);
  }
});

describe('chaining with the reference portmap and tuning (libcni order, prevResult)', () => {
  it('ADD podwire-bridge → portmap → tuning, then DEL in reverse', async () => {
    const pod = await scope.create('chain');
    const list = {
      cniVersion: '1.0.0',
      name: 'pw-chain',
      plugins: [
        { type: 'podwire-bridge', bridge: 'pwbrc', isGateway: true, ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.94.0.0/24' }]] } },
        { type: 'portmap', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] } },
        { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.accept_redirects': '0' } },
      ],
    };
    const env = addEnv('ctr-chain', pod);
    let prev: unknown;
    for (const p of list.plugins) {
      const conf = { cniVersion: list.cniVersion, name: list.name, ...p, ...(prev ? { prevResult: prev } : {}) };
      const bin = p.type === 'podwire-bridge' ? PODWIRE_BRIDGE : `${REFERENCE_CNI_DIR}/${p.type}`;
      const r = await execInNode(node, bin, env, conf);
      expect(r.code, `${p.type}: ${r.stdout} ${r.stderr}`).toBe(0);
      prev = r.out;
    }
    const final = prev as { interfaces: Array<{ name: string }>; ips: Array<{ address: string }> };
    expect(final.interfaces.map((i) => i.name)).toEqual(['pwbrc', expect.stringMatching(/^veth/), 'eth0']);
    expect((await nsMust(pod, 'sysctl', ['-n', 'net.ipv4.conf.eth0.accept_redirects'])).trim()).toBe('0');
    const rules = await nsMust(node, 'iptables-save', []);
    expect(rules).toMatch(/CNI-HOSTPORT-DNAT/);
    expect(rules).toMatch(/--dport 18080/);
    const check = { cniVersion: list.cniVersion, name: list.name, ...list.plugins[0], prevResult: final };
    expect((await pw({ ...env, command: 'CHECK' }, check)).code).toBe(0);
    for (const p of [...list.plugins].reverse()) {
      const conf = { cniVersion: list.cniVersion, name: list.name, ...p, prevResult: final };
      const bin = p.type === 'podwire-bridge' ? PODWIRE_BRIDGE : `${REFERENCE_CNI_DIR}/${p.type}`;
      const r = await execInNode(node, bin, { ...env, command: 'DEL' }, conf);
      expect(r.code, `${p.type} DEL: ${r.stdout} ${r.stderr}`).toBe(0);
    }
    expect(await linkNames(pod)).toEqual(['lo']);
    expect(await vethsOnNode()).toEqual([]);
    expect(reservations(dataDir, 'pw-chain')).toEqual([]);
    expect(await nsMust(node, 'iptables-save', [])).not.toMatch(/--dport 18080/);
  });
});

describe('GC and STATUS', () => {
  it('STATUS succeeds for a layer-2 network; GC with host-local (no GC before 1.1) is skipped with a note', async () => {
    const l2 = { cniVersion: '1.1.0', name: 'pw-l2s', type: 'podwire-bridge', bridge: 'pwbrs' };
    expect((await pw({ command: 'STATUS' }, l2)).code).toBe(0);
    const gc = { ...netConf({ dataDir, name: 'pw-gc', subnet: '10.95.0.0/24' }), cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] };
    const r = await pw({ command: 'GC' }, gc);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stderr).toMatch(/host-local does not support GC/);
  });

  it('prints the version and supported versions for VERSION', async () => {
    const r = await pw({ command: 'VERSION' }, { cniVersion: '1.0.0' });
    expect(r.out.supportedVersions).toContain('1.1.0');
    const br = await ipJson(node, ['link', 'show', 'type', 'bridge']);
    expect(Array.isArray(br)).toBe(true);
  });
});

async function masqElements(): Promise<string> {
  const r = await nsRun(node, 'nft', ['list', 'table', 'inet', 'podwire-cni']);
  return r.code === 0 ? r.stdout : '';
}

describe('ipMasq over nf_tables', () => {
  it('a pod reaches an outside namespace that sees the node address as source; DEL and GC remove the entries', async () => {
    const outside = await scope.create('out');
    await nsMust(node, 'ip', ['link', 'add', 'pwup0', 'type', 'veth', 'peer', 'name', 'pwup1', 'netns', outside]);
    await nsMust(node, 'ip', ['addr', 'add', '192.168.77.1/24', 'dev', 'pwup0']);
    await nsMust(node, 'ip', ['link', 'set', 'pwup0', 'up']);
    await nsMust(outside, 'ip', ['addr', 'add', '192.168.77.2/24', 'dev', 'pwup1']);
    await nsMust(outside, 'ip', ['link', 'set', 'pwup1', 'up']);
    const conf = { ...netConf({ dataDir, name: 'pw-masq', bridge: 'pwbrq', subnet: '10.96.0.0/24' }), ipMasq: true, isDefaultGateway: true, hairpinMode: true };
    const pod = await scope.create('mq');
    const r = await pw(addEnv('ctr-mq', pod), conf);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const podIp = (r.out.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;
    expect(await masqElements()).toContain('ctr-mq/eth0');

    const srv = nsRun(outside, 'ncat', ['-v', '-l', '192.168.77.2', '9000', '--send-only'], { input: 'outside\n', timeoutMs: 10_000 });
    await new Promise((res) => setTimeout(res, 300));
    const cli = await nsRun(pod, 'ncat', ['192.168.77.2', '9000', '--recv-only', '-w', '3'], { timeoutMs: 10_000 });
    const s = await srv;
    expect(cli.stdout.trim()).toBe('outside');
    expect(s.stderr).toMatch(/Connection from 192\.168\.77\.1/);
    expect(s.stderr).not.toContain(podIp);

    const d = await pw(delEnv('ctr-mq', pod), conf);
    expect(d.code, d.stdout).toBe(0);
    expect(await masqElements()).not.toContain('ctr-mq/eth0');

    // DEL without the netns (the reference leaks its chain here: plugins#810).
    const pod2 = await scope.create('mq2');
    expect((await pw(addEnv('ctr-mq2', pod2), conf)).code).toBe(0);
    await scope.remove(pod2);
    expect((await pw({ ...delEnv('ctr-mq2', pod2), netns: '' }, conf)).code).toBe(0);
    expect(await masqElements()).not.toContain('ctr-mq2/eth0');
    expect(reservations(dataDir, 'pw-masq')).toEqual([]);
  });
});

describe('podwire-ipam in process, and interop with the reference bridge', () => {
  const pwIpam = (name: string, subnet: string, bridge = 'pwbri') => ({
    cniVersion: '1.1.0',
    name,
    type: 'podwire-bridge',
    bridge,
    isGateway: true,
    ipMasq: true,
    ipam: { type: 'podwire-ipam', dataDir, ranges: [[{ subnet }]] },
  });

  it('ADD/CHECK/DEL with cniVersion 1.1.0 and podwire-ipam; STATUS ok', async () => {
    const conf = pwIpam('pw-ipam', '10.97.0.0/24');
    const pod = await scope.create('ip1');
    const r = await pw(addEnv('ctr-ip1', pod), conf);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.out.cniVersion).toBe('1.1.0');
    expect(reservations(dataDir, 'pw-ipam')).toEqual([(r.out.ips as Array<{ address: string }>)[0]!.address.split('/')[0]]);
    expect((await pw({ ...addEnv('ctr-ip1', pod), command: 'CHECK' }, { ...conf, prevResult: r.out })).code).toBe(0);
    expect((await pw({ command: 'STATUS' }, conf)).code).toBe(0);
    expect((await pw(delEnv('ctr-ip1', pod), conf)).code).toBe(0);
    expect(reservations(dataDir, 'pw-ipam')).toEqual([]);
  });

  it('GC frees reservations and masquerade entries not in cni.dev/valid-attachments', async () => {
    const conf = pwIpam('pw-gc2', '10.98.0.0/24', 'pwbrg');
    const pods = await Promise.all([0, 1, 2].map((i) => scope.create(`g${i}`)));
    for (const [i, p] of pods.entries()) {
      const a = await pw(addEnv(`ctr-g${i}`, p), conf);
      expect(a.code, a.stdout).toBe(0);
    }
    expect(reservations(dataDir, 'pw-gc2').length).toBe(3);
    const gc = { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'ctr-g1', ifname: 'eth0' }] };
    const r = await pw({ command: 'GC' }, gc);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(reservations(dataDir, 'pw-gc2').length).toBe(1);
    const nft = await masqElements();
    expect(nft).toContain('ctr-g1/eth0');
    expect(nft).not.toContain('ctr-g0/eth0');
    expect(nft).not.toContain('ctr-g2/eth0');
    for (const [i, p] of pods.entries()) expect((await pw(delEnv(`ctr-g${i}`, p), conf)).code).toBe(0);
    expect(reservations(dataDir, 'pw-gc2')).toEqual([]);
  });

  it('the reference bridge works with podwire-ipam', async () => {
    const conf = { ...pwIpam('pw-interop', '10.99.0.0/24'), cniVersion: '1.0.0', type: 'bridge', bridge: 'pwbrr', ipMasq: false };
    const pod = await scope.create('ref');
    const r = await execInNode(node, `${REFERENCE_CNI_DIR}/bridge`, addEnv('ctr-ref', pod), conf);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((r.out.ips as Array<{ address: string }>)[0]!.address).toMatch(/^10\.99\.0\.\d+\/24$/);
    expect(reservations(dataDir, 'pw-interop').length).toBe(1);
    expect((await execInNode(node, `${REFERENCE_CNI_DIR}/bridge`, delEnv('ctr-ref', pod), conf)).code).toBe(0);
    expect(reservations(dataDir, 'pw-interop')).toEqual([]);
  });
});

describe('deploy/cni/10-podwire.conflist', () => {
  it('runs as shipped (dual-stack, podwire-ipam, portmap), with only dataDir moved to a temp dir', async () => {
    const list = JSON.parse(readFileSync(new URL('../../deploy/cni/10-podwire.conflist', import.meta.url), 'utf8')) as {
      cniVersion: string;
      name: string;
      plugins: Array<Record<string, unknown> & { type: string }>;
    };
    (list.plugins[0]!.ipam as Record<string, unknown>).dataDir = dataDir;
    const pod = await scope.create('ship');
    const env = addEnv('ctr-ship', pod);
    let prev: unknown;
    for (const p of list.plugins) {
      const bin = p.type === 'podwire-bridge' ? PODWIRE_BRIDGE : `${REFERENCE_CNI_DIR}/${p.type}`;
      const r = await execInNode(node, bin, env, { cniVersion: list.cniVersion, name: list.name, ...p, ...(prev ? { prevResult: prev } : {}) });
      expect(r.code, `${p.type}: ${r.stdout} ${r.stderr}`).toBe(0);
      prev = r.out;
    }
    const ips = (prev as { ips: Array<{ address: string }> }).ips.map((i) => i.address);
    expect(ips).toEqual([expect.stringMatching(/^10\.244\.1\.\d+\/24$/), expect.stringMatching(/^fd00:10:244:1::[0-9a-f]+\/64$/)]);
    for (const p of [...list.plugins].reverse()) {
      const bin = p.type === 'podwire-bridge' ? PODWIRE_BRIDGE : `${REFERENCE_CNI_DIR}/${p.type}`;
      const r = await execInNode(node, bin, { ...env, command: 'DEL' }, { cniVersion: list.cniVersion, name: list.name, ...p, prevResult: prev });
      expect(r.code, `${p.type} DEL: ${r.stdout}`).toBe(0);
    }
    expect(reservations(dataDir, 'podwire')).toEqual([]);
  });
});
