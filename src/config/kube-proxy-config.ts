// KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1): the fields
// podwire honours, read from --config. Flags given on the command line win.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseDuration } from './duration.js';

export interface ProxySettings {
  mode: string;
  hostnameOverride: string;
  clusterCIDR: string;
  nodePortAddresses: string[];
  masqueradeAll: boolean;
  masqueradeBit: number;
  localhostNodePorts: boolean;
  healthzBindAddress: string;
  metricsBindAddress: string;
  syncPeriodMs: number;
  minSyncPeriodMs: number;
  kubeconfig: string;
  master: string;
  /** Userspace mode: how long an idle UDP session is kept (kube-proxy's --udp-timeout / udpIdleTimeout). */
  udpIdleTimeoutMs: number;
  ipvs: {
    scheduler: string;
    syncPeriodMs: number;
    minSyncPeriodMs: number;
    strictARP: boolean;
    excludeCIDRs: string[];
    tcpTimeoutMs: number;
    tcpFinTimeoutMs: number;
    udpTimeoutMs: number;
  };
}

/** kube-proxy's defaults. */
export function defaultSettings(): ProxySettings {
  return {
    mode: 'iptables',
    hostnameOverride: '',
    clusterCIDR: '',
    nodePortAddresses: [],
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: true,
    healthzBindAddress: '0.0.0.0:10256',
    metricsBindAddress: '127.0.0.1:10249',
    syncPeriodMs: 30_000,
    minSyncPeriodMs: 1_000,
    kubeconfig: '',
    master: '',
    udpIdleTimeoutMs: 250,
    ipvs: { scheduler: 'rr', syncPeriodMs: 30_000, minSyncPeriodMs: 0, strictARP: false, excludeCIDRs: [], tcpTimeoutMs: 0, tcpFinTimeoutMs: 0, udpTimeoutMs: 0 },
  };
}

type Obj = Record<string, unknown>;

function obj(v: unknown, where: string): Obj {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where} must be a mapping`);
  return v as Obj;
}

function str(o: Obj, k: string, where: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`${where}.${k} must be a string`);
  return v;
}

function bool(o: Obj, k: string, where: string): boolean | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new Error(`${where}.${k} must be true or false`);
  return v;
}

function num(o: Obj, k: string, where: string): number | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${where}.${k} must be an integer`);
  return v;
}

function dur(o: Obj, k: string, where: string): number | undefined {
  const s = str(o, k, where);
  return s === undefined ? undefined : parseDuration(s);
}

function list(o: Obj, k: string, where: string): string[] | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${where}.${k} must be a list of strings`);
  return v as string[];
}

/** Applies a KubeProxyConfiguration document onto settings. */
export function applyConfigText(text: string, file: string, s: ProxySettings): ProxySettings {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const c = obj(doc, file);
  if (c.kind !== undefined && c.kind !== 'KubeProxyConfiguration') throw new Error(`${file}: kind is ${String(c.kind)}, want KubeProxyConfiguration`);
  if (c.apiVersion !== undefined && c.apiVersion !== 'kubeproxy.config.k8s.io/v1alpha1') {
    throw new Error(`${file}: apiVersion ${String(c.apiVersion)} is not kubeproxy.config.k8s.io/v1alpha1`);
  }
  const out: ProxySettings = { ...s, ipvs: { ...s.ipvs } };
  const w = file;
  out.mode = str(c, 'mode', w) || out.mode;
  out.hostnameOverride = str(c, 'hostnameOverride', w) ?? out.hostnameOverride;
  out.clusterCIDR = str(c, 'clusterCIDR', w) ?? out.clusterCIDR;
  out.nodePortAddresses = list(c, 'nodePortAddresses', w) ?? out.nodePortAddresses;
  out.healthzBindAddress = str(c, 'healthzBindAddress', w) ?? out.healthzBindAddress;
  out.metricsBindAddress = str(c, 'metricsBindAddress', w) ?? out.metricsBindAddress;
  const cc = obj(c.clientConnection, `${w} clientConnection`);
  out.kubeconfig = str(cc, 'kubeconfig', `${w} clientConnection`) ?? out.kubeconfig;
  out.udpIdleTimeoutMs = dur(c, 'udpIdleTimeout', w) ?? out.udpIdleTimeoutMs;
  const ipt = obj(c.iptables, `${w} iptables`);
  out.masqueradeAll = bool(ipt, 'masqueradeAll', `${w} iptables`) ?? bool(c, 'masqueradeAll', w) ?? out.masqueradeAll;
  out.masqueradeBit = num(ipt, 'masqueradeBit', `${w} iptables`) ?? out.masqueradeBit;
  out.localhostNodePorts = bool(ipt, 'localhostNodePorts', `${w} iptables`) ?? out.localhostNodePorts;
  out.syncPeriodMs = dur(ipt, 'syncPeriod', `${w} iptables`) ?? dur(c, 'syncPeriod', w) ?? out.syncPeriodMs;
  out.minSyncPeriodMs = dur(ipt, 'minSyncPeriod', `${w} iptables`) ?? dur(c, 'minSyncPeriod', w) ?? out.minSyncPeriodMs;
  const nft = obj(c.nftables, `${w} nftables`);
  if (out.mode === 'nftables') {
    out.syncPeriodMs = dur(nft, 'syncPeriod', `${w} nftables`) ?? out.syncPeriodMs;
    out.minSyncPeriodMs = dur(nft, 'minSyncPeriod', `${w} nftables`) ?? out.minSyncPeriodMs;
    out.masqueradeBit = num(nft, 'masqueradeBit', `${w} nftables`) ?? out.masqueradeBit;
    out.masqueradeAll = bool(nft, 'masqueradeAll', `${w} nftables`) ?? out.masqueradeAll;
  }
  const ipvs = obj(c.ipvs, `${w} ipvs`);
  const iw = `${w} ipvs`;
  out.ipvs.scheduler = str(ipvs, 'scheduler', iw) || out.ipvs.scheduler;
  out.ipvs.syncPeriodMs = dur(ipvs, 'syncPeriod', iw) ?? out.ipvs.syncPeriodMs;
  out.ipvs.minSyncPeriodMs = dur(ipvs, 'minSyncPeriod', iw) ?? out.ipvs.minSyncPeriodMs;
  out.ipvs.strictARP = bool(ipvs, 'strictARP', iw) ?? out.ipvs.strictARP;
  out.ipvs.excludeCIDRs = list(ipvs, 'excludeCIDRs', iw) ?? out.ipvs.excludeCIDRs;
  out.ipvs.tcpTimeoutMs = dur(ipvs, 'tcpTimeout', iw) ?? out.ipvs.tcpTimeoutMs;
  out.ipvs.tcpFinTimeoutMs = dur(ipvs, 'tcpFinTimeout', iw) ?? out.ipvs.tcpFinTimeoutMs;
  out.ipvs.udpTimeoutMs = dur(ipvs, 'udpTimeout', iw) ?? out.ipvs.udpTimeoutMs;
  return out;
}

export function loadConfigFile(file: string, s: ProxySettings): ProxySettings {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read --config ${file}: ${(e as Error).message}`);
  }
  return applyConfigText(text, file, s);
}
