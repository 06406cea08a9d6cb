// The lab's checks: each service, from the places that matter, with what a
// person should expect and what actually answered.
import { join } from 'node:path';
import { inNs, repoRoot } from './exec.js';
import type { LabState, PodState } from './build.js';

interface Attempt {
  result: string;
  server?: string;
  sourceIP?: string;
}

export interface CheckResult {
  service: string;
  from: string;
  expected: string;
  got: string;
  pass: boolean;
}

interface Check {
  service: string;
  from: string;
  ns: string;
  target: [string, number];
  proto?: 'tcp' | 'udp';
  count: number;
  expected: string;
  judge(attempts: Attempt[]): boolean;
}

async function probe(ns: string, host: string, port: number, proto: 'tcp' | 'udp', count: number): Promise<Attempt[]> {
  const r = await inNs(ns, process.execPath, [join(repoRoot(), 'lab', 'probe.mjs'), '--proto', proto, '--count', String(count), '--timeout', '1500', host, String(port)], { timeoutMs: 60_000 });
  try {
    return JSON.parse(r.stdout) as Attempt[];
  } catch {
    return [{ result: `probe failed: ${(r.stderr || r.stdout).trim().slice(0, 80)}` }];
  }
}

function summary(attempts: Attempt[]): string {
  const counts = new Map<string, number>();
  for (const a of attempts) {
    const k = a.result === 'ok' ? a.server! : a.result;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const src = [...new Set(attempts.filter((a) => a.sourceIP).map((a) => a.sourceIP))];
  return [...counts].map(([k, n]) => `${k}×${n}`).join(' ') + (src.length === 1 ? ` (saw ${src[0]})` : '');
}

const allOk = (a: Attempt[]) => a.length > 0 && a.every((x) => x.result === 'ok');
const servers = (a: Attempt[]) => new Set(a.map((x) => x.server));

export function planChecks(state: LabState): Check[] {
  const plan = state.plan;
  const pods = state.pods;
  const n1 = plan.nodes[0]!;
  const n2 = plan.nodes[1] ?? n1;
  const pod1 = pods[0]!;
  const onNode = (i: number) => new Set(pods.filter((p: PodState) => p.node === i).map((p) => p.name));
  const local1 = onNode(n1.index);
  const local2 = onNode(n2.index);
  const spread = pods.length > 1;
  const keepsClientIP = plan.opts.proxyMode !== 'userspace';
  const checks: Check[] = [
    {
      service: 'web ClusterIP 10.96.0.10:80/TCP', from: `pod ${pod1.name}`, ns: pod1.ns, target: ['10.96.0.10', 80], count: 12,
      expected: spread ? 'several pods answer' : 'the pod answers',
      judge: (a) => allOk(a) && (!spread || servers(a).size >= 2),
    },
    {
      service: 'web ClusterIP 10.96.0.10:53/UDP', from: `pod ${pod1.name}`, ns: pod1.ns, target: ['10.96.0.10', 53], proto: 'udp', count: 4,
      expected: 'a pod answers', judge: allOk,
    },
    {
      service: 'web ClusterIP 10.96.0.10:80/TCP', from: `node ${n2.name}`, ns: n2.ns, target: ['10.96.0.10', 80], count: 4,
      expected: 'a pod answers', judge: allOk,
    },
    {
      service: `web-nodeport ${n1.underlayIP}:30080`, from: 'external client', ns: plan.client, target: [n1.underlayIP, 30080], count: 4,
      expected: 'a pod answers', judge: allOk,
    },
    {
      service: `web-nodeport ${n1.underlayIP}:30080`, from: `node ${n2.name}`, ns: n2.ns, target: [n1.underlayIP, 30080], count: 4,
      expected: 'a pod answers', judge: allOk,
    },
    {
      service: 'web-lb LoadBalancer 203.0.113.10:80', from: 'external client', ns: plan.client, target: ['203.0.113.10', 80], count: 4,
      expected: 'a pod answers', judge: allOk,
    },
    {
      service: 'web-external externalIP 203.0.113.20:80', from: 'external client', ns: plan.client, target: ['203.0.113.20', 80], count: 4,
      expected: 'a pod answers', judge: allOk,
    },
    {
      service: 'web-sticky ClientIP affinity 10.96.0.14:80', from: `pod ${pod1.name}`, ns: pod1.ns, target: ['10.96.0.14', 80], count: 8,
      expected: 'one pod for every try', judge: (a) => allOk(a) && servers(a).size === 1,
    },
    {
      // The userspace proxy opens its own connection to the pod: the endpoint sees the node, whatever the policy.
      service: `web-local ETP=Local ${n2.underlayIP}:30082`, from: 'external client', ns: plan.client, target: [n2.underlayIP, 30082], count: 6,
      expected: keepsClientIP ? `only ${n2.name}'s pods; client IP kept` : `only ${n2.name}'s pods (${plan.opts.proxyMode} mode: the pod sees the node)`,
      judge: (a) => allOk(a) && [...servers(a)].every((s) => local2.has(s!)) && (!keepsClientIP || a.every((x) => x.sourceIP === plan.clientIP)),
    },
    {
      service: 'web-node-local ITP=Local 10.96.0.16:80', from: `pod ${pod1.name}`, ns: pod1.ns, target: ['10.96.0.16', 80], count: 6,
      expected: `only ${n1.name}'s pods`, judge: (a) => allOk(a) && [...servers(a)].every((s) => local1.has(s!)),
    },
    {
      service: 'nothing-behind (no endpoints) 10.96.0.17:80', from: `pod ${pod1.name}`, ns: pod1.ns, target: ['10.96.0.17', 80], count: 2,
      expected: 'refused at once', judge: (a) => a.every((x) => x.result === 'refused'),
    },
    {
      service: 'hairpin 10.96.0.18:80 (selects only this pod)', from: `pod ${pod1.name}`, ns: pod1.ns, target: ['10.96.0.18', 80], count: 3,
      expected: `${pod1.name} reaches itself`, judge: (a) => allOk(a) && a.every((x) => x.server === pod1.name),
    },
  ];
  if (pods.length > 1) {
    const remote = pods.find((p) => p.node !== pod1.node) ?? pods[1]!;
    checks.push({
      service: `pod to pod ${remote.ip}:8080 (no proxy)`, from: `pod ${pod1.name}`, ns: pod1.ns, target: [remote.ip, 8080], count: 2,
      expected: `${remote.name}, source ${pod1.ip}`, judge: (a) => allOk(a) && a.every((x) => x.server === remote.name && x.sourceIP === pod1.ip),
    });
  }
  return checks;
}

export async function runChecks(state: LabState): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const c of planChecks(state)) {
    const attempts = await probe(c.ns, c.target[0], c.target[1], c.proto ?? 'tcp', c.count);
    out.push({ service: c.service, from: c.from, expected: c.expected, got: summary(attempts), pass: c.judge(attempts) });
  }
  return out;
}
