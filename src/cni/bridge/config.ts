// The bridge plugin's network configuration: every key the reference
// `bridge` plugin reads, checked up front so that ADD fails before it touches
// the kernel, with errors that name the key and what is wrong with it.
import { CniError, ErrorCode } from '../spec/errors.js';

export type JsonObject = Record<string, unknown>;

export interface VlanTrunkEntry {
  minID?: number;
  maxID?: number;
  id?: number;
}

export interface BridgeConf {
  name: string;
  cniVersion: string;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  /** 'iptables' or 'nftables' as in the reference; podwire masquerades with nf_tables either way. */
  ipMasqBackend: 'iptables' | 'nftables' | undefined;
  /** 0: the kernel's default. */
  mtu: number;
  hairpinMode: boolean;
  promiscMode: boolean;
  vlan: number;
  /** The sorted, distinct VLAN ids of vlanTrunk. */
  vlans: number[];
  preserveDefaultVlan: boolean;
  macspoofchk: boolean;
  enabledad: boolean;
  disableContainerInterface: boolean;
  portIsolation: boolean;
  /** The pod interface's MAC (runtimeConfig.mac > args.cni.mac > CNI_ARGS MAC), lower case. */
  mac: string | undefined;
  /** ipam.type, or undefined for a layer-2 only network. */
  ipamType: string | undefined;
  /** The network config's own dns, which overrides the IPAM's when set. */
  dns: JsonObject | undefined;
}

/** Linux interface names: 1–15 bytes, no '/', no whitespace or ':', not '.' or '..'. */
export function checkIfName(name: string, what: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > 15) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `${what} ${JSON.stringify(name)} is not a valid interface name: it must be 1 to 15 bytes long`);
  }
  if (name === '.' || name === '..' || /[/:\s]/.test(name)) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `${what} ${JSON.stringify(name)} is not a valid interface name: no '/', ':' or whitespace, and not '.' or '..'`);
  }
}

/** Accepts 6-byte MACs written with ':' or '-' (what Go's net.ParseMAC takes for Ethernet); returns lower-case ':' form. */
export function normalizeMac(value: string, source: string): string {
  const m = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(value);
  if (!m) throw new CniError(ErrorCode.InvalidNetworkConfig, `${source} ${JSON.stringify(value)} is not a MAC address (want six hex bytes like 0a:58:0a:f4:00:02)`);
  const bytes = [m[1], m[3], m[4], m[5], m[6], m[7]].map((b) => b!.toLowerCase());
  if (parseInt(bytes[0]!, 16) & 1) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `${source} ${value} is a multicast MAC address; an interface needs a unicast one`);
  }
  return bytes.join(':');
}

function bool(conf: JsonObject, key: string): boolean {
  const v = conf[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new CniError(ErrorCode.InvalidNetworkConfig, `network config key "${key}" must be true or false, not ${JSON.stringify(v)}`);
  return v;
}

function int(conf: JsonObject, key: string, min: number, max: number, what = `network config key "${key}"`): number {
  const v = conf[key];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new CniError(ErrorCode.InvalidNetworkConfig, `${what} must be an integer, not ${JSON.stringify(v)}`);
  if (v < min || v > max) throw new CniError(ErrorCode.InvalidNetworkConfig, `${what} is ${v}; it must be between ${min} and ${max}`);
  return v;
}

function object(v: unknown, what: string): JsonObject | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new CniError(ErrorCode.InvalidNetworkConfig, `${what} must be an object`);
  return v as JsonObject;
}

function optString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new CniError(ErrorCode.InvalidNetworkConfig, `${what} must be a string, not ${JSON.stringify(v)}`);
  return v;
}

/** Expands vlanTrunk entries ({id} or {minID, maxID}) to sorted distinct ids, with the reference's checks. */
export function collectVlanTrunk(v: unknown): number[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new CniError(ErrorCode.InvalidNetworkConfig, 'network config key "vlanTrunk" must be a list of {"id"} or {"minID","maxID"} objects');
  const ids = new Set<number>();
  v.forEach((raw, i) => {
    const entry = object(raw, `vlanTrunk[${i}]`) ?? {};
    const what = (k: string) => `vlanTrunk[${i}].${k}`;
    const has = (k: string) => entry[k] !== undefined && entry[k] !== null;
    if (has('minID') !== has('maxID')) {
      throw new CniError(ErrorCode.InvalidNetworkConfig, `vlanTrunk[${i}]: minID and maxID must be given together (${has('minID') ? 'maxID' : 'minID'} is missing)`);
    }
    if (has('minID')) {
      const min = int(entry, 'minID', 1, 4094, what('minID'));
      const max = int(entry, 'maxID', 1, 4094, what('maxID'));
      if (max < min) throw new CniError(ErrorCode.InvalidNetworkConfig, `vlanTrunk[${i}]: minID ${min} is greater than maxID ${max}`);
      for (let id = min; id <= max; id++) ids.add(id);
    }
    if (has('id')) ids.add(int(entry, 'id', 1, 4094, what('id')));
  });
  return [...ids].sort((a, b) => a - b);
}

/**
 * Parses the bridge plugin's keys from the (already JSON-decoded) network
 * config. `cniArgs` is CNI_ARGS as key/value pairs (for MAC=).
 */
export function parseBridgeConf(conf: JsonObject, cniArgs: Record<string, string>): BridgeConf {
  const name = typeof conf.name === 'string' ? conf.name : '';
  const cniVersion = typeof conf.cniVersion === 'string' ? conf.cniVersion : '0.1.0';
  const bridge = optString(conf.bridge, 'network config key "bridge"') ?? 'cni0';
  checkIfName(bridge, 'bridge name');

  const backendRaw = optString(conf.ipMasqBackend, 'network config key "ipMasqBackend"');
  if (backendRaw !== undefined && backendRaw !== 'iptables' && backendRaw !== 'nftables') {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `unknown ipMasqBackend ${JSON.stringify(backendRaw)} (want "iptables" or "nftables")`);
  }

  const args = object(conf.args, 'network config key "args"');
  const argsCni = object(args?.cni, 'args.cni');
  const runtimeConfig = object(conf.runtimeConfig, 'network config key "runtimeConfig"');

  // Later sources win, as in the reference: CNI_ARGS, then args.cni, then runtimeConfig.
  let mac: string | undefined;
  const envMac = cniArgs.MAC ?? cniArgs.mac;
  if (envMac) mac = normalizeMac(envMac, 'CNI_ARGS MAC');
  const argsMac = optString(argsCni?.mac, 'args.cni.mac');
  if (argsMac) mac = normalizeMac(argsMac, 'args.cni.mac');
  const rtMac = optString(runtimeConfig?.mac, 'runtimeConfig.mac');
  if (rtMac) mac = normalizeMac(rtMac, 'runtimeConfig.mac');

  const ipam = object(conf.ipam, 'network config key "ipam"');
  const ipamType = optString(ipam?.type, 'ipam.type');

  const out: BridgeConf = {
    name,
    cniVersion,
    bridge,
    isGateway: bool(conf, 'isGateway'),
    isDefaultGateway: bool(conf, 'isDefaultGateway'),
    forceAddress: bool(conf, 'forceAddress'),
    ipMasq: bool(conf, 'ipMasq'),
    ipMasqBackend: backendRaw,
    mtu: int(conf, 'mtu', 0, 65535),
    hairpinMode: bool(conf, 'hairpinMode'),
    promiscMode: bool(conf, 'promiscMode'),
    vlan: int(conf, 'vlan', 0, 4094),
    vlans: collectVlanTrunk(conf.vlanTrunk),
    preserveDefaultVlan: bool(conf, 'preserveDefaultVlan'),
    macspoofchk: bool(conf, 'macspoofchk'),
    enabledad: bool(conf, 'enabledad'),
    disableContainerInterface: bool(conf, 'disableContainerInterface'),
    portIsolation: bool(conf, 'portIsolation'),
    mac,
    ipamType,
    dns: dnsSet(object(conf.dns, 'network config key "dns"')),
  };
  if (out.mtu !== 0 && out.mtu < 68) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `network config key "mtu" is ${out.mtu}; Linux needs at least 68 (or 0 for the default)`);
  }
  // A default gateway is a gateway, as in the reference.
  if (out.isDefaultGateway) out.isGateway = true;
  if (out.hairpinMode && out.promiscMode) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'hairpinMode and promiscMode cannot both be set: a promiscuous bridge already sees its own frames');
  }
  if (out.ipamType && out.disableContainerInterface) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'disableContainerInterface cannot be used with IPAM: addresses need the pod interface up');
  }
  return out;
}

/** The config's dns block, only when it says something (the reference's dnsConfSet). */
function dnsSet(dns: JsonObject | undefined): JsonObject | undefined {
  if (!dns) return undefined;
  const has = (k: string) => dns[k] !== undefined && dns[k] !== null && dns[k] !== '';
  return has('nameservers') || has('search') || has('options') || has('domain') ? dns : undefined;
}
