// `podwire proxy`: kube-proxy's flags and defaults, plus --manifests DIR.
import { Command, Option } from 'commander';
import { hostname } from 'node:os';
import { defaultSettings, loadConfigFile, type ProxySettings } from '../config/kube-proxy-config.js';
import { parseDuration } from '../config/duration.js';
// Go's address rules (no zones), which the nftables values these CIDRs become require.
import { isIP } from '../netlink/ip.js';
import { createBackend } from '../proxy/backends.js';
import { createNftablesBackend } from '../proxy/nftables/index.js';
import { RecordingTransport, type TransportKind } from '../proxy/nftables/transport.js';
import { Proxier } from '../proxy/core/proxier.js';
import { ProxyHealth } from '../proxy/health/proxy-health.js';
import { ServiceHealthServers, startHealthzServer, startMetricsServer } from '../proxy/health/servers.js';
import type { IPFamily, ProxyBackend, ProxyConfig } from '../proxy/model.js';
import { ManifestsSource } from '../sources/manifests/index.js';
import { createKubernetesSource } from '../sources/kubernetes/index.js';
import type { ConfigSource } from '../sources/source.js';
import { createLogger } from './log.js';

interface Flags {
  proxyMode?: string;
  hostnameOverride?: string;
  clusterCidr?: string;
  nodeportAddresses?: string;
  masqueradeAll?: boolean;
  healthzBindAddress?: string;
  metricsBindAddress?: string;
  config?: string;
  iptablesSyncPeriod?: string;
  iptablesMinSyncPeriod?: string;
  iptablesMasqueradeBit?: string;
  iptablesLocalhostNodeports?: boolean;
  ipvsScheduler?: string;
  ipvsSyncPeriod?: string;
  ipvsMinSyncPeriod?: string;
  ipvsStrictArp?: boolean;
  ipvsExcludeCidrs?: string;
  ipvsTcpTimeout?: string;
  ipvsTcpfinTimeout?: string;
  ipvsUdpTimeout?: string;
  udpTimeout?: string;
  kubeconfig?: string;
  master?: string;
  cleanup?: boolean;
  manifests?: string;
  dryRun?: boolean;
  nftablesTransport?: string;
  v?: string;
}

const csv = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);

/** Settings from defaults, then --config, then the flags given on the command line. */
export function resolveSettings(flags: Flags, given: (name: keyof Flags) => boolean): ProxySettings {
  let s = defaultSettings();
  if (flags.config) s = loadConfigFile(flags.config, s);
  const set = <K extends keyof Flags>(k: K, apply: (v: NonNullable<Flags[K]>) => void) => {
    const v = flags[k];
    if (given(k) && v !== undefined) apply(v as NonNullable<Flags[K]>);
  };
  set('proxyMode', (v) => (s.mode = v));
  set('hostnameOverride', (v) => (s.hostnameOverride = v));
  set('clusterCidr', (v) => (s.clusterCIDR = v));
  set('nodeportAddresses', (v) => (s.nodePortAddresses = csv(v)));
  set('masqueradeAll', (v) => (s.masqueradeAll = v));
  set('healthzBindAddress', (v) => (s.healthzBindAddress = v));
  set('metricsBindAddress', (v) => (s.metricsBindAddress = v));
  set('iptablesSyncPeriod', (v) => (s.syncPeriodMs = parseDuration(v)));
  set('iptablesMinSyncPeriod', (v) => (s.minSyncPeriodMs = parseDuration(v)));
  set('iptablesMasqueradeBit', (v) => (s.masqueradeBit = Number(v)));
  set('iptablesLocalhostNodeports', (v) => (s.localhostNodePorts = v));
  set('ipvsScheduler', (v) => (s.ipvs.scheduler = v));
  set('ipvsSyncPeriod', (v) => (s.ipvs.syncPeriodMs = parseDuration(v)));
  set('ipvsMinSyncPeriod', (v) => (s.ipvs.minSyncPeriodMs = parseDuration(v)));
  set('ipvsStrictArp', (v) => (s.ipvs.strictARP = v));
  set('ipvsExcludeCidrs', (v) => (s.ipvs.excludeCIDRs = csv(v)));
  set('ipvsTcpTimeout', (v) => (s.ipvs.tcpTimeoutMs = parseDuration(v)));
  set('ipvsTcpfinTimeout', (v) => (s.ipvs.tcpFinTimeoutMs = parseDuration(v)));
  set('ipvsUdpTimeout', (v) => (s.ipvs.udpTimeoutMs = parseDuration(v)));
  set('udpTimeout', (v) => (s.udpIdleTimeoutMs = parseDuration(v)));
  set('kubeconfig', (v) => (s.kubeconfig = v));
  set('master', (v) => (s.master = v));
  if (!(s.udpIdleTimeoutMs > 0)) throw new Error(`--udp-timeout must be greater than 0`);
  if (!Number.isInteger(s.masqueradeBit) || s.masqueradeBit < 0 || s.masqueradeBit > 31) throw new Error(`--iptables-masquerade-bit ${s.masqueradeBit} is not in 0-31`);
  for (const c of [...csv(s.clusterCIDR), ...s.nodePortAddresses.filter((a) => a !== 'primary')]) {
    const [ip, len] = c.split('/');
    if (!ip || !isIP(ip) || len === undefined || !/^\d+$/.test(len)) throw new Error(`"${c}" is not a CIDR`);
  }
  return s;
}

/** Per-family backend settings. IPv6 runs when a cluster CIDR or node-port CIDR is IPv6. */
export function familyConfigs(s: ProxySettings): ProxyConfig[] {
  const cidrs = csv(s.clusterCIDR);
  const fam = (c: string) => isIP(c.split('/')[0]!) as IPFamily;
  const families: IPFamily[] = [4];
  if (cidrs.some((c) => fam(c) === 6) || s.nodePortAddresses.some((c) => c !== 'primary' && fam(c) === 6)) families.push(6);
  return families.map((family) => ({
    family,
    clusterCIDRs: cidrs.filter((c) => fam(c) === family),
    masqueradeAll: s.masqueradeAll,
    masqueradeBit: s.masqueradeBit,
    nodePortAddresses: s.nodePortAddresses.filter((c) => c !== 'primary' && fam(c) === family),
    localhostNodePorts: s.localhostNodePorts && family === 4,
  }));
}

async function runProxy(flags: Flags, cmd: Command): Promise<void> {
  const given = (k: keyof Flags) => cmd.getOptionValueSource(k) === 'cli';
  const verbosity = Number(flags.v ?? '0');
  const log = createLogger(verbosity);
  let s: ProxySettings;
  try {
    s = resolveSettings(flags, given);
  } catch (e) {
    log.error({}, (e as Error).message);
    process.exit(1);
  }
  const transport = flags.nftablesTransport ?? 'netlink';
  if (transport !== 'netlink' && transport !== 'nft') {
    log.error({}, `--nftables-transport ${transport}: choose netlink or nft`);
    process.exit(1);
  }
  if (flags.dryRun && (s.mode !== 'nftables' || flags.cleanup)) {
    log.error({}, `--dry-run prints the nftables script of the first full sync: it needs --proxy-mode=nftables${flags.cleanup ? ' and no --cleanup' : ''}`);
    process.exit(1);
  }
  // --dry-run: the nftables backends record their transactions as nft text and touch nothing.
  const recorders = new Map<IPFamily, RecordingTransport>();
  const backends = new Map<IPFamily, ProxyBackend>();
  for (const c of familyConfigs(s)) {
    if (s.mode !== 'nftables') {
      backends.set(c.family, createBackend(s.mode, c, s, log));
      continue;
    }
    const rec = flags.dryRun ? new RecordingTransport() : undefined;
    if (rec) recorders.set(c.family, rec);
    backends.set(c.family, createNftablesBackend(c, { transport: rec ?? (transport as TransportKind) }));
  }

  if (flags.cleanup) {
    let failed = false;
    for (const b of backends.values()) {
      try {
        await b.cleanup();
      } catch (e) {
        failed = true;
        log.error({ family: b.family, err: String(e) }, 'cleanup failed');
      }
    }
    log.info({ mode: s.mode }, 'cleaned up');
    process.exit(failed ? 1 : 0);
  }

  const nodeName = (s.hostnameOverride || hostname()).toLowerCase();
  if (flags.dryRun) {
    await dryRun(makeSource(flags, s, nodeName, log), nodeName, backends, recorders, log);
    return;
  }
  const health = new ProxyHealth(2 * s.syncPeriodMs);
  const serviceHealth = new ServiceHealthServers(health, (port, err) => log.warn({ port, err: String(err) }, 'health-check node port unavailable'));
  const ipvsMode = s.mode === 'ipvs';
  const proxier = new Proxier({
    nodeName,
    backends,
    minSyncPeriodMs: ipvsMode ? s.ipvs.minSyncPeriodMs : s.minSyncPeriodMs,
    syncPeriodMs: ipvsMode ? s.ipvs.syncPeriodMs : s.syncPeriodMs,
    log,
    health,
    serviceHealth,
    // Userspace mode makes no NAT entries: nothing stale to clear, and the node may have no conntrack tool.
    ...(s.mode === 'userspace' ? { conntrack: null } : {}),
  });

  const source = makeSource(flags, s, nodeName, log);

  try {
    if (s.healthzBindAddress) await startHealthzServer(s.healthzBindAddress, health, () => true);
    if (s.metricsBindAddress) await startMetricsServer(s.metricsBindAddress, s.mode);
  } catch (e) {
    log.error({ err: String(e) }, 'cannot listen for healthz/metrics');
    process.exit(1);
  }
  const stop = (signal: string) => {
    // Rules stay in place: traffic keeps flowing while the proxy restarts.
    // Userspace mode: the daemon is the proxy, so proxied traffic stops; its addresses stay (clients are refused, not hung).
    log.info({ signal }, s.mode === 'userspace' ? 'exiting; userspace proxying stops, service addresses left in place' : 'exiting; rules left in place');
    proxier.stop();
    serviceHealth.close();
    void source.stop().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log.info({ mode: s.mode, node: nodeName, families: [...backends.keys()], source: flags.manifests ? `manifests ${flags.manifests}` : 'kubernetes' }, 'starting podwire proxy');
  await source.start(proxier);
}

/** The manifests directory when given, else the Kubernetes API; exits when neither is usable. */
function makeSource(flags: Flags, s: ProxySettings, nodeName: string, log: ReturnType<typeof createLogger>): ConfigSource {
  let source: ConfigSource;
  if (flags.manifests) {
    source = new ManifestsSource(flags.manifests, nodeName, log);
  } else {
    const kl = {
      info: (msg: string, extra?: object) => log.info(extra ?? {}, msg),
      warn: (msg: string, extra?: object) => log.warn(extra ?? {}, msg),
      error: (msg: string, extra?: object) => log.error(extra ?? {}, msg),
      debug: (msg: string, extra?: object) => log.debug(extra ?? {}, msg),
    };
    try {
      source = createKubernetesSource({ kubeconfig: s.kubeconfig || undefined, master: s.master || undefined, nodeName, log: kl });
    } catch (e) {
      log.error({}, `no configuration source: ${(e as Error).message} (give --manifests DIR, --kubeconfig or --master, or run in a pod)`);
      process.exit(1);
    }
  }
  return source;
}

/**
 * --dry-run: the first full sync of the source's initial state, printed as
 * `nft -f` text on stdout (one script per IP family); no netlink socket, no
 * nft, no conntrack, no listening socket.
 */
async function dryRun(source: ConfigSource, nodeName: string, backends: Map<IPFamily, ProxyBackend>, recorders: Map<IPFamily, RecordingTransport>, log: ReturnType<typeof createLogger>): Promise<void> {
  const proxier = new Proxier({ nodeName, backends, minSyncPeriodMs: 0, syncPeriodMs: 3_600_000, log, conntrack: null });
  const synced = proxier.nextSync();
  await source.start(proxier);
  await synced;
  proxier.stop();
  await source.stop();
  const scripts = [...recorders.entries()].map(([family, r]) => ({ family, text: r.text() }));
  const missing = scripts.filter((x) => x.text.length === 0).map((x) => `IPv${x.family}`);
  if (missing.length > 0) {
    log.error({ families: missing }, 'dry run: the first sync failed; nothing to print');
    process.exit(1);
  }
  for (const { text } of scripts) process.stdout.write(text.join(''));
  process.exit(0);
}

export function proxyCommand(): Command {
  const cmd = new Command('proxy').description('the service proxy (kube-proxy compatible)');
  cmd
    .addOption(new Option('--proxy-mode <mode>', 'which proxy mode to use: iptables, nftables, ipvs or userspace (the daemon forwards itself; no netfilter needed)').default('iptables'))
    .option('--hostname-override <name>', "the node's name, if not the host name")
    .option('--cluster-cidr <cidrs>', 'the pod CIDR(s) of the cluster; traffic to services from outside them is masqueraded')
    .option('--nodeport-addresses <cidrs>', 'the addresses node ports accept on (CIDRs or "primary"); default: all local addresses')
    .option('--masquerade-all', 'SNAT all traffic sent via service cluster IPs')
    .addOption(new Option('--healthz-bind-address <addr>', 'host:port for /healthz and /livez').default('0.0.0.0:10256'))
    .addOption(new Option('--metrics-bind-address <addr>', 'host:port for /metrics').default('127.0.0.1:10249'))
    .option('--config <file>', 'a KubeProxyConfiguration file; flags given on the command line override it')
    .addOption(new Option('--iptables-sync-period <duration>', 'the longest time between full syncs').default('30s'))
    .addOption(new Option('--iptables-min-sync-period <duration>', 'the shortest time between syncs').default('1s'))
    .addOption(new Option('--iptables-masquerade-bit <bit>', 'the fwmark bit that marks packets for SNAT').default('14'))
    .addOption(new Option('--iptables-localhost-nodeports', 'accept node ports on 127.0.0.1 (needs route_localnet)').default(true))
    .option('--no-iptables-localhost-nodeports', 'do not accept node ports on 127.0.0.1')
    .addOption(new Option('--ipvs-scheduler <name>', 'the IPVS scheduler (rr, wrr, lc, wlc, sh, dh, mh…)').default('rr'))
    .addOption(new Option('--ipvs-sync-period <duration>', 'the longest time between IPVS syncs').default('30s'))
    .addOption(new Option('--ipvs-min-sync-period <duration>', 'the shortest time between IPVS syncs').default('0s'))
    .option('--ipvs-strict-arp', 'set arp_ignore and arp_announce for IPVS')
    .option('--ipvs-exclude-cidrs <cidrs>', 'CIDRs whose IPVS services the proxy never touches')
    .option('--ipvs-tcp-timeout <duration>', 'timeout for idle IPVS TCP connections')
    .option('--ipvs-tcpfin-timeout <duration>', 'timeout for IPVS TCP connections after FIN')
    .option('--ipvs-udp-timeout <duration>', 'timeout for IPVS UDP packets')
    .addOption(new Option('--udp-timeout <duration>', 'userspace mode: how long an idle UDP session is kept').default('250ms'))
    .option('--kubeconfig <file>', 'kubeconfig with the API server and credentials')
    .option('--master <url>', 'the API server address (overrides the kubeconfig)')
    .option('--cleanup', 'remove everything podwire programmed, then exit')
    .option('--manifests <dir>', 'read Services, EndpointSlices and Nodes from this directory instead of an API server')
    .option('--dry-run', 'with --proxy-mode=nftables: print the first full sync as nft -f text and exit, touching nothing')
    .addOption(new Option('--nftables-transport <kind>', 'how nftables mode programs the kernel: netlink (one batch) or nft (nft -f text)').default('netlink'))
    .option('-v, --v <level>', 'log verbosity', '0')
    .action((flags: Flags, c: Command) => runProxy(flags, c));
  return cmd;
}
