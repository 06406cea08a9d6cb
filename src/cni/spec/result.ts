// The ADD result: one model (the 1.x shape) and conversion from/to every spec version's JSON.
import { CniError, ErrorCode } from './errors.js';
import { parseCIDR, parseIP } from './ip.js';
import { compareVersions, isLegacyResultVersion, isSupportedVersion } from './version.js';

export interface IPConfig {
  /** CIDR, e.g. "10.22.0.5/24". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}
export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}
export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}
export interface DNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}
export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: Route[];
  dns?: DNS;
}

type Json = Record<string, unknown>;

function bad(msg: string): CniError {
  return new CniError(ErrorCode.Decode, `invalid CNI result: ${msg}`);
}
function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function optStr(o: Json, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw bad(`${where}.${key} must be a string`);
  return v;
}
function optNum(o: Json, key: string, where: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(`${where}.${key} must be a non-negative integer`);
  return v;
}
function optStrList(o: Json, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(`${where}.${key} must be a list of strings`);
  return v as string[];
}
function cidr(o: Json, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string' || !parseCIDR(v)) throw bad(`${where}.${key} must be an address in CIDR notation, got ${JSON.stringify(v)}`);
  return v;
}
function optIp(o: Json, key: string, where: string): string | undefined {
  const v = optStr(o, key, where);
  if (v !== undefined && !parseIP(v)) throw bad(`${where}.${key} must be an IP address, got "${v}"`);
  return v;
}

function parseRoute(v: unknown, where: string): Route {
  if (!isObj(v)) throw bad(`${where} must be an object`);
  const r: Route = { dst: cidr(v, 'dst', where) };
  const gw = optIp(v, 'gw', where);
  if (gw !== undefined) r.gw = gw;
  for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
    const n = optNum(v, k, where);
    if (n !== undefined) r[k] = n;
  }
  return r;
}

export function parseDns(v: unknown, where = 'dns'): DNS | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw bad(`${where} must be an object`);
  const d: DNS = {};
  const ns = optStrList(v, 'nameservers', where);
  if (ns) d.nameservers = ns;
  const domain = optStr(v, 'domain', where);
  if (domain !== undefined) d.domain = domain;
  const search = optStrList(v, 'search', where);
  if (search) d.search = search;
  const options = optStrList(v, 'options', where);
  if (options) d.options = options;
  return d;
}

function parseList<T>(v: unknown, where: string, each: (x: unknown, w: string) => T): T[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw bad(`${where} must be a list`);
  return v.map((x, i) => each(x, `${where}[${i}]`));
}

function parseLegacy(o: Json, cniVersion: string): Result {
  const r: Result = { cniVersion };
  const ips: IPConfig[] = [];
  const routes: Route[] = [];
  for (const key of ['ip4', 'ip6'] as const) {
    const c = o[key];
    if (c === undefined || c === null) continue;
    if (!isObj(c)) throw bad(`${key} must be an object`);
    const ipc: IPConfig = { address: cidr(c, 'ip', key) };
    const gw = optIp(c, 'gateway', key);
    if (gw !== undefined) ipc.gateway = gw;
    ips.push(ipc);
    routes.push(...(parseList(c.routes, `${key}.routes`, parseRoute) ?? []));
  }
  if (ips.length > 0) r.ips = ips;
  if (routes.length > 0) r.routes = routes;
  const dns = parseDns(o.dns);
  if (dns) r.dns = dns;
  return r;
}

/** Accepts a result of any supported version and returns it in the 1.x model (cniVersion kept). */
export function parseResult(json: unknown): Result {
  if (!isObj(json)) throw bad('expected a JSON object');
  const v = json.cniVersion;
  let cniVersion = typeof v === 'string' && v !== '' ? v : '0.1.0';
  if (!isSupportedVersion(cniVersion)) throw new CniError(ErrorCode.IncompatibleVersion, `unsupported result cniVersion "${cniVersion}"`);
  if (isLegacyResultVersion(cniVersion) || (json.ips === undefined && (json.ip4 !== undefined || json.ip6 !== undefined))) {
    return parseLegacy(json, cniVersion);
  }
  const r: Result = { cniVersion };
  const interfaces = parseList(json.interfaces, 'interfaces', (x, w): Interface => {
    if (!isObj(x)) throw bad(`${w} must be an object`);
    const name = x.name;
    if (typeof name !== 'string' || name === '') throw bad(`${w}.name must be a non-empty string`);
    const i: Interface = { name };
    for (const k of ['mac', 'sandbox', 'socketPath', 'pciID'] as const) {
      const s = optStr(x, k, w);
      if (s !== undefined) i[k] = s;
    }
    const mtu = optNum(x, 'mtu', w);
    if (mtu !== undefined) i.mtu = mtu;
    return i;
  });
  if (interfaces) r.interfaces = interfaces;
  const ips = parseList(json.ips, 'ips', (x, w): IPConfig => {
    if (!isObj(x)) throw bad(`${w} must be an object`);
    const c: IPConfig = { address: cidr(x, 'address', w) };
    const gw = optIp(x, 'gateway', w);
    if (gw !== undefined) c.gateway = gw;
    const idx = optNum(x, 'interface', w);
    if (idx !== undefined) c.interface = idx;
    return c;
  });
  if (ips) r.ips = ips;
  const routes = parseList(json.routes, 'routes', parseRoute);
  if (routes) r.routes = routes;
  const dns = parseDns(json.dns);
  if (dns) r.dns = dns;
  return r;
}

function familyOf(cidrText: string): 4 | 6 {
  return (parseCIDR(cidrText) as { ip: { family: 4 | 6 } }).ip.family;
}

function dnsJson(d: DNS | undefined): DNS {
  // libcni always prints a "dns" object, empty when there is nothing.
  const out: DNS = {};
  if (!d) return out;
  if (d.nameservers?.length) out.nameservers = d.nameservers;
  if (d.domain) out.domain = d.domain;
  if (d.search?.length) out.search = d.search;
  if (d.options?.length) out.options = d.options;
  return out;
}

/** The result as JSON of the requested version. */
export function formatResult(r: Result, version: string): object {
  if (!isSupportedVersion(version)) throw new CniError(ErrorCode.IncompatibleVersion, `cannot convert a result to unsupported cniVersion "${version}"`);
  const ips = r.ips ?? [];
  const routes = r.routes ?? [];
  if (isLegacyResultVersion(version)) {
    const out: Json = { cniVersion: version };
    for (const fam of [4, 6] as const) {
      const ipc = ips.find((c) => familyOf(c.address) === fam);
      if (!ipc) continue;
      const c: Json = { ip: ipc.address };
      if (ipc.gateway) c.gateway = ipc.gateway;
      const rs = routes.filter((rt) => familyOf(rt.dst) === fam).map((rt) => (rt.gw ? { dst: rt.dst, gw: rt.gw } : { dst: rt.dst }));
      if (rs.length > 0) c.routes = rs;
      out[fam === 4 ? 'ip4' : 'ip6'] = c;
    }
    if (out.ip4 === undefined && out.ip6 === undefined) {
      throw new CniError(ErrorCode.IncompatibleVersion, `cannot convert the result to cniVersion ${version}: it has no IP address`);
    }
    out.dns = dnsJson(r.dns);
    return out;
  }
  const v1 = compareVersions(version, '1.0.0') >= 0;
  const out: Json = { cniVersion: version };
  if (r.interfaces?.length) {
    out.interfaces = r.interfaces.map((i) => {
      if (v1) return { ...i };
      const o: Interface = { name: i.name };
      if (i.mac) o.mac = i.mac;
      if (i.sandbox) o.sandbox = i.sandbox;
      return o;
    });
  }
  if (ips.length > 0) {
    out.ips = ips.map((c) => {
      const o: Json = {};
      if (!v1) o.version = String(familyOf(c.address));
      if (c.interface !== undefined) o.interface = c.interface;
      o.address = c.address;
      if (c.gateway) o.gateway = c.gateway;
      return o;
    });
  }
  if (routes.length > 0) out.routes = routes.map((rt) => (v1 ? { ...rt } : rt.gw ? { dst: rt.dst, gw: rt.gw } : { dst: rt.dst }));
  out.dns = dnsJson(r.dns);
  return out;
}
