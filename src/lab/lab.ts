// `podwire lab up | status | down`: the whole of a cluster's node networking
// in network namespaces, built the way a runtime and kube-proxy would use podwire.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { addPods, buildNetwork, loadState, proxyMetrics, runConflist, saveState, startProxies, startServers, waitForProxies, writeManifests, type LabState } from './build.js';
import { runChecks } from './checks.js';
import { run } from './exec.js';
import { makePlan, type LabOptions } from './plan.js';
import { checksTable, topologyPicture } from './report.js';

const say = (msg: string) => process.stdout.write(`${msg}\n`);

function labNamespaces(prefix: string): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

/** Removes everything of a lab (also a crashed one): CNI DEL per pod as a runtime would, processes, namespaces, state. */
export async function labDown(opts: LabOptions, quiet = false): Promise<void> {
  const state = loadState(opts.stateDir);
  if (state) {
    for (const pod of state.pods) {
      try {
        await runConflist(state.plan, pod, 'DEL');
      } catch (e) {
        if (!quiet) say(`  CNI DEL ${pod.name}: ${(e as Error).message}`);
      }
    }
  }
  for (const ns of labNamespaces(opts.prefix)) {
    const pids = await run('ip', ['netns', 'pids', ns]);
    for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const p of state?.proxies ?? []) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const ns of labNamespaces(opts.prefix)) await run('ip', ['netns', 'del', ns]);
  rmSync(opts.stateDir, { recursive: true, force: true });
  if (!quiet) say(`lab down: removed namespaces ${opts.prefix}*, processes and ${opts.stateDir}`);
}

export async function labUp(opts: LabOptions & { keep: boolean }): Promise<number> {
  const plan = makePlan(opts);
  const t0 = performance.now();
  const step = (msg: string) => say(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}`);
  if (labNamespaces(opts.prefix).length || existsSync(opts.stateDir)) {
    step('cleaning up what an earlier run left');
    await labDown(opts, true);
  }
  mkdirSync(opts.stateDir, { recursive: true });
  const state: LabState = { plan, pods: [], proxies: [], chained: [] };
  saveState(state);
  let failed = 0;
  try {
    step(`building ${plan.nodes.length} nodes × ${opts.podsPerNode} pods, proxy mode ${opts.proxyMode}`);
    await buildNetwork(plan, step);
    await addPods(plan, state, step);
    await startServers(plan, state);
    step('echo servers listening in every pod (TCP 8080, UDP 8081)');
    const manifests = writeManifests(plan, state);
    startProxies(plan, state, manifests);
    step(`podwire proxy started on every node (manifests ${manifests})`);
    const syncMs = await waitForProxies(plan, state);
    step('every proxy has synced');
    const results = await runChecks(state);
    failed = results.filter((r) => !r.pass).length;
    say('');
    say(topologyPicture(state, syncMs));
    say('');
    say(checksTable(results));
    say('');
    const adds = state.pods.map((p) => p.addMs).sort((a, b) => a - b);
    say(`CNI ADD (${state.chained.join(' → ')}): median ${adds[Math.floor(adds.length / 2)]!.toFixed(1)} ms over ${adds.length} pods`);
    say(failed ? `${failed} of ${results.length} checks FAILED` : `all ${results.length} checks passed`);
  } catch (e) {
    say(`lab up failed: ${(e as Error).message}`);
    failed = Math.max(failed, 1);
  }
  if (opts.keep) {
    say('');
    say('The lab keeps running. To explore:');
    say(`  ip netns exec ${plan.pods[0]!.ns} bash            # a shell inside pod ${plan.pods[0]!.name}`);
    say(`  ip netns exec ${plan.nodes[0]!.ns} iptables-save -t nat   # node-1's service rules`);
    say(`  podwire lab status${opts.prefix !== 'pw-lab-' ? ` --prefix ${opts.prefix} --state-dir ${opts.stateDir}` : ''}`);
    say(`  podwire lab down${opts.prefix !== 'pw-lab-' ? ` --prefix ${opts.prefix} --state-dir ${opts.stateDir}` : ''}`);
  } else {
    await labDown(opts, true);
    step('lab removed (use --keep to leave it running)');
  }
  return failed ? 1 : 0;
}

export async function labStatus(opts: LabOptions): Promise<number> {
  const state = loadState(opts.stateDir);
  if (!state) {
    say(`no lab running (no ${opts.stateDir}/state.json)`);
    return 1;
  }
  say(topologyPicture(state));
  say('');
  for (const p of state.proxies) {
    const node = state.plan.nodes[p.node - 1]!;
    let alive = true;
    try {
      process.kill(p.pid, 0);
    } catch {
      alive = false;
    }
    const m = alive ? await proxyMetrics(node.ns) : null;
    const last = m ? /^kubeproxy_sync_proxy_rules_last_timestamp_seconds ([0-9.e+]+)$/m.exec(m)?.[1] : undefined;
    say(`${node.name}: proxy pid ${p.pid} ${alive ? 'running' : 'NOT RUNNING'}${last ? `, last sync ${new Date(Number(last) * 1000).toISOString()}` : ''} (log ${p.log})`);
  }
  return 0;
}
