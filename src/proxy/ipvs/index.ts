// --proxy-mode=ipvs. See README.md in this folder.
import type { ProxyBackend, ProxyConfig } from '../model.js';
import { IpvsBackend, type IpvsBackendOptions } from './backend.js';

export { IpvsBackend, type IpvsBackendOptions } from './backend.js';
export { SCHEDULER_ANNOTATION, IPVS_DUMMY_LINK } from './names.js';

export function createIpvsBackend(config: ProxyConfig, opts: IpvsBackendOptions = {}): ProxyBackend {
  return new IpvsBackend(config, opts);
}
