// npm run bench -- nft-dataplane [--sizes 10,10000] [--connects 2000] [--round 250]
//
// Issue 6's data-plane check: the set-up time of a TCP connection through a
// ClusterIP must not depend on how many services the nftables backend has
// programmed. One topology per size, each in its own namespaces
// (pw-b-nftdp-s<N>-client → -node (the rules) → -ep (the server)), no link or
// route to the machine's own namespace. The client makes sequential connects
// to the cluster IP, in rounds alternating between the sizes, so both see the
// same machine load; p50/p99 of connect() → 'connect' are printed side by side.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { createNftablesBackend } from '../src/proxy/nftables/index.js';
import type { EndpointInfo, ProxyConfig, ProxyState, ServicePortInfo, ServiceView } from '../src/proxy/model.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : def;
};
const sizes = opt('--sizes', '10,10000').split(',').map(Number);
const CONNECTS = Number(opt('--connects', '2000'));
const ROUND = Number(opt('--round', '250'));
const PREFIX = 'pw-b-nftdp-';
const CLUSTER_IP = '10.96.255.254';
const EP_IP = '10.0.2.2';

function sh(cmd: string, argv: string[]): string {
  return execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

function removeNamespaces(): void {
  for (const line of sh('ip', ['netns', 'list']).split('\n')) {
    const name = line.split(' ')[0];
    if (name?.startsWith(PREFIX)) execFileSync('ip', ['netns', 'del', name]);
  }
}

/** client (10.0.1.2) → node (10.0.1.1 | 10.0.2.1, forwarding) → ep (10.0.2.2), all inside new namespaces. */
function topology(tag: string): { client: string; node: string; ep: string } {
  const [client, node, ep] = ['client', 'node', 'ep'].map((r) => `${PREFIX}${tag}-${r}`) as [string, string, string];
  for (const ns of [client, node, ep]) execFileSync('ip', ['netns', 'add', ns]);
  const ip = (ns: string, ...a: string[]) => execFileSync('ip', ['-n', ns, ...a]);
  ip(client, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'to-client', 'netns', node);
  ip(ep, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'to-ep', 'netns', node);
  ip(client, 'addr', 'add', '10.0.1.2/24', 'dev', 'eth0');
  ip(node, 'addr', 'add', '10.0.1.1/24', 'dev', 'to-client');
  ip(node, 'addr', 'add', '10.0.2.1/24', 'dev', 'to-ep');
  ip(ep, 'addr', 'add', `${EP_IP}/24`, 'dev', 'eth0');
  for (const [ns, dev] of [[client, 'eth0'], [node, 'to-client'], [node, 'to-ep'], [ep, 'eth0']] as const) ip(ns, 'link', 'set', dev, 'up');
  for (const ns of [client, node, ep]) ip(ns, 'link', 'set', 'lo', 'up');
  ip(client, 'route', 'add', 'default', 'via', '10.0.1.1');
  ip(ep, 'route', 'add', 'default', 'via', '10.0.2.1');
  execFileSync('ip', ['netns', 'exec', node, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  return { client, node, ep };
}

const ip4 = (a: number, n: number) => `${a}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
const endpoint = (ip: string, port: number): EndpointInfo => ({ ip, port, ready: true, serving: true, terminating: false, nodeName: 'other', zone: '', isLocal: false });

function serviceView(i: number, clusterIP: string, eps: EndpointInfo[]): ServiceView {
  const info: ServicePortInfo = {
    name: `bench/svc-${i}:http`, namespace: 'bench', service: `svc-${i}`, portName: 'http', protocol: 'TCP',
    clusterIP, port: 80, nodePort: 0, externalIPs: [], loadBalancerVIPs: [], loadBalancerSourceRanges: [],
    affinityTimeoutSeconds: 0, externalPolicyLocal: false, internalPolicyLocal: false, healthCheckNodePort: 0,
  };
  return { info, internalEndpoints: eps, externalEndpoints: eps, allEndpoints: eps };
}

/** n services: n-1 of 10 (unreachable) endpoints each, and the one the client connects to. */
function stateOf(n: number): ProxyState {
  const services = new Map<string, ServiceView>();
  for (let i = 0; i < n - 1; i++) {
    const eps = Array.from({ length: 10 }, (_, j) => endpoint(ip4(11, i * 10 + j), 8080));
    services.set(`bench/svc-${i}:http`, serviceView(i, ip4(10, 0x600000 + i), eps));
  }
  services.set('bench/target:http', serviceView(n, CLUSTER_IP, [endpoint(EP_IP, 8080)]));
  return { family: 4, node: { name: 'bench', ips: ['10.0.1.1'], zone: '', labels: {}, podCIDRs: [] }, services };
}

const SERVER = `
const s = require('node:net').createServer((c) => { c.on('error', () => {}); c.end(); });
s.listen(8080, '0.0.0.0', () => console.log('listening'));
`;

// Reads "N" lines; makes N sequential connects and prints their set-up times (ms) as JSON.
const CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
function once() {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const s = net.connect({ host, port: Number(port) });
    s.once('connect', () => { const ms = Number(process.hrtime.bigint() - t) / 1e6; s.destroy(); resolve(ms); });
    s.once('error', reject);
  });
}
require('node:readline').createInterface({ input: process.stdin }).on('line', async (line) => {
  const out = [];
  try { for (let i = 0; i < Number(line); i++) out.push(await once()); console.log(JSON.stringify(out)); }
  catch (e) { console.log(JSON.stringify({ error: String(e) })); }
});
`;

function startIn(ns: string, script: string, argv: string[] = []): ChildProcess {
  // No extra CA file for these helpers: it costs every Node start ~35 ms and nothing here uses TLS.
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, ...argv], { stdio: ['pipe', 'pipe', 'inherit'], env });
}

function lines(child: ChildProcess): () => Promise<string> {
  const queue: string[] = [];
  const waiting: Array<(l: string) => void> = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else queue.push(l);
  });
  return () => new Promise((resolve) => {
    const l = queue.shift();
    if (l !== undefined) resolve(l);
    else waiting.push(resolve);
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

const config: ProxyConfig = { family: 4, clusterCIDRs: ['10.244.0.0/16'], masqueradeAll: false, masqueradeBit: 14, nodePortAddresses: [], localhostNodePorts: false };
const children: ChildProcess[] = [];
removeNamespaces();
try {
  const runs: Array<{ n: number; ask: (count: number) => Promise<number[]>; times: number[] }> = [];
  for (const n of sizes) {
    const t = topology(`s${n}`);
    const server = startIn(t.ep, SERVER);
    children.push(server);
    const serverLine = lines(server);
    if ((await serverLine()) !== 'listening') throw new Error(`the server in ${t.ep} did not start`);
    const backend = createNftablesBackend(config, { netnsPath: `/run/netns/${t.node}` });
    const t0 = performance.now();
    await backend.sync({ state: stateOf(n), changed: null });
    console.log(JSON.stringify({ services: n, 'programmed in ms': Math.round(performance.now() - t0) }));
    const client = startIn(t.client, CLIENT, [CLUSTER_IP, '80']);
    children.push(client);
    const next = lines(client);
    const ask = async (count: number) => {
      client.stdin!.write(`${count}\n`);
      const r = JSON.parse(await next()) as number[] | { error: string };
      if (!Array.isArray(r)) throw new Error(`connects to ${CLUSTER_IP}:80 from ${t.client} failed: ${r.error}`);
      return r;
    };
    await ask(20); // warm-up: neighbour resolution, JIT
    runs.push({ n, ask, times: [] });
  }
  for (let done = 0; done < CONNECTS; done += ROUND) {
    for (const r of runs) r.times.push(...(await r.ask(Math.min(ROUND, CONNECTS - done))));
  }
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  for (const r of runs) {
    const s = [...r.times].sort((a, b) => a - b);
    const mean = s.reduce((x, y) => x + y, 0) / s.length;
    console.log(JSON.stringify({ services: r.n, connects: s.length, 'p50 ms': +pct(s, 50).toFixed(3), 'p99 ms': +pct(s, 99).toFixed(3), 'mean ms': +mean.toFixed(3), loadavg: load }));
  }
} finally {
  for (const c of children) c.kill();
  removeNamespaces();
}
