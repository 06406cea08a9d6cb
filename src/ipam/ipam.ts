// podwire's IPAM, in-process: what podwire-bridge calls and what the podwire-ipam executable runs.
import type { CniEnv } from '../cni/spec/env.js';
import { CniError, ErrorCode } from '../cni/spec/errors.js';
import type { Attachment } from '../cni/spec/gc.js';
import { parseIP } from '../cni/spec/ip.js';
import type { Result } from '../cni/spec/result.js';
import { allocateAll, releaseAll } from './allocator.js';
import { type IpRange, parseIpamConfig, rangeContains, rangeSetText, rangeSize, storeLocation } from './config.js';
import { withStore } from './disk.js';
import { readResolvConf } from './resolv.js';
import { reservationsOf } from './store.js';

export { type IpamConfig, parseIpamConfig } from './config.js';

type NetConfJson = Record<string, unknown>;

function versionOf(netConf: NetConfJson): string {
  return typeof netConf.cniVersion === 'string' && netConf.cniVersion !== '' ? netConf.cniVersion : '0.1.0';
}

/** Allocates one address per range set (dual-stack: two) for (containerId, ifname). */
export function ipamAdd(netConf: NetConfJson, env: CniEnv): Result {
  const cfg = parseIpamConfig(netConf, env);
  const dns = cfg.resolvConf ? readResolvConf(cfg.resolvConf) : undefined;
  const ips = withStore(cfg.dataDir, cfg.name, (s) => allocateAll(s, cfg.rangeSets, env.containerId, env.ifname, cfg.requested));
  const result: Result = { cniVersion: versionOf(netConf), ips };
  if (cfg.routes.length > 0) result.routes = cfg.routes;
  if (dns) result.dns = dns;
  return result;
}

/** Frees everything (containerId, ifname) holds; succeeds when there is nothing. */
export function ipamDel(netConf: NetConfJson, env: CniEnv): void {
  const { dataDir, name } = storeLocation(netConf);
  withStore(dataDir, name, (s) => releaseAll(s, env.containerId, env.ifname));
}

/** CniError when (containerId, ifname) holds no address in this network. */
export function ipamCheck(netConf: NetConfJson, env: CniEnv): void {
  const cfg = parseIpamConfig(netConf, env);
  const held = withStore(cfg.dataDir, cfg.name, (s) => reservationsOf(s, env.containerId, env.ifname));
  if (held.length === 0) {
    throw new CniError(ErrorCode.Internal, `podwire-ipam: no address is reserved for container ${env.containerId} interface ${env.ifname} in network ${cfg.name}`);
  }
  for (const set of cfg.rangeSets) {
    if (!held.some((r) => { const ip = parseIP(r.ip); return ip !== null && set.some((x) => rangeContains(x, ip)); })) {
      throw new CniError(ErrorCode.Internal, `podwire-ipam: container ${env.containerId} interface ${env.ifname} holds no address in range set ${rangeSetText(set)}`);
    }
  }
}

/** Frees every reservation not in the valid list (podwire's and host-local's files alike). */
export function ipamGc(netConf: NetConfJson, validAttachments: Attachment[]): string[] {
  const { dataDir, name } = storeLocation(netConf);
  const keep = new Set(validAttachments.map((a) => `${a.containerID}\n${a.ifname}`));
  const keepIds = new Set(validAttachments.map((a) => a.containerID));
  return withStore(dataDir, name, (s) => {
    const freed: string[] = [];
    for (const r of s.all()) {
      // Old-format files carry no ifname: the container ID alone decides.
      const valid = r.ifname === '' ? keepIds.has(r.containerID) : keep.has(`${r.containerID}\n${r.ifname}`);
      if (!valid) {
        s.release(r.ip);
        freed.push(r.ip);
      }
    }
    return freed;
  });
}

/** STATUS (spec 1.1.0): CniError 50 when the store is unusable or a range set has no free address. */
export function ipamStatus(netConf: NetConfJson): void {
  const env: CniEnv = { command: 'STATUS', containerId: '', netns: '', ifname: '', args: {}, path: [] };
  const cfg = parseIpamConfig(netConf, env);
  let reserved: bigint[];
  try {
    reserved = withStore(cfg.dataDir, cfg.name, (s) => s.all().flatMap((r) => { const ip = parseIP(r.ip); return ip ? [ip.value] : []; }));
  } catch (err) {
    throw new CniError(ErrorCode.PluginNotAvailable, `podwire-ipam: the store of network ${cfg.name} is unusable`, (err as Error).message);
  }
  cfg.rangeSets.forEach((set, i) => {
    const fam = (set[0] as IpRange).start.family;
    const size = set.reduce((n, r) => n + rangeSize(r), 0n);
    const used = reserved.filter((v) => set.some((r) => rangeContains(r, { family: fam, value: v }) && v !== r.gateway.value)).length;
    if (BigInt(used) >= size) {
      throw new CniError(ErrorCode.PluginNotAvailable, `podwire-ipam: no IP addresses available in range set ${i}: ${rangeSetText(set)}`);
    }
  });
}

/** Who holds what in this network (for DEL/GC callers that lost the netns). */
export function ipamReservations(netConf: NetConfJson): Array<{ ip: string; containerID: string; ifname: string }> {
  const { dataDir, name } = storeLocation(netConf);
  return withStore(dataDir, name, (s) => s.all());
}
