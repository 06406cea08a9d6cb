// A fake cluster made of network namespaces, for traffic tests of any proxy
// backend. Nothing here knows about iptables, nftables or IPVS.
//
//   lan ns:     bridge "br-lan" joining the nodes and the external client
//   node i:     eth0 on the lan (10.0.0.(10+i), fd00:10::(10+i)), bridge "cbr0"
//               with 10.244.i.1/24 and fd00:244:i::1/64 for its pods; routes to
//               the other nodes' pod CIDRs via their lan address
//   pod:        eth0 on its node's bridge (hairpin on), default route to the
//               bridge, runs lab/echo-server.mjs (TCP and UDP)
//   client:     eth0 on the lan, 10.0.0.100 and 10.0.0.101 (two sources for
//               source-range tests), routes "external" VIP ranges to node 1;
//               the nodes' default route (it does not forward)
//
// Every namespace is named pw-t-<suite>-…, so NetnsScope.cleanup removes all of
// it, including what a crashed run left.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsScope, must, nsMust, nsRun } from './netns.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ECHO_SERVER = join(repo, 'lab', 'echo-server.mjs');
export const PROBE = join(repo, 'lab', 'probe.mjs');

/** Address ranges the client routes to node 1, for external IPs and load-balancer VIPs. */
export const EXTERNAL_RANGE4 = '203.0.113.0/24';
export const EXTERNAL_RANGE6 = '2001:db8:1::/64';
export const CLIENT_IP4 = '10.0.0.100';
export const CLIENT_IP4_ALT = '10.0.0.101';
export const CLIENT_IP6 = 'fd00:10::100';
export const POD_PORT_TCP = 8080;
export const POD_PORT_UDP = 8081;

/** Environment for helper processes: no extra CA file (it slows every Node start by ~40 ms). */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export interface ClusterNode {
  readonly index: number;
  readonly ns: string;
  readonly name: string;
  readonly ip4: string;
  readonly ip6: string;
  readonly podCIDR4: string;
  readonly podCIDR6: string;
  readonly bridgeIP4: string;
  readonly bridgeIP6: string;
}

export interface Pod {
  readonly name: string;
  readonly ns: string;
  readonly node: ClusterNode;
  readonly ip4: string;
  readonly ip6: string;
  /** The node-side veth (a port of cbr0). */
  readonly hostVeth: string;
}

export interface ProbeAttempt {
  result: 'ok' | 'refused' | 'timeout' | string;
  server?: string;
  sourceIP?: string;
  sourcePort?: number;
  ms: number;
}

export interface ProbeOptions {
  proto?: 'tcp' | 'udp';
  count?: number;
  timeoutMs?: number;
  source?: string;
}

export interface ClusterOptions {
  /** Number of nodes (default 2). Node 1 is the one a test runs the proxy in. */
  nodes?: number;
}

export class Cluster {
  readonly scope: NetnsScope;
  readonly nodes: ClusterNode[] = [];
  lan = '';
  client = '';
  private readonly pods = new Map<string, Pod>();
  private readonly servers = new Map<string, ChildProcess>();
  private nextPod = new Map<number, number>();
  private vethSeq = 0;

  private constructor(suite: string) {
    this.scope = new NetnsScope(suite);
  }

  /** Builds the lan, the nodes and the client (removing leftovers of the suite first). */
  static async create(suite: string, opts: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(suite);
    await c.scope.cleanup();
    try {
      await c.build(opts.nodes ?? 2);
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  private async prepareNs(short: string): Promise<string> {
    const ns = await this.scope.create(short);
    // No duplicate address detection: addresses are usable at once.
    await nsMust(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    return ns;
  }

  private async build(count: number): Promise<void> {
    this.lan = await this.prepareNs('lan');
    await must('ip', ['-n', this.lan, 'link', 'add', 'br-lan', 'type', 'bridge']);
    await must('ip', ['-n', this.lan, 'link', 'set', 'br-lan', 'up']);
    for (let i = 1; i <= count; i++) {
      const ns = await this.prepareNs(`n${i}`);
      const node: ClusterNode = {
        index: i,
        ns,
        name: `node-${i}`,
        ip4: `10.0.0.${10 + i}`,
        ip6: `fd00:10::${10 + i}`,
        podCIDR4: `10.244.${i}.0/24`,
        podCIDR6: `fd00:244:${i}::/64`,
        bridgeIP4: `10.244.${i}.1`,
        bridgeIP6: `fd00:244:${i}::1`,
      };
      await nsMust(ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.bridge.bridge-nf-call-iptables=1', 'net.bridge.bridge-nf-call-ip6tables=1']);
      await this.lanPort(`n${i}`, ns, [`${node.ip4}/24`, `${node.ip6}/64`]);
      await must('ip', ['-n', ns, 'link', 'add', 'cbr0', 'type', 'bridge']);
      await must('ip', ['-n', ns, 'addr', 'add', `${node.bridgeIP4}/24`, 'dev', 'cbr0']);
      await must('ip', ['-n', ns, 'addr', 'add', `${node.bridgeIP6}/64`, 'dev', 'cbr0', 'nodad']);
      await must('ip', ['-n', ns, 'link', 'set', 'cbr0', 'up']);
      this.nodes.push(node);
      this.nextPod.set(i, 2);
    }
    for (const node of this.nodes) {
      for (const other of this.nodes) {
        if (other === node) continue;
        await must('ip', ['-n', node.ns, 'route', 'add', other.podCIDR4, 'via', other.ip4]);
        await must('ip', ['-n', node.ns, '-6', 'route', 'add', other.podCIDR6, 'via', other.ip6]);
      }
    }
    this.client = await this.prepareNs('client');
    await this.lanPort('client', this.client, [`${CLIENT_IP4}/24`, `${CLIENT_IP4_ALT}/24`, `${CLIENT_IP6}/64`]);
    // Off-cluster destinations go to the client, which does not forward: like an upstream that drops them.
    for (const node of this.nodes) {
      await must('ip', ['-n', node.ns, 'route', 'add', 'default', 'via', CLIENT_IP4]);
      await must('ip', ['-n', node.ns, '-6', 'route', 'add', 'default', 'via', CLIENT_IP6]);
    }
    const n1 = this.node(1);
    await must('ip', ['-n', this.client, 'route', 'add', EXTERNAL_RANGE4, 'via', n1.ip4]);
    await must('ip', ['-n', this.client, '-6', 'route', 'add', EXTERNAL_RANGE6, 'via', n1.ip6]);
  }

  /** A veth from the lan bridge to eth0 in ns, with the given addresses. */
  private async lanPort(short: string, ns: string, addrs: string[]): Promise<void> {
    const lanSide = `l-${short}`;
    await must('ip', ['-n', this.lan, 'link', 'add', lanSide, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await must('ip', ['-n', this.lan, 'link', 'set', lanSide, 'master', 'br-lan', 'up']);
    for (const a of addrs) await must('ip', ['-n', ns, 'addr', 'add', a, 'dev', 'eth0', ...(a.includes(':') ? ['nodad'] : [])]);
    await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  }

  node(index: number): ClusterNode {
    const n = this.nodes[index - 1];
    if (!n) throw new Error(`cluster has no node ${index}`);
    return n;
  }

  pod(name: string): Pod {
    const p = this.pods.get(name);
    if (!p) throw new Error(`cluster has no pod ${name}`);
    return p;
  }

  /** Creates a pod on a node and starts its echo server (TCP 8080, UDP 8081 by default). */
  async addPod(name: string, nodeIndex: number, opts: { tcp?: number[]; udp?: number[] } = {}): Promise<Pod> {
    if (this.pods.has(name)) throw new Error(`pod ${name} exists`);
    const node = this.node(nodeIndex);
    const host = this.nextPod.get(nodeIndex) ?? 2;
    this.nextPod.set(nodeIndex, host + 1);
    const ns = await this.prepareNs(`p-${name}`);
    const hostVeth = `vp${++this.vethSeq}`;
    const pod: Pod = { name, ns, node, ip4: `10.244.${nodeIndex}.${host}`, ip6: `fd00:244:${nodeIndex}::${host.toString(16)}`, hostVeth };
    await must('ip', ['-n', node.ns, 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await must('ip', ['-n', node.ns, 'link', 'set', hostVeth, 'master', 'cbr0', 'up']);
    // Hairpin: a pod reaching itself through a service gets its packet back on the same port.
    await must('ip', ['-n', node.ns, 'link', 'set', hostVeth, 'type', 'bridge_slave', 'hairpin', 'on']);
    await must('ip', ['-n', ns, 'addr', 'add', `${pod.ip4}/24`, 'dev', 'eth0']);
    await must('ip', ['-n', ns, 'addr', 'add', `${pod.ip6}/64`, 'dev', 'eth0', 'nodad']);
    await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await must('ip', ['-n', ns, 'route', 'add', 'default', 'via', node.bridgeIP4]);
    await must('ip', ['-n', ns, '-6', 'route', 'add', 'default', 'via', node.bridgeIP6]);
    this.pods.set(name, pod);
    await this.startServer(pod, opts.tcp ?? [POD_PORT_TCP], opts.udp ?? [POD_PORT_UDP]);
    return pod;
  }

  private startServer(pod: Pod, tcp: number[], udp: number[]): Promise<void> {
    const args = ['netns', 'exec', pod.ns, process.execPath, ECHO_SERVER, '--name', pod.name, '--tcp', tcp.join(','), '--udp', udp.join(',')];
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
    this.servers.set(pod.name, child);
    return new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => reject(new Error(`echo server of pod ${pod.name} not ready after 10 s: ${err}`)), 10_000);
      child.stdout?.on('data', (d: Buffer) => {
        out += String(d);
        if (out.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr?.on('data', (d: Buffer) => (err += String(d)));
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`echo server of pod ${pod.name} exited (${code}): ${err}`));
      });
    });
  }

  /** Stops a pod's server and removes its namespace (its veth goes with it). */
  async removePod(name: string): Promise<void> {
    const pod = this.pod(name);
    this.servers.get(name)?.kill('SIGKILL');
    this.servers.delete(name);
    await this.scope.remove(pod.ns);
    this.pods.delete(name);
  }

  /** Runs lab/probe.mjs inside ns against host:port and returns one entry per attempt. */
  async probe(ns: string, host: string, port: number, opts: ProbeOptions = {}): Promise<ProbeAttempt[]> {
    const args = [process.execPath, PROBE, '--proto', opts.proto ?? 'tcp', '--count', String(opts.count ?? 1), '--timeout', String(opts.timeoutMs ?? 1500)];
    if (opts.source) args.push('--source', opts.source);
    args.push(host, String(port));
    const r = await nsRun(ns, args[0]!, args.slice(1), { env: childEnv(), timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`probe from ${ns} to ${host}:${port} failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as ProbeAttempt[];
  }

  /** Removes every namespace of the suite (servers inside are killed). */
  async destroy(): Promise<void> {
    for (const child of this.servers.values()) child.kill('SIGKILL');
    this.servers.clear();
    await this.scope.cleanup();
  }
}

/** Counts answers per server name ("refused"/"timeout" for failed attempts). */
export function tally(attempts: readonly ProbeAttempt[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of attempts) {
    const key = a.result === 'ok' ? (a.server ?? '?') : a.result;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
