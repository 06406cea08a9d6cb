// SCTP through the iptables and nftables backends, inside the VM (this
// machine's kernel has no SCTP). One topology, each backend in turn:
//   client (10.2.0.2) --veth-- node (10.2.0.1) --cni0 10.1.0.1/24-- s1 (10.1.0.2), s2 (10.1.0.3)
// The backends are driven with hand-built ProxyStates, as in the IPVS suite.
import type { ChildProcess } from 'node:child_process';
import { createIptablesBackend } from '../../src/proxy/iptables/index.js';
import type { ProxyBackend, ServicePortInfo, ServiceView } from '../../src/proxy/model.js';
import { config as modelConfig, ep as modelEp, state as modelState, svcInfo, view } from '../helpers/model.js';
import { createNftablesBackend } from '../../src/proxy/nftables/index.js';
import { assert, runTests, test } from '../ipvs/harness.js';
import { delNs, inNs, serveInNs, serverTopology, sh } from '../ipvs/sh.js';

const P = 'pw-t-sctp-';
const NODE = `${P}node`;
const CLIENT = `${P}client`;
const NAMES = ['node', 'client', 's1', 's2', 'up'];
const PEER = `${process.cwd()}/test/vm/sctp-peer.py`;
const procs: ChildProcess[] = [];

const port = (name: string, clusterIP: string, over: Partial<ServicePortInfo> = {}) => svcInfo('default', name, { portName: 'sctp', protocol: 'SCTP', clusterIP, ...over });
const ep = (ip: string) => modelEp(ip, 8080);
const config = modelConfig({ clusterCIDRs: ['10.1.0.0/16'] });

const web = port('web', '10.96.0.30', { nodePort: 30300 });
const single = port('single', '10.96.0.31');
const empty = port('empty', '10.96.0.32');
const state = (views: ServiceView[]) => modelState(views, 4, ['10.2.0.1'], { podCIDRs: ['10.1.0.0/24'] });
const both = [ep('10.1.0.2'), ep('10.1.0.3')];
const full = () => state([view(web, both), view(single, [ep('10.1.0.3')]), view(empty, [])]);

function topology(): void {
  serverTopology(P, NAMES);
  inNs(NODE, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // A node has a default route (here to an upstream namespace that forwards nothing): a service address
  // then reaches the forward hook, where a no-endpoints service is rejected, instead of failing routing
  // with "network unreachable". (Routing it back out towards the client would make the node send ICMP
  // redirects, which use up the per-host ICMP rate limit before the reject's port unreachable.)
  sh('ip', ['link', 'add', 'up0', 'netns', NODE, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `${P}up`]);
  inNs(NODE, 'ip', ['addr', 'add', '10.3.0.1/24', 'dev', 'up0']);
  inNs(NODE, 'ip', ['link', 'set', 'up0', 'up']);
  inNs(`${P}up`, 'ip', ['addr', 'add', '10.3.0.2/24', 'dev', 'eth0']);
  inNs(`${P}up`, 'ip', ['link', 'set', 'eth0', 'up']);
  inNs(NODE, 'ip', ['route', 'add', 'default', 'via', '10.3.0.2']);
}

async function serve(ns: string, name: string): Promise<void> {
  procs.push(await serveInNs(ns, 'python3', [PEER, 'serve', name, '8080'], 'listening'));
}

// 7 s: one lost INIT is retransmitted after SCTP's initial RTO of 3 s (emulation is slow).
function get(host: string, port: number, count: number, timeoutS = 7): string[] {
  return JSON.parse(inNs(CLIENT, 'python3', [PEER, 'get', host, String(port), String(count), String(timeoutS)])) as string[];
}

const names = (answers: string[]) => [...new Set(answers.map((a) => a.split(' ')[0]!))].sort();

test('sctp: setup (modules, topology, servers)', async () => {
  topology();
  await serve(`${P}s1`, 's1');
  await serve(`${P}s2`, 's2');
  // Without any proxy rule, the servers answer directly: the topology works before the backends are judged.
  assert.deepEqual(get('10.1.0.2', 8080, 1), ['s1 10.2.0.2']);
});

const backends: Array<[string, () => ProxyBackend]> = [
  ['iptables', () => createIptablesBackend(config, { netnsPath: `/run/netns/${NODE}`, flavour: 'nft' })],
  ['nftables', () => createNftablesBackend(config, { netnsPath: `/run/netns/${NODE}` })],
];

for (const [mode, make] of backends) {
  let backend: ProxyBackend;
  test(`sctp ${mode}: ClusterIP spreads over both endpoints, off-cluster client masqueraded`, async () => {
    backend = make();
    await backend.sync({ state: full(), changed: null });
    const answers = get('10.96.0.30', 80, 16);
    assert.deepEqual(names(answers), ['s1', 's2'], answers.join(', '));
    for (const a of answers) assert.equal(a.split(' ')[1], '10.1.0.1', `masqueraded to the node's bridge address: ${a}`);
  });
  test(`sctp ${mode}: NodePort on the node's address`, () => {
    const answers = get('10.2.0.1', 30300, 4);
    assert.ok(answers.every((a) => /^s[12] 10\.1\.0\.1$/.test(a)), answers.join(', '));
  });
  test(`sctp ${mode}: a service without endpoints is rejected at once (ICMP port unreachable)`, () => {
    assert.equal(inNs(CLIENT, 'python3', [PEER, 'reject', '10.96.0.32', '80', '4']).trim(), 'icmp port-unreachable');
    // The check can fail: a service with endpoints draws no ICMP.
    assert.equal(inNs(CLIENT, 'python3', [PEER, 'reject', '10.96.0.31', '80', '2']).trim(), 'no icmp');
  });
  test(`sctp ${mode}: a partial sync moves a service to another endpoint`, async () => {
    assert.deepEqual(names(get('10.96.0.31', 80, 3)), ['s2']);
    await backend.sync({ state: state([view(web, both), view(single, [ep('10.1.0.2')]), view(empty, [])]), changed: new Set([single.name]) });
    assert.deepEqual(names(get('10.96.0.31', 80, 3)), ['s1']);
  });
  test(`sctp ${mode}: cleanup removes the rules`, async () => {
    await backend.cleanup();
    const [answer] = get('10.96.0.30', 80, 1, 2);
    assert.match(answer!, /^ERR /, 'nothing answers on the cluster IP once the rules are gone');
  });
}

test('sctp: teardown', () => {
  for (const p of procs) p.kill();
  for (const n of NAMES) delNs(P + n);
});

process.exit((await runTests(process.argv[2])) > 0 ? 1 : 0);
