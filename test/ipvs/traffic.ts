// Real traffic through the IPVS backend, driven directly with hand-built
// ProxyStates (no API server, no core):
//   client (10.2.0.2) --veth-- node (10.2.0.1) --cni0 10.1.0.1/24-- server1 (10.1.0.2), server2 (10.1.0.3)
import { spawn, type ChildProcess } from 'node:child_process';
import { createIpvsBackend } from '../../src/proxy/ipvs/index.js';
import type { ProxyBackend, ServicePortInfo, ServiceView } from '../../src/proxy/model.js';
import { config as modelConfig, ep as modelEp, state as modelState, svcInfo, view } from '../helpers/model.js';
import { assert, test } from './harness.js';
import { delNs, inNs, serveInNs, serverTopology, sh, shTry, waitLine } from './sh.js';

const P = 'pw-t-ipvs-';
const NODE = `${P}node`;
const NAMES = ['node', 'client', 's1', 's2'];
const PEER = `${process.cwd()}/test/ipvs/peer.mjs`;
const procs: ChildProcess[] = [];

const port = (name: string, over: Partial<ServicePortInfo> = {}) => svcInfo('default', name, { portName: 'http', ...over });
const ep = (ip: string) => modelEp(ip, 8080);
const state = (views: ServiceView[]) => modelState(views, 4, ['10.2.0.1'], { podCIDRs: ['10.1.0.0/24'] });
const config = modelConfig({ clusterCIDRs: ['10.1.0.0/16'] });

async function serve(ns: string, name: string): Promise<void> {
  procs.push(await serveInNs(ns, 'node', [PEER, 'serve', name, '8080'], 'listening'));
}

function get(ns: string, urls: string[]): string[] {
  return JSON.parse(inNs(ns, 'node', [PEER, 'get', ...urls])) as string[];
}

let backend: ProxyBackend;
const web = port('web', { nodePort: 30080 });
const sticky = port('sticky', { clusterIP: '10.96.0.11', affinityTimeoutSeconds: 600 });
const empty = port('empty', { clusterIP: '10.96.0.12' });
const self = port('self', { clusterIP: '10.96.0.13', ipvsScheduler: 'wrr' });
const both = [ep('10.1.0.2'), ep('10.1.0.3')];
const full = () => state([view(web, both), view(sticky, both), view(empty, []), view(self, [ep('10.1.0.2')])]);

test('traffic: setup (topology, servers, first full sync)', async () => {
  serverTopology(P, NAMES);
  await Promise.all([serve(`${P}s1`, 's1'), serve(`${P}s2`, 's2')]);
  backend = createIpvsBackend(config, { netnsPath: `/run/netns/${NODE}`, flavour: 'nft' });
  const r = await backend.sync({ state: full(), changed: null });
  assert.equal(r.full, true);
  const ln = inNs(NODE, 'ipvsadm', ['-Ln']);
  assert.match(ln, /TCP {2}10\.96\.0\.10:80 rr/);
  assert.match(ln, /TCP {2}10\.2\.0\.1:30080 rr/);
  assert.match(ln, /TCP {2}10\.96\.0\.11:80 rr persistent 600/);
  assert.match(ln, /TCP {2}10\.96\.0\.13:80 wrr/, 'the per-service scheduler');
  assert.match(inNs(NODE, 'ip', ['-4', 'addr', 'show', 'kube-ipvs0']), /10\.96\.0\.12\/32/);
});

test('traffic: client -> ClusterIP reaches both backends', () => {
  const out = get(`${P}client`, Array(4).fill('http://10.96.0.10/'));
  assert.deepEqual([...new Set(out)].sort(), ['s1', 's2']);
});

test('traffic: NodePort from another namespace', () => {
  const out = get(`${P}client`, Array(4).fill('http://10.2.0.1:30080/'));
  assert.deepEqual([...new Set(out)].sort(), ['s1', 's2']);
});

test('traffic: ClientIP affinity keeps one backend', () => {
  const out = get(`${P}client`, Array(5).fill('http://10.96.0.11/'));
  assert.equal(new Set(out).size, 1, out.join(','));
});

test('traffic: hairpin, a pod reaching itself through its service', () => {
  assert.deepEqual(get(`${P}s1`, ['http://10.96.0.13/', 'http://10.96.0.13/']), ['s1', 's1']);
});

test('traffic: a service without endpoints is refused', () => {
  assert.deepEqual(get(`${P}client`, ['http://10.96.0.12/']), ['ERR ECONNREFUSED']);
});

test('traffic: partial sync adds and removes one endpoint', async () => {
  const st = state([view(web, [ep('10.1.0.2')]), view(sticky, both), view(empty, [ep('10.1.0.3')]), view(self, [ep('10.1.0.2')])]);
  await backend.sync({ state: st, changed: new Set([web.name, empty.name]) });
  assert.deepEqual(get(`${P}client`, ['http://10.96.0.10/', 'http://10.96.0.10/', 'http://10.96.0.12/']), ['s1', 's1', 's2']);
  // 10.1.0.3 still has connections in TIME_WAIT from the requests above: it drains at weight 0.
  assert.match(inNs(NODE, 'ipvsadm', ['-Ln', '-t', '10.96.0.10:80']), /10\.1\.0\.3:8080 +Masq +0 +0 +[1-9]/);
  // The empty service's no-endpoints reject is lifted with its first endpoint.
});

test('traffic: graceful termination keeps a busy real server at weight 0', async () => {
  await backend.sync({ state: full(), changed: null });
  const hold = spawn('ip', ['netns', 'exec', `${P}client`, 'node', PEER, 'hold', '10.96.0.11', '80'], { stdio: ['pipe', 'pipe', 'inherit'] });
  procs.push(hold);
  await waitLine(hold, 'open');
  const conns = inNs(NODE, 'ipvsadm', ['-Lnc']);
  const busy = /10\.96\.0\.11:80\s+(10\.1\.0\.\d)/.exec(conns)?.[1];
  assert.ok(busy, conns);
  const other = busy === '10.1.0.2' ? '10.1.0.3' : '10.1.0.2';
  const st = state([view(web, both), view(sticky, [ep(other)]), view(empty, []), view(self, [ep('10.1.0.2')])]);
  const r = await backend.sync({ state: st, changed: new Set([sticky.name]) });
  assert.ok((r.counts?.['ipvs draining'] ?? 0) >= 1);
  assert.match(inNs(NODE, 'ipvsadm', ['-Ln', '-t', '10.96.0.11:80']), new RegExp(`${busy.replace(/\./g, '\\.')}:8080 +Masq +0 +1 `));
  hold.stdin!.end();
});

test('traffic: a full sync repairs ipvsadm -C and a deleted address', async () => {
  inNs(NODE, 'ipvsadm', ['-C']);
  inNs(NODE, 'ip', ['addr', 'del', '10.96.0.10/32', 'dev', 'kube-ipvs0']);
  const r = await backend.sync({ state: full(), changed: null });
  assert.ok((r.counts?.['ipvs changes'] ?? 0) >= 10);
  assert.deepEqual([...new Set(get(`${P}client`, Array(4).fill('http://10.96.0.10/')))].sort(), ['s1', 's2']);
  const again = await backend.sync({ state: full(), changed: null });
  assert.equal(again.counts?.['ipvs changes'], 0, 'a second full sync touches nothing');
});

test('traffic: cleanup removes services, rules, sets and kube-ipvs0', async () => {
  await backend.cleanup();
  assert.doesNotMatch(inNs(NODE, 'ipvsadm', ['-Ln']), /TCP/);
  assert.doesNotMatch(inNs(NODE, 'iptables-save', []), /KUBE-/);
  assert.notEqual(shTry('ip', ['netns', 'exec', NODE, 'ipset', 'list', 'KUBE-CLUSTER-IP']).code, 0);
  assert.notEqual(shTry('ip', ['-n', NODE, 'link', 'show', 'kube-ipvs0']).code, 0);
  for (const p of procs) p.kill('SIGKILL');
  for (const n of NAMES) delNs(P + n);
});
