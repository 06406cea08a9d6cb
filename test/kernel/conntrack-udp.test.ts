// UDP stale-conntrack cleanup in iptables mode (kubernetes#139628), by real traffic: `podwire proxy`
// runs in a node namespace; a client pod keeps sending to a UDP ClusterIP from one fixed source port, so
// every datagram rides the same conntrack entry. When the endpoint it reaches leaves the EndpointSlice
// (the pod still runs and would answer), the very next datagram must reach the remaining endpoint; without
// the cleanup the entry keeps DNATing to the old one for as long as the client keeps sending. Another UDP
// flow, to a service that did not change, keeps its entry (no blanket flush, kubernetes#122740).
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, PROBE, type Pod, type ProbeAttempt } from '../helpers/cluster.js';
import { ProxyDaemon } from '../helpers/daemon.js';
import { nsMust, nsRun } from '../helpers/netns.js';

const DNS_IP = '10.96.3.10';
const OTHER_IP = '10.96.3.11';
const SPORT = 40053;
const OTHER_SPORT = 40054;

let c: Cluster;
let a: Pod, b: Pod, client: Pod;
let dir = '';
const daemon = new ProxyDaemon();

function udpService(name: string, ip: string): unknown {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
    spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ipFamilies: ['IPv4'], ports: [{ name: 'dns', port: 53, targetPort: 8081, protocol: 'UDP' }], selector: { app: name } } };
}

function udpSlice(name: string, pods: Pod[]): unknown {
  return { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4', ports: [{ name: 'dns', port: 8081, protocol: 'UDP' }],
    endpoints: pods.map((p) => ({ addresses: [p.ip4], conditions: { ready: true, serving: true, terminating: false }, nodeName: p.node.name })) };
}

function writeManifest(file: string, ...items: unknown[]): void {
  // Written whole then renamed: the watcher never sees half a file.
  const tmp = join(dir, `.${file}.tmp`);
  writeFileSync(tmp, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  renameSync(tmp, join(dir, file));
}

/** One datagram from the client pod, from a fixed source port; who answered. */
async function send(ip: string, sport: number): Promise<ProbeAttempt> {
  const r = await nsRun(client.ns, process.execPath, [PROBE, '--proto', 'udp', '--count', '1', '--timeout', '1000', '--sport', String(sport), ip, '53']);
  if (r.code !== 0) throw new Error(`udp probe to ${ip}:53 failed (${r.code}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as ProbeAttempt[])[0]!;
}

/** The node's conntrack entries of one client flow (conntrack -L output lines). */
async function flow(ip: string, sport: number): Promise<string[]> {
  const r = await nsRun(c.node(1).ns, 'conntrack', ['-L', '-p', 'udp', '--orig-dst', ip, '--sport', String(sport)]);
  return r.stdout.split('\n').filter((l) => l.startsWith('udp'));
}

beforeAll(async () => {
  c = await Cluster.create('ipt-udp', { nodes: 1 });
  a = await c.addPod('a', 1);
  b = await c.addPod('b', 1);
  client = await c.addPod('client', 1);
  dir = mkdtempSync(join(tmpdir(), 'pw-ipt-udp-'));
  writeManifest('dns.json', udpService('dns', DNS_IP), udpSlice('dns', [a, b]));
  writeManifest('other.json', udpService('other', OTHER_IP), udpSlice('other', [b]));
  daemon.start(c.node(1).ns, ['--proxy-mode', 'iptables', '--manifests', dir,
    '--hostname-override', 'node-1', '--cluster-cidr', '10.244.0.0/16', '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249']);
}, 120_000);

afterAll(async () => {
  await daemon.stop();
  await c?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('UDP stale conntrack cleanup (iptables mode)', () => {
  it('the next datagram of a stream reaches a live endpoint once its endpoint leaves the slice', async () => {
    await daemon.eventually(async () => expect((await send(DNS_IP, SPORT)).result).toBe('ok'));
    await daemon.eventually(async () => expect((await send(OTHER_IP, OTHER_SPORT)).server).toBe('b'));
    // The stream is pinned: every datagram from this port goes where the first one went.
    const first = (await send(DNS_IP, SPORT)).server!;
    for (let i = 0; i < 5; i++) expect((await send(DNS_IP, SPORT)).server).toBe(first);
    const [gone, stays] = first === 'a' ? [a, b] : [b, a];
    // The entry that would keep misrouting the stream exists, DNATed to the endpoint about to go.
    expect((await flow(DNS_IP, SPORT)).join('\n')).toContain(`src=${gone.ip4} dst=${client.ip4}`);

    writeManifest('dns.json', udpService('dns', DNS_IP), udpSlice('dns', [stays]));
    // Wait until the rules no longer name the removed endpoint (the cleanup runs right after that restore).
    // (Only the dns service's rules: pod b also backs "other", whose DNAT to it stays.)
    const dnsDnatTo = async (ip: string) => (await nsMust(c.node(1).ns, 'iptables-save', ['-t', 'nat'])).split('\n').filter((l) => l.includes('"default/dns:dns"') && l.includes(`--to-destination ${ip}:8081`));
    await daemon.eventually(async () => expect(await dnsDnatTo(gone.ip4)).toEqual([]));
    expect(await dnsDnatTo(stays.ip4)).toHaveLength(1);
    await daemon.eventually(async () => expect(await flow(DNS_IP, SPORT)).not.toContainEqual(expect.stringContaining(`src=${gone.ip4} dst=${client.ip4}`)), 3000);
    const next = await send(DNS_IP, SPORT);
    expect(next).toMatchObject({ result: 'ok', server: stays.name });
    for (let i = 0; i < 3; i++) expect((await send(DNS_IP, SPORT)).server).toBe(stays.name);
    // The unrelated stream kept its entry: nothing was flushed wholesale.
    expect(await flow(OTHER_IP, OTHER_SPORT)).toHaveLength(1);
    expect((await send(OTHER_IP, OTHER_SPORT)).server).toBe('b');
  });
});
