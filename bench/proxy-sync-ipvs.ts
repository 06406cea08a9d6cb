// npm run bench -- proxy-sync-ipvs [N...] | [--sizes N,N]   (default: 1000 10000 services x 10 endpoints)
// The IPVS backend's sync cost: cold full sync, one-endpoint change (partial
// sync), an idle full sync (the periodic --ipvs-sync-period one with nothing
// changed: it still reads everything back to repair hand edits; the first
// one after the cold sync, and the next, steady one) and a full
// sync repairing one real server deleted by hand, next to `ipvsadm --restore`
// of the same virtual servers (the floor for a tool that execs a process).
// This kernel has no IPVS: on the host the bench re-runs itself inside the
// IPVS VM (../shared/tools/ipvs-vm), in a namespace pw-b-ipvs made for it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createIpvsBackend } from '../src/proxy/ipvs/index.js';
import type { EndpointInfo, ProxyConfig, ProxyState, ServicePortInfo, ServiceView } from '../src/proxy/model.js';

const args = process.argv.slice(2);
const inside = args[0] === '--inside';
const rest = inside ? args.slice(1) : args;
// Sizes as arguments (1000 10000) or as the other benches take them (--sizes 1000,10000).
const at = rest.indexOf('--sizes');
const sizes = (at >= 0 ? (rest[at + 1] ?? '').split(',') : rest).map(Number).filter((n) => n > 0);
if (sizes.length === 0) sizes.push(1000, 10000);

if (!inside) {
  const runner = resolve(process.cwd(), '..', 'shared', 'tools', 'ipvs-vm', 'run-in-vm.sh');
  if (!existsSync(runner)) {
    console.error(`proxy-sync-ipvs: needs the IPVS VM (${runner}); this kernel has no IPVS`);
    process.exit(2);
  }
  const r = spawnSync(runner, [resolve('test/ipvs/bench.sh'), ...sizes.map(String)], { stdio: 'inherit', env: { ...process.env, IPVSLAB_TIMEOUT: '1200', IPVSLAB_MEM: '2048M' } });
  process.exit(r.status ?? 1);
}

const NS = 'pw-b-ipvs';
const nsPath = `/run/netns/${NS}`;
const sh = (cmd: string, a: string[], input?: string) => execFileSync(cmd, a, { input, maxBuffer: 1 << 28 });
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

function svcIP(i: number): string {
  return `10.96.${(i >> 8) & 0xff}.${i & 0xff}`;
}
function epIP(i: number, j: number): string {
  const n = i * 10 + j + 2; // skip the network address and pods0's own
  return `172.16.${(n >> 8) & 0xff}.${n & 0xff}`.replace(/^172\.16\./, `172.${16 + (n >> 16)}.`);
}
function endpoint(ip: string): EndpointInfo {
  return { ip, port: 8080, ready: true, serving: true, terminating: false, nodeName: 'n', zone: '', isLocal: false };
}
function serviceView(i: number, bumped = false): ServiceView {
  const info: ServicePortInfo = {
    name: `bench/s${i}:http`, namespace: 'bench', service: `s${i}`, portName: 'http', protocol: 'TCP', clusterIP: svcIP(i), port: 80,
    nodePort: 0, externalIPs: [], loadBalancerVIPs: [], loadBalancerSourceRanges: [], affinityTimeoutSeconds: 0,
    externalPolicyLocal: false, internalPolicyLocal: false, healthCheckNodePort: 0,
  };
  const eps = Array.from({ length: 10 }, (_, j) => endpoint(epIP(i, j)));
  if (bumped) eps[0] = endpoint(`172.31.255.${1 + (i % 250)}`);
  return { info, internalEndpoints: eps, externalEndpoints: eps, allEndpoints: eps };
}
function services(n: number): Map<string, ServiceView> {
  const m = new Map<string, ServiceView>();
  for (let i = 0; i < n; i++) m.set(`bench/s${i}:http`, serviceView(i));
  return m;
}

const config: ProxyConfig = { family: 4, clusterCIDRs: ['172.16.0.0/12'], masqueradeAll: false, masqueradeBit: 14, nodePortAddresses: [], localhostNodePorts: false };
const node = { name: 'n', ips: ['192.168.0.1'], zone: '', labels: {}, podCIDRs: [] };

for (const n of sizes) {
  spawnSync('ip', ['netns', 'del', NS]);
  sh('ip', ['netns', 'add', NS]);
  try {
    sh('ip', ['-n', NS, 'link', 'add', 'pods0', 'type', 'dummy']);
    sh('ip', ['-n', NS, 'addr', 'add', '172.16.0.1/12', 'dev', 'pods0']);
    sh('ip', ['-n', NS, 'link', 'set', 'pods0', 'up']);
    const backend = createIpvsBackend(config, { netnsPath: nsPath, flavour: 'nft' });
    const st = (s: Map<string, ServiceView>): ProxyState => ({ family: 4, node, services: s });
    // States are built before the clock starts: the bench times the backend, not the fixture.
    // As the proxy core hands them over: the unchanged services keep their view objects.
    const before = st(services(n));
    const after = st(new Map(before.services).set(`bench/s${n >> 1}:http`, serviceView(n >> 1, true)));
    let t = process.hrtime.bigint();
    await backend.sync({ state: before, changed: null });
    const cold = ms(t);
    const bumped = n >> 1;
    t = process.hrtime.bigint();
    await backend.sync({ state: after, changed: new Set([`bench/s${bumped}:http`]) });
    const one = ms(t);
    t = process.hrtime.bigint();
    const r = await backend.sync({ state: after, changed: null });
    const idle = ms(t);
    // The next one is the steady state: every virtual server matched last time, so its /proc text is only compared.
    t = process.hrtime.bigint();
    const r2 = await backend.sync({ state: after, changed: null });
    const steady = ms(t);
    sh('ip', ['netns', 'exec', NS, 'ipvsadm', '-d', '-t', `${svcIP(1)}:80`, '-r', `${epIP(1, 3)}:8080`]);
    t = process.hrtime.bigint();
    const fix = await backend.sync({ state: after, changed: null });
    const repair = ms(t);
    await backend.cleanup();
    // The same virtual servers through ipvsadm --restore, into the now empty table.
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      lines.push(`-A -t ${svcIP(i)}:80 -s rr`);
      for (let j = 0; j < 10; j++) lines.push(`-a -t ${svcIP(i)}:80 -r ${epIP(i, j)}:8080 -m -w 1`);
    }
    t = process.hrtime.bigint();
    sh('ip', ['netns', 'exec', NS, 'ipvsadm', '--restore'], lines.join('\n') + '\n');
    const restore = ms(t);
    console.log(
      `${n} services x 10 endpoints: cold full sync ${cold.toFixed(0)} ms, one-endpoint change ${one.toFixed(1)} ms, ` +
        `idle full sync ${idle.toFixed(0)} ms first, ${steady.toFixed(0)} ms steady (${r.counts?.['ipvs changes']}+${r2.counts?.['ipvs changes']} changes), repair of one deleted real server ${repair.toFixed(0)} ms ` +
        `(${fix.counts?.['ipvs changes']} change), ipvsadm --restore ${restore.toFixed(0)} ms`,
    );
  } finally {
    spawnSync('ip', ['netns', 'del', NS]);
  }
}
