// Builds the lab: an underlay joining the nodes and an external client; in
// each node, pods attached by the CNI plugin exactly as a runtime does it;
// then one podwire proxy per node on the lab's manifests.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { daemonInNs, inNs, must, mustInNs, repoRoot, run } from './exec.js';
import { CLUSTER_CIDR, EXTERNAL_CIDR, SERVICE_CIDR, type Plan, type PlannedPod } from './plan.js';

export interface PodState {
  name: string;
  ns: string;
  node: number;
  containerId: string;
  ip: string;
  addMs: number;
}

export interface LabState {
  plan: Plan;
  pods: PodState[];
  proxies: Array<{ node: number; pid: number; log: string }>;
  chained: string[];
}

export const REFERENCE_CNI = '/usr/lib/cni';

export function statePath(plan: Plan): string {
  return join(plan.opts.stateDir, 'state.json');
}

export function saveState(s: LabState): void {
  writeFileSync(statePath(s.plan), JSON.stringify(s, null, 2));
}

export function loadState(stateDir: string): LabState | null {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

async function addNs(ns: string): Promise<void> {
  await must('ip', ['netns', 'add', ns]);
  await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

/** A veth from the underlay bridge to eth0 in ns. */
async function underlayPort(plan: Plan, short: string, ns: string, cidrs: string[]): Promise<void> {
  const side = `u-${short}`;
  await must('ip', ['-n', plan.underlay, 'link', 'add', side, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await must('ip', ['-n', plan.underlay, 'link', 'set', side, 'master', 'br-underlay', 'up']);
  for (const c of cidrs) await must('ip', ['-n', ns, 'addr', 'add', c, 'dev', 'eth0']);
  await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
}

export async function buildNetwork(plan: Plan, progress: (msg: string) => void): Promise<void> {
  await addNs(plan.underlay);
  await must('ip', ['-n', plan.underlay, 'link', 'add', 'br-underlay', 'type', 'bridge']);
  await must('ip', ['-n', plan.underlay, 'link', 'set', 'br-underlay', 'up']);
  for (const n of plan.nodes) {
    await addNs(n.ns);
    // What a real node sets: forwarding, and bridged pod traffic through netfilter (Services, hairpin).
    await mustInNs(n.ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.bridge.bridge-nf-call-iptables=1']);
    await underlayPort(plan, `n${n.index}`, n.ns, [`${n.underlayIP}/24`]);
    progress(`node ${n.name}: namespace ${n.ns}, underlay ${n.underlayIP}, pod CIDR ${n.podCIDR}`);
  }
  for (const n of plan.nodes) {
    for (const o of plan.nodes) if (o !== n) await must('ip', ['-n', n.ns, 'route', 'add', o.podCIDR, 'via', o.underlayIP]);
  }
  await addNs(plan.client);
  await underlayPort(plan, 'client', plan.client, [`${plan.clientIP}/24`]);
  // A real node has a default route: off-cluster traffic goes upstream (to the client, which does not forward).
  for (const n of plan.nodes) await must('ip', ['-n', n.ns, 'route', 'add', 'default', 'via', plan.clientIP]);
  // The client reaches service and external addresses through node-1, as a router would send them.
  for (const dst of [SERVICE_CIDR, EXTERNAL_CIDR]) await must('ip', ['-n', plan.client, 'route', 'add', dst, 'via', plan.nodes[0]!.underlayIP]);
  progress(`external client: ${plan.client} (${plan.clientIP})`);
}

function conflist(plan: Plan, node: number): { cniVersion: string; name: string; plugins: Array<Record<string, unknown>> } {
  const text = readFileSync(join(repoRoot(), 'lab', 'podwire-lab.conflist'), 'utf8')
    .replace('@POD_CIDR@', plan.nodes[node - 1]!.podCIDR)
    .replace('@IPAM_DIR@', join(plan.opts.stateDir, 'ipam'));
  const list = JSON.parse(text) as { cniVersion: string; name: string; plugins: Array<Record<string, unknown>> };
  // Chain the reference portmap only where it is installed.
  list.plugins = list.plugins.filter((p) => p.type === 'podwire-bridge' || existsSync(join(REFERENCE_CNI, String(p.type))));
  return list;
}

function pluginPath(type: string): string {
  const own = join(repoRoot(), 'cni-bin', type);
  return existsSync(own) ? own : join(REFERENCE_CNI, type);
}

/** Runs the conflist's plugins in order (ADD) or reverse (DEL), as libcni does, inside the node namespace. */
export async function runConflist(plan: Plan, pod: PlannedPod, command: 'ADD' | 'DEL', prevResult?: unknown): Promise<{ result: unknown; ms: number }> {
  const list = conflist(plan, pod.node);
  const node = plan.nodes[pod.node - 1]!;
  const plugins = command === 'ADD' ? list.plugins : [...list.plugins].reverse();
  let prev = prevResult;
  let ms = 0;
  for (const p of plugins) {
    const conf = { cniVersion: list.cniVersion, name: list.name, ...p, ...(prev ? { prevResult: prev } : {}) };
    const env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: existsSync(`/run/netns/${pod.ns}`) ? `/run/netns/${pod.ns}` : '',
      CNI_IFNAME: 'eth0',
      CNI_PATH: [join(repoRoot(), 'cni-bin'), REFERENCE_CNI].join(':'),
    };
    const r = await run('ip', ['netns', 'exec', node.ns, pluginPath(String(p.type))], { input: JSON.stringify(conf), env });
    ms += r.ms;
    if (r.code !== 0) throw new Error(`CNI ${command} ${p.type} for ${pod.name} failed: ${r.stdout.trim() || r.stderr.trim()}`);
    if (command === 'ADD') prev = JSON.parse(r.stdout);
  }
  return { result: prev, ms };
}

export async function addPods(plan: Plan, state: LabState, progress: (msg: string) => void): Promise<void> {
  state.chained = conflist(plan, 1).plugins.map((p) => String(p.type));
  for (const pod of plan.pods) {
    await addNs(pod.ns);
    const { result, ms } = await runConflist(plan, pod, 'ADD');
    const ip = ((result as { ips?: Array<{ address: string }> }).ips?.[0]?.address ?? '').split('/')[0]!;
    state.pods.push({ ...pod, ip, addMs: ms });
    saveState(state);
    progress(`pod ${pod.name}: ${ip} on ${plan.nodes[pod.node - 1]!.name} (CNI ADD ${state.chained.join(' → ')}: ${ms.toFixed(1)} ms)`);
  }
}

export async function startServers(plan: Plan, state: LabState): Promise<void> {
  const server = join(repoRoot(), 'lab', 'echo-server.mjs');
  const waits = state.pods.map(async (pod) => {
    daemonInNs(pod.ns, process.execPath, [server, '--name', pod.name, '--tcp', '8080', '--udp', '8081'], join(plan.opts.stateDir, `${pod.name}.log`));
    for (let i = 0; i < 100; i++) {
      const r = await inNs(pod.ns, 'ss', ['-Hltn', 'sport = :8080']);
      if (r.stdout.trim()) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`the echo server in ${pod.name} did not start (see ${plan.opts.stateDir}/${pod.name}.log)`);
  });
  await Promise.all(waits);
}

/** The lab's manifests: the static Services plus EndpointSlices and Nodes for the pods that exist. */
export function writeManifests(plan: Plan, state: LabState): string {
  const dir = join(plan.opts.stateDir, 'manifests');
  mkdirSync(dir, { recursive: true });
  const src = join(repoRoot(), 'lab', 'manifests');
  for (const f of readdirSync(src)) writeFileSync(join(dir, f), readFileSync(join(src, f)));
  const first = state.pods[0]!;
  const slice = (svc: string, ports: Array<{ name: string; port: number; protocol: string }>, pods: PodState[]) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${svc}-lab`, namespace: 'lab', labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports,
    endpoints: pods.map((p) => ({ addresses: [p.ip], nodeName: plan.nodes[p.node - 1]!.name, conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', namespace: 'lab', name: p.name } })),
  });
  const http = [{ name: 'http', port: 8080, protocol: 'TCP' }];
  const docs: unknown[] = [
    slice('web', [...http, { name: 'dns', port: 8081, protocol: 'UDP' }], state.pods),
    ...['web-nodeport', 'web-lb', 'web-external', 'web-sticky', 'web-local', 'web-node-local'].map((s) => slice(s, http, state.pods)),
    slice('hairpin', http, [first]),
    ...plan.nodes.map((n) => ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name } },
      spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] },
      status: { addresses: [{ type: 'InternalIP', address: n.underlayIP }, { type: 'Hostname', address: n.name }] },
    })),
  ];
  writeFileSync(join(dir, 'endpoints.yaml'), docs.map((d) => stringify(d)).join('---\n'));
  return dir;
}

export function startProxies(plan: Plan, state: LabState, manifests: string): void {
  const bin = join(repoRoot(), 'bin', 'podwire');
  for (const n of plan.nodes) {
    const log = join(plan.opts.stateDir, `proxy-${n.name}.log`);
    const pid = daemonInNs(
      n.ns,
      process.execPath,
      [bin, 'proxy', '--proxy-mode', plan.opts.proxyMode, '--manifests', manifests, '--hostname-override', n.name, '--cluster-cidr', CLUSTER_CIDR, '--iptables-min-sync-period', '100ms'],
      log,
    );
    state.proxies.push({ node: n.index, pid, log });
  }
  saveState(state);
}

/** Reads one proxy's /metrics from inside its node (127.0.0.1:10249 there). */
export async function proxyMetrics(ns: string): Promise<string | null> {
  const script = "fetch('http://127.0.0.1:10249/metrics').then(r=>r.text()).then(t=>process.stdout.write(t),()=>process.exit(1))";
  const r = await inNs(ns, process.execPath, ['-e', script], { timeoutMs: 5000 });
  return r.code === 0 ? r.stdout : null;
}

export function metricValue(text: string, name: string): number | null {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** Waits until every proxy has synced once; returns each node's sync durations (ms, mean). */
export async function waitForProxies(plan: Plan, state: LabState, timeoutMs = 30_000): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  const end = Date.now() + timeoutMs;
  for (const n of plan.nodes) {
    for (;;) {
      const m = await proxyMetrics(n.ns);
      const last = m ? metricValue(m, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds') : null;
      if (m && last && last > 0) {
        const sum = metricValue(m, 'kubeproxy_sync_proxy_rules_duration_seconds_sum') ?? 0;
        const count = metricValue(m, 'kubeproxy_sync_proxy_rules_duration_seconds_count') ?? 1;
        out.set(n.index, (sum / Math.max(1, count)) * 1000);
        break;
      }
      if (Date.now() > end) {
        const log = state.proxies.find((p) => p.node === n.index)?.log;
        const tail = log && existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-8).join('\n') : '';
        throw new Error(`the proxy on ${n.name} did not sync within ${timeoutMs / 1000} s:\n${tail}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return out;
}
