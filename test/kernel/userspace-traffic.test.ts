// bin/podwire proxy --proxy-mode userspace --manifests DIR inside a node namespace, checked by real TCP and UDP
// traffic from pods, the node and an external client. No netfilter rule is involved: the daemon accepts and forwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_IP4, CLIENT_IP4_ALT, Cluster, PROBE, tally, type ProbeAttempt, type Pod } from '../helpers/cluster.js';
import { PODWIRE, ProxyDaemon } from '../helpers/daemon.js';
import { must, nsMust, nsRun } from '../helpers/netns.js';

const LINK = 'podwire-us0';
let c: Cluster;
let a: Pod, b: Pod, r: Pod, d: Pod;
/** The endpoint a fixed UDP source port was sent to (its session outlives one probe: --udp-timeout 30s). */
let udpSticky = '';
let dir = '';
const daemon = new ProxyDaemon();
let bulkServer: ChildProcess | null = null;

// A pod workload that reads a whole upload, then answers "<bytes> <sha256>" and a 2 MiB download of its own, then ends.
const BULK_SERVER = `
const { createHash } = require('node:crypto');
const srv = require('node:net').createServer({ allowHalfOpen: true }, (s) => {
  const h = createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => {
    s.write(n + ' ' + h.digest('hex') + '\\n');
    const chunk = Buffer.alloc(65536, 7);
    for (let i = 0; i < 32; i++) s.write(chunk);
    s.end();
  });
  s.on('error', () => {});
});
srv.listen(9100, '0.0.0.0', () => console.log('ready'));
`;

// Uploads 3 MiB through the service, half-closes, and reports what came back.
const BULK_CLIENT = `
const { createHash } = require('node:crypto');
const [host, port] = process.argv.slice(1);
const s = require('node:net').connect({ host, port: Number(port), allowHalfOpen: true });
const up = createHash('sha256'); const chunks = [];
s.on('connect', () => {
  for (let i = 0; i < 48; i++) { const c = Buffer.alloc(65536, i); up.update(c); s.write(c); }
  s.end();
});
s.on('data', (d) => chunks.push(d));
s.on('end', () => {
  const all = Buffer.concat(chunks); const nl = all.indexOf(10);
  const body = all.subarray(nl + 1);
  console.log(JSON.stringify({ line: all.subarray(0, nl).toString(), sent: 48 * 65536 + ' ' + up.digest('hex'), body: body.length, bodyOk: body.every((b) => b === 7) }));
  process.exit(0);
});
s.on('error', (e) => { console.error(String(e)); process.exit(1); });
setTimeout(() => { console.error('timeout'); process.exit(1); }, 20000);
`;

interface PortSpec {
  name: string;
  port: number;
  targetPort: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  nodePort?: number;
}

function service(name: string, ip: string, ports: PortSpec[], extra: { type?: string; affinity?: number; family?: 4 | 6; status?: object; sourceRanges?: string[] } = {}): object {
  const family = extra.family ?? 4;
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
    spec: {
      type: extra.type ?? 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ipFamilies: [`IPv${family}`], selector: { app: name },
      ports: ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: p.protocol, ...(p.nodePort ? { nodePort: p.nodePort } : {}) })),
      ...(extra.affinity ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: extra.affinity } } } : {}),
      ...(extra.sourceRanges ? { loadBalancerSourceRanges: extra.sourceRanges } : {}),
    },
    ...(extra.status ? { status: extra.status } : {}),
  };
}

function slice(name: string, pods: Pod[], ports: PortSpec[], family: 4 | 6 = 4): object {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-${family}`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } },
    addressType: `IPv${family}`, ports: ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: p.protocol })),
    endpoints: pods.map((p) => ({ addresses: [family === 4 ? p.ip4 : p.ip6], conditions: { ready: true, serving: true, terminating: false }, nodeName: p.node.name })),
  };
}

function write(file: string, ...items: object[]): void {
  writeFileSync(join(dir, file), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
}

const HTTP: PortSpec = { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30080 };
const DNS: PortSpec = { name: 'dns', port: 53, targetPort: 8081, protocol: 'UDP' };
const PLAIN: PortSpec = { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' };
const SCTP: PortSpec = { name: 'sig', port: 3868, targetPort: 3868, protocol: 'SCTP' };
const BULK: PortSpec = { name: 'data', port: 80, targetPort: 9100, protocol: 'TCP' };
const RETRY: PortSpec = { name: 'http', port: 80, targetPort: 9090, protocol: 'TCP' };

function startDaemon(): void {
  daemon.start(c.node(1).ns, ['-v', '4', '--proxy-mode', 'userspace', '--manifests', dir, '--hostname-override', 'node-1',
    '--cluster-cidr', '10.244.0.0/16,fd00:244::/48', '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249',
    '--udp-timeout', '30s']);
}

async function linkAddresses(): Promise<string[] | null> {
  const res = await run('ip', ['-n', c.node(1).ns, '-j', 'addr', 'show', 'dev', LINK]);
  if (res === null) return null;
  const links = JSON.parse(res) as Array<{ addr_info: Array<{ local: string; prefixlen: number; scope: string }> }>;
  return links[0]!.addr_info.filter((x) => x.scope !== 'link').map((x) => `${x.local}/${x.prefixlen}`).sort();
}

/** UDP probes from one fixed source port (Cluster.probe picks a fresh port each time). */
async function udpFromPort(ns: string, host: string, port: number, sport: number, count: number): Promise<ProbeAttempt[]> {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const res = await nsRun(ns, process.execPath, [PROBE, '--proto', 'udp', '--count', String(count), '--timeout', '1500', '--sport', String(sport), host, String(port)], { env });
  if (res.code !== 0) throw new Error(`probe failed (${res.code}): ${res.stderr}`);
  return JSON.parse(res.stdout) as ProbeAttempt[];
}

/** stdout, or null when the command failed (e.g. no such device). */
async function run(cmd: string, args: string[]): Promise<string | null> {
  try {
    return await must(cmd, args);
  } catch {
    return null;
  }
}

beforeAll(async () => {
  c = await Cluster.create('us');
  a = await c.addPod('a', 1);
  b = await c.addPod('b', 1);
  r = await c.addPod('r', 2);
  // Serves only on 9090: pod a refuses that port, so connections picked for a must move on to d.
  d = await c.addPod('d', 1, { tcp: [9090], udp: [] });
  dir = mkdtempSync(join(tmpdir(), 'pw-t-us-'));
  write('web.json', service('web', '10.96.0.10', [HTTP], { type: 'NodePort' }), slice('web', [a, r], [HTTP]));
  write('dns.json', service('dns', '10.96.0.53', [DNS]), slice('dns', [a, r], [DNS]));
  write('sticky.json', service('sticky', '10.96.0.30', [PLAIN], { affinity: 600 }), slice('sticky', [a, b, r], [PLAIN]));
  write('sctp.json', service('sig', '10.96.0.80', [SCTP]), slice('sig', [a], [SCTP]));
  write('bulk.json', service('bulk', '10.96.0.70', [BULK]), slice('bulk', [a], [BULK]));
  write('retry.json', service('retry', '10.96.0.60', [RETRY]), slice('retry', [a, d], [RETRY]));
  write('dead.json', service('dead', '10.96.0.61', [RETRY]), slice('dead', [a], [RETRY]));
  write('empty.json', service('empty', '10.96.0.40', [PLAIN]));
  write('lb.json',
    service('lb', '10.96.0.50', [PLAIN], { type: 'LoadBalancer', sourceRanges: [`${CLIENT_IP4}/32`], status: { loadBalancer: { ingress: [{ ip: '203.0.113.9' }] } } }),
    slice('lb', [r], [PLAIN]));
  write('web6.json', service('web6', 'fd00:96::10', [PLAIN], { family: 6 }), slice('web6', [a, r], [PLAIN], 6));
  writeFileSync(join(dir, 'node.json'), JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' },
    status: { addresses: [{ type: 'InternalIP', address: c.node(1).ip4 }, { type: 'InternalIP', address: c.node(1).ip6 }] } }));
  bulkServer = await startBulkServer(a);
  startDaemon();
}, 120_000);

function startBulkServer(pod: Pod): Promise<ChildProcess> {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn('ip', ['netns', 'exec', pod.ns, process.execPath, '-e', BULK_SERVER], { stdio: ['ignore', 'pipe', 'pipe'], env });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bulk server not ready')), 10_000);
    child.stdout?.on('data', (d: Buffer) => {
      if (String(d).includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => reject(new Error(`bulk server exited (${code})`)));
  });
}

afterAll(async () => {
  bulkServer?.kill('SIGKILL');
  await daemon.stop();
  await c?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const probeWeb = (count = 12) => c.probe(b.ns, '10.96.0.10', 80, { count, timeoutMs: 1500 });

describe('podwire proxy --proxy-mode userspace', () => {
  it('a cluster IP reaches both endpoints, in turn (round robin); the endpoint sees the node, not the pod', async () => {
    await daemon.eventually(async () => expect(Object.keys(tally(await probeWeb(2))).sort()).toEqual(['a', 'r']), 20_000);
    const attempts = await probeWeb(12);
    expect(tally(attempts)).toEqual({ a: 6, r: 6 });
    for (let i = 1; i < attempts.length; i++) expect(attempts[i]!.server).not.toBe(attempts[i - 1]!.server);
    // Userspace mode cannot keep the client's address: the connection to the endpoint is the daemon's own.
    for (const x of attempts) expect(x.sourceIP).not.toBe(b.ip4);
  });

  it('holds the service addresses on a link of its own, left down', async () => {
    const addrs = await linkAddresses();
    expect(addrs).toEqual(expect.arrayContaining(['10.96.0.10/32', '10.96.0.53/32', '10.96.0.30/32', '10.96.0.40/32', '10.96.0.50/32', '203.0.113.9/32', 'fd00:96::10/128']));
    const link = await nsMust(c.node(1).ns, 'ip', ['-j', 'link', 'show', 'dev', LINK]);
    expect((JSON.parse(link) as Array<{ flags: string[] }>)[0]!.flags).not.toContain('UP');
    // No netfilter involved: no nat rule of any kind.
    const save = await nsRun(c.node(1).ns, 'iptables-save', []);
    expect(save.stdout).not.toMatch(/KUBE-|PODWIRE/);
  });

  it('a node port answers an external client', async () => {
    const res = await c.probe(c.client, c.node(1).ip4, 30080, { count: 4, timeoutMs: 1500 });
    expect(tally(res)).toEqual({ a: 2, r: 2 });
  });

  it('sessionAffinity ClientIP keeps each client on one endpoint', async () => {
    const fromB = tally(await c.probe(b.ns, '10.96.0.30', 80, { count: 8, timeoutMs: 1500 }));
    expect(Object.values(fromB)).toEqual([8]);
    expect(['a', 'b', 'r']).toContain(Object.keys(fromB)[0]);
    const fromA = tally(await c.probe(a.ns, '10.96.0.30', 80, { count: 8, timeoutMs: 1500 }));
    expect(Object.values(fromA)).toEqual([8]);
    expect(tally(await c.probe(b.ns, '10.96.0.30', 80, { count: 4, timeoutMs: 1500 }))).toEqual({ [Object.keys(fromB)[0]!]: 4 });
  });

  it('a service without endpoints is refused at once', async () => {
    const [x] = await c.probe(b.ns, '10.96.0.40', 80, { timeoutMs: 3000 });
    expect(x!.result).toBe('refused');
    expect(x!.ms).toBeLessThan(500);
  });

  it('UDP request and reply through the cluster IP, sessions balanced over both endpoints', async () => {
    const res = await c.probe(b.ns, '10.96.0.53', 53, { proto: 'udp', count: 6, timeoutMs: 1500 });
    expect(tally(res)).toEqual({ a: 3, r: 3 });
    // One client address, one session: the same endpoint while the session lives.
    const same = tally(await udpFromPort(b.ns, '10.96.0.53', 53, 40001, 3));
    expect(Object.values(same)).toEqual([3]);
    udpSticky = Object.keys(same)[0]!;
    expect(['a', 'r']).toContain(udpSticky);
  });

  it('a large upload and download, with a half-close in between, arrive whole', async () => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const res = await nsRun(b.ns, process.execPath, ['-e', BULK_CLIENT, '10.96.0.70', '80'], { env, timeoutMs: 30_000 });
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { line: string; sent: string; body: number; bodyOk: boolean };
    expect(out.line).toBe(out.sent);
    expect(out.body).toBe(32 * 65536);
    expect(out.bodyOk).toBe(true);
  });

  it('an endpoint that refuses is skipped: the connection is retried on the next one; with none left, the client is reset', async () => {
    expect(tally(await c.probe(b.ns, '10.96.0.60', 80, { count: 6, timeoutMs: 3000 }))).toEqual({ d: 6 });
    // Its only endpoint refuses: after a few attempts the client is reset, not left waiting.
    const [x] = await c.probe(b.ns, '10.96.0.61', 80, { timeoutMs: 5000 });
    expect(x!.result).not.toBe('ok');
    expect(x!.result).not.toBe('timeout');
    expect(x!.ms).toBeLessThan(1000);
  });

  it('a load-balancer VIP: a client inside the source ranges is served, one outside is reset', async () => {
    expect(tally(await c.probe(c.client, '203.0.113.9', 80, { source: CLIENT_IP4, count: 2, timeoutMs: 1500 }))).toEqual({ r: 2 });
    const [x] = await c.probe(c.client, '203.0.113.9', 80, { source: CLIENT_IP4_ALT, timeoutMs: 3000 });
    expect(x!.result).not.toBe('ok');
    expect(x!.result).not.toBe('timeout');
  });

  it('IPv6: the cluster IP reaches both endpoints', async () => {
    const res = await c.probe(b.ns, 'fd00:96::10', 80, { count: 4, timeoutMs: 1500 });
    expect(tally(res)).toEqual({ a: 2, r: 2 });
  });

  it('an endpoint removed at run time stops getting new connections', async () => {
    write('web.json', service('web', '10.96.0.10', [HTTP], { type: 'NodePort' }), slice('web', [a], [HTTP]));
    // Keep the endpoint the fixed-port session did not use: that session must end and move over.
    const keep = udpSticky === 'a' ? r : a;
    write('dns.json', service('dns', '10.96.0.53', [DNS]), slice('dns', [keep], [DNS]));
    await daemon.eventually(async () => expect(tally(await probeWeb())).toEqual({ a: 12 }), 5_000);
    await daemon.eventually(async () => expect(tally(await c.probe(b.ns, '10.96.0.53', 53, { proto: 'udp', count: 4, timeoutMs: 1000 }))).toEqual({ [keep.name]: 4 }), 5_000);
    expect(tally(await udpFromPort(b.ns, '10.96.0.53', 53, 40001, 2))).toEqual({ [keep.name]: 2 });
    expect(tally(await c.probe(c.client, c.node(1).ip4, 30080, { count: 3, timeoutMs: 1500 }))).toEqual({ a: 3 });
  });

  it('an SCTP port is skipped with one log line, not one per sync', async () => {
    const lines = () => daemon.log.split('\n').filter((l) => l.includes('no SCTP sockets') && l.includes('default/sig:sig')).length;
    // -v 4 logs every sync: wait for the partial sync that re-reads the SCTP service.
    const partials = () => (daemon.log.match(/"full":false,"changed":[1-9]/g) ?? []).length;
    await daemon.eventually(async () => expect(lines()).toBeGreaterThan(0), 10_000);
    expect(lines()).toBe(1);
    const before = partials();
    write('sctp.json', service('sig', '10.96.0.80', [SCTP]), slice('sig', [a, b], [SCTP]));
    await daemon.eventually(async () => expect(partials()).toBeGreaterThan(before), 5_000);
    expect(lines()).toBe(1);
    expect(await linkAddresses()).toContain('10.96.0.80/32');
  });

  it('a service added at run time is served; removed, it is refused', async () => {
    write('api.json', service('api', '10.96.0.20', [PLAIN]), slice('api', [r], [PLAIN]));
    await daemon.eventually(async () => expect(tally(await c.probe(b.ns, '10.96.0.20', 80, { count: 3, timeoutMs: 1000 }))).toEqual({ r: 3 }), 5_000);
    unlinkSync(join(dir, 'api.json'));
    await daemon.eventually(async () => expect((await c.probe(b.ns, '10.96.0.20', 80, { timeoutMs: 1000 }))[0]?.result).not.toBe('ok'), 5_000);
    await daemon.eventually(async () => expect(await linkAddresses()).not.toContain('10.96.0.20/32'), 5_000);
    expect(tally(await probeWeb(4))).toEqual({ a: 4 });
  });

  it('SIGTERM stops the proxying; a restart removes stale addresses and serves again', async () => {
    expect(await daemon.stop()).toBe(0);
    // The addresses stay, nothing listens: clients are refused, not left hanging.
    expect((await probeWeb(1))[0]?.result).toBe('refused');
    await must('ip', ['-n', c.node(1).ns, 'addr', 'add', '10.96.9.9/32', 'dev', LINK]);
    startDaemon();
    await daemon.eventually(async () => expect(tally(await probeWeb(4))).toEqual({ a: 4 }), 20_000);
    await daemon.eventually(async () => expect(await linkAddresses()).not.toContain('10.96.9.9/32'), 5_000);
    expect(await linkAddresses()).toContain('10.96.0.10/32');
  });

  it('--cleanup removes the link and exits 0', async () => {
    await daemon.stop();
    const res = await nsRun(c.node(1).ns, process.execPath, [PODWIRE, 'proxy', '--proxy-mode', 'userspace', '--cleanup']);
    expect(res.code, res.stderr).toBe(0);
    expect(await linkAddresses()).toBeNull();
  });
});
