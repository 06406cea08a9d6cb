// npm run bench -- daemon [--modes iptables,nftables] [--services 10000] [--endpoints 10]
//
// The real daemon, end to end: `bin/podwire proxy --kubeconfig …` inside a
// fresh namespace pw-b-daemon-<mode>-<pid>, following an in-bench API server that
// serves N Services and N EndpointSlices. The API server runs in a child
// process on a unix socket; socat inside the namespace forwards the
// namespace's 127.0.0.1:6443 to it, so the namespace has no link to the host.
// Prints, per mode: time from start to the first complete sync (the daemon's
// "first sync complete" log line: lists, core, rules in the kernel), the
// daemon's RSS then, after 10 and 30 s of idling (the steady state), after
// 45 s (its first periodic full sync done), and its peak RSS (VmHWM).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBench, startClusterServer, type ClusterServer } from './lib/api-server.js';

const PODWIRE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'podwire');

function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

/** VmRSS and VmHWM of a process, in MiB. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kib('VmRSS') / 1024), peak: Math.round(kib('VmHWM') / 1024) };
}

function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
  });
}

async function benchMode(mode: string, server: ClusterServer, n: number): Promise<void> {
  // The pid: two runs at once must not share, and so delete, a namespace.
  const ns = `pw-b-daemon-${mode}-${process.pid}`;
  try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* not there */ }
  execFileSync('ip', ['netns', 'add', ns]);
  let forwarder: ChildProcess | undefined;
  let daemon: ChildProcess | undefined;
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    forwarder = spawn('ip', ['netns', 'exec', ns, 'socat', 'TCP-LISTEN:6443,bind=127.0.0.1,reuseaddr,fork', `UNIX-CONNECT:${server.socket}`], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const kubeconfig = server.kubeconfig('https://127.0.0.1:6443');
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS; // costs start-up time, and a runtime would not pass it
    const t0 = performance.now();
    // bin/podwire itself (not `node bin/podwire`): the daemon's own V8 flags are on its first line.
    daemon = spawn('ip', ['netns', 'exec', ns, PODWIRE, 'proxy', '--proxy-mode', mode, '--kubeconfig', kubeconfig, '--hostname-override', 'node-0',
      '--cluster-cidr', '10.128.0.0/10', '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249'], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let log = '';
    const firstSync = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${mode}: no first sync within 15 minutes\n${log.slice(-2000)}`)), 900_000);
      daemon!.stderr!.on('data', (d: Buffer) => {
        log += String(d);
        if (log.includes('first sync complete')) {
          clearTimeout(timer);
          resolve(performance.now() - t0);
        }
        if (log.length > 1 << 20) log = log.slice(-65536);
      });
      daemon!.once('exit', (code) => reject(new Error(`${mode}: the daemon exited (${code}) before its first sync\n${log.slice(-2000)}`)));
    });
    const line = log.split('\n').find((l) => l.includes('first sync complete'))!;
    const { syncSeconds, servicePorts } = JSON.parse(line) as { syncSeconds: number; servicePorts: number };
    const atSync = memoryOf(daemon.pid!);
    // V8 gives a sync's garbage back to the system only after it has been idle for a while.
    await new Promise((r) => setTimeout(r, 10_000));
    const idle10 = memoryOf(daemon.pid!);
    await new Promise((r) => setTimeout(r, 20_000));
    const idle = memoryOf(daemon.pid!);
    // The first periodic full sync (syncPeriod 30 s after the first) has run by now: the peak includes it
    // (for iptables it reads the whole nat table back).
    await new Promise((r) => setTimeout(r, 15_000));
    const afterPeriodic = memoryOf(daemon.pid!);
    console.log(JSON.stringify({
      mode, services: n, 'service ports programmed': servicePorts, 'start to first sync s': +(firstSync / 1000).toFixed(2),
      'first sync s': syncSeconds, 'rss at first sync MiB': atSync.rss, 'rss after 10 s idle MiB': idle10.rss, 'rss after 30 s idle MiB': idle.rss, 'rss after 45 s MiB': afterPeriodic.rss, 'peak rss MiB': afterPeriodic.peak,
    }));
  } finally {
    await stop(daemon);
    await stop(forwarder);
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

async function main(): Promise<void> {
  const modes = opt('modes', 'iptables,nftables').split(',');
  const n = Number(opt('services', '10000'));
  const eps = Number(opt('endpoints', '10'));
  const server = await startClusterServer(import.meta.url, n, eps);
  try {
    for (const mode of modes) await benchMode(mode, server, n);
  } finally {
    server.stop();
  }
}

runBench(main);
