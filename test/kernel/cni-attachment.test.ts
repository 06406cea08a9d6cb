// The bridge plugin's ADD/DEL/CHECK logic against real namespaces: a node
// namespace (pw-t-cni-node…) holding the bridge, pod namespaces holding eth0,
// Debian's host-local as the IPAM. Traffic is real TCP (ncat) between them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAttachment, checkAttachment, delAttachment, type AttachmentDeps } from '../../src/cni/bridge/attachment.js';
import { parseBridgeConf } from '../../src/cni/bridge/config.js';
import type { BridgeResult } from '../../src/cni/bridge/result.js';
import { CniError } from '../../src/cni/spec/errors.js';
import { cniEnv, hostLocalIpam, ipJson, linkNames, netConf, removeDataDir, reservations, tempDataDir } from '../helpers/cni.js';
import { NetnsScope, must, netnsPath, nsMust, nsRun } from '../helpers/netns.js';

const scope = new NetnsScope('cni');
let node = '';
let dataDir = '';

function depsFor(conf: Record<string, unknown>): AttachmentDeps {
  return { ipam: hostLocalIpam(conf), masquerade: undefined, nodeNetns: netnsPath(node) };
}

function add(conf: Record<string, unknown>, id: string, pod: string, args: Record<string, string> = {}): BridgeResult {
  const env = cniEnv('ADD', id, netnsPath(pod), 'eth0', args);
  return addAttachment(parseBridgeConf(conf, env.args), env, depsFor(conf));
}

function del(conf: Record<string, unknown>, id: string, netns: string): void {
  const env = cniEnv('DEL', id, netns);
  delAttachment(parseBridgeConf(conf, env.args), env, depsFor(conf));
}

function check(conf: Record<string, unknown>, id: string, pod: string, prev: BridgeResult): void {
  const env = cniEnv('CHECK', id, netnsPath(pod));
  checkAttachment(parseBridgeConf(conf, env.args), env, prev, depsFor(conf));
}

async function vethsOnNode(): Promise<string[]> {
  return (await linkNames(node)).filter((n) => n.startsWith('veth'));
}

async function tcpOnce(server: string, client: string, ip: string, port: number): Promise<string> {
  const srv = nsRun(server, 'ncat', ['-l', ip, String(port), '--send-only'], { input: 'hello over the bridge\n', timeoutMs: 10_000 });
  await new Promise((r) => setTimeout(r, 300));
  const cli = await nsRun(client, 'ncat', [ip, String(port), '--recv-only', '-w', '3'], { timeoutMs: 10_000 });
  await srv;
  return cli.stdout.trim();
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

describe('ADD/CHECK/DEL with host-local', () => {
  const conf = () => netConf({ dataDir, isDefaultGateway: true, hairpinMode: true, name: 'pw-basic', subnet: '10.77.0.0/24' });
  let p1 = '';
  let p2 = '';
  let r1: BridgeResult;
  let r2: BridgeResult;

  beforeAll(async () => {
    p1 = await scope.create('p1');
    p2 = await scope.create('p2');
    r1 = add(conf(), 'ctr-p1', p1, { IgnoreUnknown: '1', MAC: '0a:58:0a:4d:00:aa' });
    r2 = add(conf(), 'ctr-p2', p2);
  });

  it('returns bridge, host veth and pod interface with addresses, gateway and default route', () => {
    expect(r1.interfaces?.map((i) => i.name)).toEqual(['pwbr0', expect.stringMatching(/^veth[0-9a-f]{8}$/), 'eth0']);
    expect(r1.interfaces?.[2]).toMatchObject({ name: 'eth0', mac: '0a:58:0a:4d:00:aa', sandbox: netnsPath(p1) });
    expect(r1.ips).toEqual([{ address: expect.stringMatching(/^10\.77\.0\.\d+\/24$/), gateway: '10.77.0.1', interface: 2 }]);
    expect(r1.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.77.0.1' }]);
    expect(r1.ips?.[0]?.address).not.toBe(r2.ips?.[0]?.address);
  });

  it('puts the gateway on the bridge, the host veth on it with hairpin, the address and route in the pod', async () => {
    const br = await ipJson(node, ['addr', 'show', 'dev', 'pwbr0']);
    expect(JSON.stringify(br)).toContain('"local":"10.77.0.1","prefixlen":24');
    const hostName = r1.interfaces![1]!.name;
    const port = await ipJson(node, ['-d', 'link', 'show', 'dev', hostName]);
    expect(port[0]?.master).toBe('pwbr0');
    expect((port[0]?.linkinfo as { info_slave_data?: { hairpin?: boolean } }).info_slave_data?.hairpin).toBe(true);
    const eth0 = await ipJson(p1, ['addr', 'show', 'dev', 'eth0']);
    expect(JSON.stringify(eth0)).toContain(`"local":"${r1.ips![0]!.address.split('/')[0]}"`);
    const routes = await ipJson(p1, ['route', 'show', 'default']);
    expect(routes[0]).toMatchObject({ dst: 'default', gateway: '10.77.0.1', dev: 'eth0' });
    expect((await nsMust(node, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).trim()).toBe('1');
    // The pod end was created in the pod's namespace, never on the node.
    expect(await linkNames(node)).not.toContain('eth0');
  });

  it('carries pod-to-pod TCP over the bridge both ways, and pod-to-gateway TCP', async () => {
    const ip2 = r2.ips![0]!.address.split('/')[0]!;
    expect(await tcpOnce(p2, p1, ip2, 8080)).toBe('hello over the bridge');
    expect(await tcpOnce(node, p1, '10.77.0.1', 8080)).toBe('hello over the bridge');
    expect(await tcpOnce(p1, p2, r1.ips![0]!.address.split('/')[0]!, 8082)).toBe('hello over the bridge');
  });

  it('CHECK passes against the result and fails once the address is gone', async () => {
    check(conf(), 'ctr-p1', p1, r1);
    await nsMust(p1, 'ip', ['addr', 'del', r1.ips![0]!.address, 'dev', 'eth0']);
    expect(() => check(conf(), 'ctr-p1', p1, r1)).toThrow(/address 10\.77\.0\.\d+\/24 expected on eth0 is missing/);
    expect(() => check(conf(), 'ctr-p1', p1, { ...r1, interfaces: [] })).toThrow(/no bridge interface/);
  });

  it('DEL removes the pod interface, its host veth and the reservation; a second DEL succeeds', async () => {
    const hostName = r1.interfaces![1]!.name;
    del(conf(), 'ctr-p1', netnsPath(p1));
    expect(await linkNames(p1)).not.toContain('eth0');
    expect(await linkNames(node)).not.toContain(hostName);
    expect(reservations(dataDir, 'pw-basic')).toEqual([r2.ips![0]!.address.split('/')[0]]);
    del(conf(), 'ctr-p1', netnsPath(p1));
  });

  it('DEL with the namespace gone, and with CNI_NETNS empty, frees everything', async () => {
    const hostName = r2.interfaces![1]!.name;
    // CNI_NETNS empty while the namespace still exists: the host end is found by its alias.
    del(conf(), 'ctr-p2', '');
    expect(await linkNames(node)).not.toContain(hostName);
    expect(await linkNames(p2)).not.toContain('eth0');
    expect(reservations(dataDir, 'pw-basic')).toEqual([]);
    const p3 = await scope.create('p3');
    add(conf(), 'ctr-p3', p3);
    await scope.remove(p3);
    del(conf(), 'ctr-p3', netnsPath(p3));
    expect(reservations(dataDir, 'pw-basic')).toEqual([]);
    expect(await vethsOnNode()).toEqual([]);
  });
});

describe('failures leave nothing behind', () => {
  it('a route the kernel refuses undoes the veth and the reservation', async () => {
    const pod = await scope.create('fail1');
    const conf = netConf({ dataDir, name: 'pw-fail', subnet: '10.78.0.0/24' });
    (conf.ipam as Record<string, unknown>).routes = [{ dst: '10.200.0.0/16', gw: '192.168.250.1' }];
    expect(() => add(conf, 'ctr-fail', pod)).toThrow(/failed to add route 10\.200\.0\.0\/16 via 192\.168\.250\.1 dev eth0/);
    expect(await linkNames(pod)).toEqual(['lo']);
    expect(await vethsOnNode()).toEqual([]);
    expect(reservations(dataDir, 'pw-fail')).toEqual([]);
  });

  it('a /29 gives five pods; the sixth ADD fails cleanly', async () => {
    const conf = netConf({ dataDir, name: 'pw-small', bridge: 'pwbr29', subnet: '10.79.0.0/29' });
    const pods: string[] = [];
    for (let i = 0; i < 6; i++) pods.push(await scope.create(`s${i}`));
    const ips = pods.slice(0, 5).map((p, i) => add(conf, `ctr-s${i}`, p).ips![0]!.address);
    expect(new Set(ips).size).toBe(5);
    expect(() => add(conf, 'ctr-s5', pods[5]!)).toThrow(/no IP addresses available/);
    expect(await linkNames(pods[5]!)).toEqual(['lo']);
    expect((await vethsOnNode()).length).toBe(5);
    for (let i = 0; i < 5; i++) del(conf, `ctr-s${i}`, netnsPath(pods[i]!));
    expect(reservations(dataDir, 'pw-small')).toEqual([]);
    expect(await vethsOnNode()).toEqual([]);
  });

  it('a non-bridge link with the bridge name is an error 7; a foreign bridge address needs forceAddress', async () => {
    const pod = await scope.create('conflict');
    await nsMust(node, 'ip', ['link', 'add', 'pwnotbr', 'type', 'veth', 'peer', 'name', 'pwnotbr-p']);
    const conf = netConf({ dataDir, name: 'pw-conf', bridge: 'pwnotbr', subnet: '10.80.0.0/24' });
    let err: unknown;
    try {
      add(conf, 'ctr-c', pod);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(7);
    expect((err as CniError).message).toMatch(/"pwnotbr" already exists but is not a bridge/);
    await nsMust(node, 'ip', ['link', 'del', 'pwnotbr']);

    await nsMust(node, 'ip', ['link', 'add', 'pwbrf', 'type', 'bridge']);
    await nsMust(node, 'ip', ['addr', 'add', '10.81.9.9/24', 'dev', 'pwbrf']);
    const f = netConf({ dataDir, name: 'pw-force', bridge: 'pwbrf', subnet: '10.81.0.0/24' });
    expect(() => add(f, 'ctr-f', pod)).toThrow(/"pwbrf" already has an IP address \(10\.81\.9\.9\/24\)/);
    expect(await vethsOnNode()).toEqual([]);
    expect(reservations(dataDir, 'pw-force')).toEqual([]);
    const r = add({ ...f, forceAddress: true }, 'ctr-f', pod);
    const addrs = JSON.stringify(await ipJson(node, ['-4', 'addr', 'show', 'dev', 'pwbrf']));
    expect(addrs).toContain('"local":"10.81.0.1"');
    expect(addrs).not.toContain('10.81.9.9');
    expect(r.ips?.[0]?.gateway).toBe('10.81.0.1');
    del(f, 'ctr-f', netnsPath(pod));
  });

  it('vlan fails with the kernel error on this kernel and leaves nothing', async () => {
    const pod = await scope.create('vlan');
    const conf = netConf({ dataDir, name: 'pw-vlan', bridge: 'pwbrv', vlan: 100, subnet: '10.82.0.0/24' });
    expect(() => add(conf, 'ctr-v', pod)).toThrow(/VLAN filtering on bridge pwbrv.*EOPNOTSUPP|podwire does not configure per-port VLANs/);
    expect(await vethsOnNode()).toEqual([]);
    expect(reservations(dataDir, 'pw-vlan')).toEqual([]);
  });
});

describe('dual-stack', () => {
  it('gives v4 and v6 addresses (no DAD wait) and carries TCP on both, to pods and to the gateway', async () => {
    const conf = netConf({
      dataDir,
      name: 'pw-dual',
      bridge: 'pwbr46',
      isDefaultGateway: true,
      ranges: [[{ subnet: '10.83.0.0/24' }], [{ subnet: 'fd83::/64' }]],
    });
    const a = await scope.create('d1');
    const b = await scope.create('d2');
    const ra = add(conf, 'ctr-d1', a);
    const rb = add(conf, 'ctr-d2', b);
    expect(ra.ips?.map((i) => i.gateway)).toEqual(['10.83.0.1', 'fd83::1']);
    expect(ra.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.83.0.1' }, { dst: '::/0', gw: 'fd83::1' }]);
    const v6b = rb.ips![1]!.address.split('/')[0]!;
    const addr6 = JSON.stringify(await ipJson(b, ['-6', 'addr', 'show', 'dev', 'eth0']));
    expect(addr6).toContain(v6b);
    expect(addr6).not.toContain('tentative');
    expect(await tcpOnce(b, a, rb.ips![0]!.address.split('/')[0]!, 8081)).toBe('hello over the bridge');
    expect(await tcpOnce(b, a, v6b, 8081)).toBe('hello over the bridge');
    expect(await tcpOnce(node, a, 'fd83::1', 8081)).toBe('hello over the bridge');
    expect((await nsMust(node, 'sysctl', ['-n', 'net.ipv6.conf.all.forwarding'])).trim()).toBe('1');
    del(conf, 'ctr-d1', netnsPath(a));
    del(conf, 'ctr-d2', netnsPath(b));
    expect(reservations(dataDir, 'pw-dual')).toEqual([]);
  });
});

describe('layer 2 only', () => {
  it('without IPAM brings the pod interface up with no addresses; disableContainerInterface leaves it down', async () => {
    const a = await scope.create('l2a');
    const conf = { cniVersion: '1.0.0', name: 'pw-l2', type: 'podwire-bridge', bridge: 'pwbrl2' };
    const r = add(conf, 'ctr-l2', a);
    expect(r.ips).toBeUndefined();
    const l = await ipJson(a, ['link', 'show', 'dev', 'eth0']);
    expect(l[0]?.flags).toContain('UP');
    del(conf, 'ctr-l2', netnsPath(a));
    add({ ...conf, disableContainerInterface: true }, 'ctr-l2', a);
    const d = await ipJson(a, ['link', 'show', 'dev', 'eth0']);
    expect(d[0]?.flags).not.toContain('UP');
    del(conf, 'ctr-l2', netnsPath(a));
    await must('true', []);
  });
});

describe('macspoofchk', () => {
  it('drops frames from a pod whose source MAC is not its own; DEL removes its set elements', async () => {
    const conf = netConf({ dataDir, name: 'pw-spoof', bridge: 'pwbrs', macspoofchk: true, subnet: '10.84.0.0/24' });
    const a = await scope.create('sp1');
    const b = await scope.create('sp2');
    const ra = add(conf, 'ctr-sp1', a);
    const rb = add(conf, 'ctr-sp2', b);
    const ipB = rb.ips![0]!.address.split('/')[0]!;
    const table = async () => (await nsRun(node, 'nft', ['list', 'table', 'bridge', 'podwire-cni'])).stdout;
    expect(await table()).toContain('ctr-sp1/eth0');
    expect(await tcpOnce(b, a, ipB, 8090)).toBe('hello over the bridge');
    // The pod changes its MAC: its frames no longer match and are dropped on the bridge.
    await nsMust(a, 'ip', ['link', 'set', 'dev', 'eth0', 'address', '0a:58:de:ad:be:ef']);
    await nsMust(a, 'ip', ['neigh', 'flush', 'all']);
    await nsMust(b, 'ip', ['neigh', 'flush', 'all']);
    expect(await tcpOnce(b, a, ipB, 8091)).toBe('');
    await nsMust(a, 'ip', ['link', 'set', 'dev', 'eth0', 'address', ra.interfaces![2]!.mac!]);
    del(conf, 'ctr-sp1', netnsPath(a));
    del(conf, 'ctr-sp2', netnsPath(b));
    const t = await table();
    expect(t).not.toContain('ctr-sp1/eth0');
    expect(t).not.toContain('ctr-sp2/eth0');
    expect(reservations(dataDir, 'pw-spoof')).toEqual([]);
  });
});
