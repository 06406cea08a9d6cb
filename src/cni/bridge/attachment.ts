// ADD, DEL and CHECK of one pod attachment, read top to bottom like the
// reference's cmdAdd: bridge → veth → IPAM → pod addresses and routes →
// gateway on the bridge and forwarding → masquerade → result. Any failure
// after a step undoes it, so a failed ADD leaves no link, reservation or rule.
// IPAM and masquerade come in as interfaces (in-process podwire-ipam or an
// exec'd plugin; the nf_tables helper), and nodeNetns lets tests run it
// against a node namespace without entering it.
import { closeSync, openSync } from 'node:fs';
import { native } from '../../netlink/native.js';
import { NftConnection } from '../../netlink/nftables/transaction.js';
import { RouteNetlink, type LinkInfo } from '../../netlink/rtnetlink.js';
import type { CniEnv } from '../spec/env.js';
import { CniError, ErrorCode } from '../spec/errors.js';
import type { BridgeConf } from './config.js';
import { familyOf, planGateways } from './gateways.js';
import { attachmentAlias, createVeth, ensureBridge, findHostVethsByAlias } from './links.js';
import { ensureSpoofCheck, removeSpoofCheck } from './macspoof.js';
import { checkAddresses, checkRoutes, configurePodInterface, ensureGatewayAddress } from './pod-iface.js';
import type { BridgeResult, Interface } from './result.js';
import { ensureSysctl } from './sysctl.js';

export interface IpamBackend {
  add(env: CniEnv): { ips?: BridgeResult['ips']; routes?: BridgeResult['routes']; dns?: BridgeResult['dns'] };
  del(env: CniEnv): void;
  check(env: CniEnv): void;
}

export interface MasqueradeBackend {
  ensure(opts: { network: string; containerId: string; ifname: string; ips: string[]; netnsPath?: string }): void;
  remove(opts: { network: string; containerId: string; ifname: string; ips?: string[]; netnsPath?: string; conn?: NftConnection }): void;
}

export interface AttachmentDeps {
  ipam: IpamBackend | undefined;
  masquerade: MasqueradeBackend | undefined;
  /** The node's namespace; undefined means the caller's (how a runtime runs the plugin). */
  nodeNetns?: string;
}

/** Opens the pod's namespace, or fails with the spec's code for a bad CNI_NETNS. */
function openPodNetns(path: string): number {
  if (!path) throw new CniError(ErrorCode.InvalidEnv, 'CNI_NETNS is empty; ADD and CHECK need the pod network namespace');
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new CniError(ErrorCode.InvalidNetns, `failed to open netns ${JSON.stringify(path)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!native().isNetns(path)) {
    closeSync(fd);
    throw new CniError(ErrorCode.InvalidNetns, `${JSON.stringify(path)} is not a network namespace`);
  }
  return fd;
}

/** Whether path is a live network namespace; a missing or unmounted one is simply gone. */
function netnsExists(path: string): boolean {
  try {
    return native().isNetns(path);
  } catch {
    return false;
  }
}

/** PODWIRE_CNI_TIMING=1 prints each ADD/DEL step's milliseconds to stderr (stdout stays the result). */
const timing = process.env.PODWIRE_CNI_TIMING === '1';
// The performance global costs ~0.7 ms of start-up on first use: only touch it when timing.
let lastMark = timing ? performance.now() : 0;
function mark(step: string): void {
  if (!timing) return;
  const now = performance.now();
  process.stderr.write(`podwire-bridge: ${step} ${(now - lastMark).toFixed(2)} ms (at ${now.toFixed(1)} ms since start)\n`);
  lastMark = now;
}

/** The owner tag of an attachment's nf_tables elements. */
export function spoofOwner(env: { containerId: string; ifname: string }): string {
  return `${env.containerId}/${env.ifname}`;
}

function forwardingKey(family: 4 | 6): string {
  return family === 4 ? 'net/ipv4/ip_forward' : 'net/ipv6/conf/all/forwarding';
}

export function addAttachment(conf: BridgeConf, env: CniEnv, deps: AttachmentDeps): BridgeResult {
  if (conf.ipMasq && conf.ipamType && !deps.masquerade) {
    throw new CniError(ErrorCode.UnsupportedField, 'ipMasq: the nf_tables masquerade helper is not available in this build');
  }
  const podFd = openPodNetns(env.netns);
  const nodeRt = RouteNetlink.open(deps.nodeNetns);
  let podRt: RouteNetlink | undefined;
  const undo: Array<() => void> = [];
  try {
    podRt = RouteNetlink.open(env.netns);
    mark('open netns + sockets');
    const br = ensureBridge(nodeRt, conf, deps.nodeNetns);
    mark('bridge');
    const veth = createVeth(nodeRt, podRt, podFd, br, {
      ifname: env.ifname,
      mtu: conf.mtu,
      mac: conf.mac,
      hairpin: conf.hairpinMode,
      isolated: conf.portIsolation,
      alias: attachmentAlias(env.containerId, env.ifname),
    }, deps.nodeNetns);
    mark('veth');
    const hostIndex = veth.host.index;
    undo.push(() => nodeRt.deleteLink(hostIndex));
    if (conf.macspoofchk) {
      const spoof = { owner: spoofOwner(env), ...(deps.nodeNetns ? { netnsPath: deps.nodeNetns } : {}) };
      ensureSpoofCheck({ ...spoof, hostIndex, podMac: veth.pod.mac });
      undo.push(() => removeSpoofCheck(spoof));
      mark('macspoofchk');
    }

    const podIface: Interface = { name: veth.pod.name, mac: veth.pod.mac, sandbox: env.netns };
    const result: BridgeResult = {
      cniVersion: '1.1.0',
      interfaces: [{ name: br.name, mac: br.mac }, { name: veth.host.name, mac: veth.host.mac }, podIface],
    };

    if (conf.ipamType) {
      if (!deps.ipam) throw new CniError(ErrorCode.InvalidNetworkConfig, `no IPAM available for ipam.type ${conf.ipamType}`);
      const ipam = deps.ipam;
      const got = ipam.add(env);
      mark('ipam');
      undo.push(() => ipam.del(env));
      if (!got.ips || got.ips.length === 0) throw new CniError(ErrorCode.Internal, `IPAM plugin ${conf.ipamType} returned missing IP config`);
      const plan = planGateways({ ips: got.ips, routes: got.routes ?? [] }, conf, 2);
      result.ips = plan.ips;
      result.routes = plan.routes;
      if (got.dns) result.dns = got.dns;

      configurePodInterface(podRt, veth.pod, plan.ips, plan.routes, { enabledad: conf.enabledad, podNetnsPath: env.netns });
      mark('pod addresses + routes');

      if (conf.isGateway) {
        for (const family of [4, 6] as const) {
          const addrs = plan.bridgeAddrs[family];
          for (const cidr of addrs) ensureGatewayAddress(nodeRt, br, cidr, conf.forceAddress, !conf.enabledad);
          if (addrs.length > 0 && !ensureSysctl(forwardingKey(family), '1', deps.nodeNetns)) {
            throw new CniError(ErrorCode.Internal, `failed to enable forwarding: ${forwardingKey(family)} does not exist on this node`);
          }
        }
      }

      mark('gateway + forwarding');
      if (conf.ipMasq && deps.masquerade) {
        const masq = deps.masquerade;
        const opts = { network: conf.name, containerId: env.containerId, ifname: env.ifname, ips: plan.ips.map((i) => i.address) };
        undo.push(() => masq.remove(opts));
        masq.ensure(deps.nodeNetns ? { ...opts, netnsPath: deps.nodeNetns } : opts);
      }
    } else if (!conf.disableContainerInterface) {
      podRt.setUp(veth.pod.index);
    }

    // The bridge's MAC may change when its first port joins or its address is set.
    mark('masquerade');
    const brNow = nodeRt.getLinkByIndex(br.index);
    if (brNow) result.interfaces![0]!.mac = brNow.mac;
    const hostNow = nodeRt.getLinkByIndex(hostIndex);
    if (hostNow) result.interfaces![1]!.mac = hostNow.mac;
    if (conf.dns) result.dns = conf.dns as BridgeResult['dns'];
    undo.length = 0;
    mark('result');
    return result;
  } catch (e) {
    for (const step of undo.reverse()) {
      try {
        step();
      } catch (cleanupErr) {
        process.stderr.write(`podwire-bridge: cleanup after failed ADD: ${cleanupErr instanceof Error ? cleanupErr.message : String(cleanupErr)}\n`);
      }
    }
    throw e;
  } finally {
    podRt?.close();
    nodeRt.close();
    closeSync(podFd);
  }
}

/**
 * DEL succeeds when things are already gone. With the pod's namespace: delete
 * its interface (the pair goes with it). Without it (CNI_NETNS empty or the
 * namespace gone): find the host end by its alias. Then release IPAM. The
 * nf_tables entries (masquerade, macspoofchk) are removed first, on one
 * connection closed last: closing right after a deletion waits ~10 ms for the
 * kernel's RCU clean-up, which the veth's deletion (~20 ms) covers instead.
 * An nf_tables failure is reported after the veth and IPAM are cleaned up.
 */
export function delAttachment(conf: BridgeConf, env: CniEnv, deps: AttachmentDeps): void {
  const nodeRt = RouteNetlink.open(deps.nodeNetns);
  let nft: NftConnection | undefined;
  mark('open node socket');
  try {
    let nftError: unknown;
    if (conf.macspoofchk || deps.masquerade) {
      try {
        nft = NftConnection.open(deps.nodeNetns);
        if (conf.macspoofchk) removeSpoofCheck({ owner: spoofOwner(env), conn: nft });
        if (deps.masquerade) {
          try {
            deps.masquerade.remove({ network: conf.name, containerId: env.containerId, ifname: env.ifname, conn: nft, ...(deps.nodeNetns ? { netnsPath: deps.nodeNetns } : {}) });
          } catch (e) {
            // Without ipMasq there may be no podwire table at all; only a configured masquerade must be removed.
            if (conf.ipMasq) throw e;
          }
        }
      } catch (e) {
        nftError = e;
      }
      mark('nf_tables entries');
    }
    let deleted = false;
    if (env.netns && netnsExists(env.netns)) {
      const podRt = RouteNetlink.open(env.netns);
      try {
        const link = podRt.getLink(env.ifname);
        if (link && link.kind === 'veth') deleted = podRt.deleteLink(link.index) || deleted;
      } finally {
        podRt.close();
      }
    }
    if (!deleted) {
      for (const index of findHostVethsByAlias(nodeRt, attachmentAlias(env.containerId, env.ifname))) nodeRt.deleteLink(index);
    }
    mark('veth');
    if (conf.ipamType && deps.ipam) deps.ipam.del(env);
    mark('ipam');
    if (nftError !== undefined) throw nftError;
  } finally {
    nft?.close();
    nodeRt.close();
    mark('close');
  }
}

function findIface(list: Interface[] | undefined, pred: (i: Interface) => boolean): Interface | undefined {
  return list?.find(pred);
}

/** CHECK against prevResult: bridge, pod interface, its host peer on the bridge, addresses and routes. */
export function checkAttachment(conf: BridgeConf, env: CniEnv, prev: BridgeResult | undefined, deps: AttachmentDeps): void {
  if (conf.ipamType && deps.ipam) deps.ipam.check(env);
  if (!prev) throw new CniError(ErrorCode.InvalidNetworkConfig, 'CHECK needs prevResult, and the network config has none');
  const brWant = findIface(prev.interfaces, (i) => i.name === conf.bridge && !i.sandbox);
  if (!brWant) throw new CniError(ErrorCode.Internal, `prevResult lists no bridge interface named ${conf.bridge}`);
  const podWant = findIface(prev.interfaces, (i) => i.name === env.ifname && i.sandbox === env.netns);
  if (!podWant) throw new CniError(ErrorCode.Internal, `prevResult lists no interface ${env.ifname} in sandbox ${env.netns}`);
  const podFd = openPodNetns(env.netns);
  closeSync(podFd);
  const nodeRt = RouteNetlink.open(deps.nodeNetns);
  const podRt = RouteNetlink.open(env.netns);
  try {
    const br = nodeRt.getLink(conf.bridge);
    if (!br) throw new CniError(ErrorCode.Internal, `bridge ${conf.bridge} created by CNI was not found on the node`);
    if (br.kind !== 'bridge') throw new CniError(ErrorCode.Internal, `interface ${conf.bridge} is not a bridge`);
    if (brWant.mac && brWant.mac !== br.mac) throw new CniError(ErrorCode.Internal, `bridge ${conf.bridge} MAC is ${br.mac}, prevResult says ${brWant.mac}`);
    if (br.promisc !== conf.promiscMode) {
      throw new CniError(ErrorCode.Internal, `bridge ${conf.bridge} promiscuous mode is ${br.promisc ? 'on' : 'off'}, the config wants ${conf.promiscMode ? 'on' : 'off'}`);
    }
    const pod = podRt.getLink(env.ifname);
    if (!pod) throw new CniError(ErrorCode.Internal, `interface ${env.ifname} created by CNI was not found in ${env.netns}`);
    if (pod.kind !== 'veth') throw new CniError(ErrorCode.Internal, `interface ${env.ifname} in the pod is not a veth`);
    if (podWant.mac && podWant.mac !== pod.mac) throw new CniError(ErrorCode.Internal, `interface ${env.ifname} MAC is ${pod.mac}, prevResult says ${podWant.mac}`);
    const host = findHostPeer(nodeRt, prev.interfaces ?? [], pod, br);
    if (!host) throw new CniError(ErrorCode.Internal, `the veth peer of ${env.ifname} on bridge ${conf.bridge} was not found`);
    const ips = (prev.ips ?? []).filter((i) => i.interface === undefined || prev.interfaces?.[i.interface] === podWant);
    checkAddresses(podRt, pod, ips);
    checkRoutes(podRt, prev.routes ?? []);
  } finally {
    podRt.close();
    nodeRt.close();
  }
}

function findHostPeer(nodeRt: RouteNetlink, listed: Interface[], pod: LinkInfo, br: LinkInfo): LinkInfo | undefined {
  for (const i of listed) {
    if (i.sandbox || i.name === br.name) continue;
    const l = nodeRt.getLink(i.name);
    if (!l || l.kind !== 'veth') continue;
    if (l.index === pod.linkIndex && l.masterIndex === br.index && (!i.mac || i.mac === l.mac)) return l;
  }
  return undefined;
}
