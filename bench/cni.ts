// npm run bench -- cni [--runs N] [--concurrent N] [--rounds N]
// ADD and DEL latency (median, fresh pod namespace each) and the wall time of
// concurrent ADDs, for podwire-bridge (podwire-ipam in process, and host-local
// exec'd) and for the reference bridge + host-local, with the same config
// (isGateway, ipMasq, hairpinMode), side by side with ratios. Node's start-up
// is measured too, with and without NODE_EXTRA_CA_CERTS. Everything runs in
// pw-b-cni-* namespaces this program creates and removes.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PODWIRE = join(root, 'cni-bin', 'podwire-bridge');
const REF = '/usr/lib/cni';
const PREFIX = 'pw-b-cni-';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const RUNS = arg('--runs', 30);
const CONCURRENT = arg('--concurrent', 20);
const ROUNDS = arg('--rounds', 3);

function must(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

function cleanup(): void {
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns').filter((n) => n.startsWith(PREFIX));
  } catch {
    /* none */
  }
  for (const n of names) spawnSync('ip', ['netns', 'del', n]);
}

let nsCounter = 0;
function newNs(tag: string): string {
  const name = `${PREFIX}${tag}${nsCounter++}`;
  must('ip', ['netns', 'add', name]);
  must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

interface Flavour {
  label: string;
  plugin: string;
  conf: (dataDir: string) => object;
  caCerts: boolean;
}

/** Runs a plugin inside the node namespace (nsenter: no /sys remount, so no cost beyond the plugin's own). */
function runPlugin(node: string, plugin: string, command: string, id: string, pod: string, conf: object, caCerts: boolean): Promise<number> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: `/run/netns/${pod}`,
    CNI_IFNAME: 'eth0',
    CNI_PATH: `${REF}:${join(root, 'cni-bin')}`,
  };
  if (caCerts && process.env.NODE_EXTRA_CA_CERTS) env.NODE_EXTRA_CA_CERTS = process.env.NODE_EXTRA_CA_CERTS;
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('nsenter', [`--net=/run/netns/${node}`, plugin], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`${plugin} ${command} ${id}: ${signal ? `killed by ${signal}` : `exit ${code}`}: ${out} ${err}`));
      else resolve(ms);
    });
    child.stdin.end(JSON.stringify(conf));
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function nodeStart(caCerts: boolean): number {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (!caCerts) delete env.NODE_EXTRA_CA_CERTS;
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0'], { env });
    xs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(xs);
}

interface Setup {
  f: Flavour;
  node: string;
  dataDir: string;
  conf: object;
  adds: number[];
  dels: number[];
  walls: number[];
}

/**
 * The flavours are measured interleaved (one ADD+DEL of each in turn, then one
 * concurrent round of each in turn, ROUNDS times), so a change in the machine's
 * load hits them alike and the ratios stay meaningful on a shared machine.
 */
async function measureAll(fs: Flavour[]): Promise<Array<{ add: number; del: number; wall: number }>> {
  const setups: Setup[] = fs.map((f, index) => {
    const dataDir = mkdtempSync(join(tmpdir(), `${PREFIX}${index}-`));
    return { f, node: newNs(`n${index}-`), dataDir, conf: f.conf(dataDir), adds: [], dels: [], walls: [] };
  });
  try {
    // One warm-up attachment creates the bridge, so every measured ADD is a pod joining an existing network.
    for (const [index, s] of setups.entries()) await runPlugin(s.node, s.f.plugin, 'ADD', 'warm', newNs(`w${index}-`), s.conf, s.f.caCerts);
    for (let i = 0; i < RUNS; i++) {
      for (const [index, s] of setups.entries()) {
        const pod = newNs(`p${index}-`);
        s.adds.push(await runPlugin(s.node, s.f.plugin, 'ADD', `c${i}`, pod, s.conf, s.f.caCerts));
        s.dels.push(await runPlugin(s.node, s.f.plugin, 'DEL', `c${i}`, pod, s.conf, s.f.caCerts));
        spawnSync('ip', ['netns', 'del', pod]);
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const [index, s] of setups.entries()) {
        const pods = Array.from({ length: CONCURRENT }, () => newNs(`q${index}-`));
        const t0 = process.hrtime.bigint();
        await Promise.all(pods.map((p, i) => runPlugin(s.node, s.f.plugin, 'ADD', `q${round}-${i}`, p, s.conf, s.f.caCerts)));
        s.walls.push(Number(process.hrtime.bigint() - t0) / 1e6);
        await Promise.all(pods.map((p, i) => runPlugin(s.node, s.f.plugin, 'DEL', `q${round}-${i}`, p, s.conf, s.f.caCerts)));
        for (const p of pods) spawnSync('ip', ['netns', 'del', p]);
      }
    }
    return setups.map((s) => ({ add: median(s.adds), del: median(s.dels), wall: median(s.walls) }));
  } finally {
    for (const s of setups) rmSync(s.dataDir, { recursive: true, force: true });
    cleanup();
  }
}

const common = { cniVersion: '1.0.0', bridge: 'pwbench0', isGateway: true, ipMasq: true, hairpinMode: true };
const hostLocal = (dataDir: string, subnet: string) => ({ type: 'host-local', dataDir, ranges: [[{ subnet }]] });
const flavours: Flavour[] = [
  { label: 'reference bridge + host-local', plugin: join(REF, 'bridge'), caCerts: false, conf: (d) => ({ ...common, name: 'bref', type: 'bridge', ipam: hostLocal(d, '10.180.0.0/16') }) },
  { label: 'podwire-bridge + podwire-ipam', plugin: PODWIRE, caCerts: false, conf: (d) => ({ ...common, name: 'bpw', type: 'podwire-bridge', ipam: { ...hostLocal(d, '10.181.0.0/16'), type: 'podwire-ipam' } }) },
  { label: 'podwire-bridge + host-local', plugin: PODWIRE, caCerts: false, conf: (d) => ({ ...common, name: 'bpwh', type: 'podwire-bridge', ipam: hostLocal(d, '10.182.0.0/16') }) },
  { label: 'podwire-bridge + podwire-ipam, NODE_EXTRA_CA_CERTS', plugin: PODWIRE, caCerts: true, conf: (d) => ({ ...common, name: 'bpwc', type: 'podwire-bridge', ipam: { ...hostLocal(d, '10.183.0.0/16'), type: 'podwire-ipam' } }) },
];

async function main(): Promise<void> {
  cleanup();
  const hasCa = !!process.env.NODE_EXTRA_CA_CERTS;
  const bare = nodeStart(false);
  const withCa = hasCa ? nodeStart(true) : NaN;
  const run = flavours.filter((f) => !f.caCerts || hasCa);
  const rows = (await measureAll(run)).map((r, i) => ({ label: run[i]!.label, ...r }));
  const ref = rows[0]!;
  const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  console.log(`podwire CNI benchmark: ${RUNS} ADD+DEL each (fresh pod netns), ${CONCURRENT} concurrent ADDs (median of ${ROUNDS} rounds), flavours interleaved; config isGateway, ipMasq, hairpinMode`);
  console.log(`node -e 0: ${fmt(bare)} median${hasCa ? `; with NODE_EXTRA_CA_CERTS: ${fmt(withCa)}` : ''}`);
  console.log('');
  const head = ['plugin', 'ADD median', 'vs ref', 'DEL median', 'vs ref', `${CONCURRENT} concurrent ADDs`, 'vs ref'];
  const table = [head, ...rows.map((r) => [r.label, fmt(r.add), ratio(r.add, ref.add), fmt(r.del), ratio(r.del, ref.del), fmt(r.wall), ratio(r.wall, ref.wall)])];
  const widths = head.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  for (const row of table) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
}

main().catch((e: unknown) => {
  cleanup();
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
