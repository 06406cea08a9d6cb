// --proxy-mode=userspace. See README.md in this folder.
import type { ProxyBackend, ProxyConfig } from '../model.js';
import { UserspaceProxier, type UserspaceOptions } from './backend.js';

export { UserspaceProxier, type UserspaceOptions } from './backend.js';
export { USERSPACE_LINK } from './addresses.js';

export function createUserspaceBackend(config: ProxyConfig, opts: UserspaceOptions): ProxyBackend {
  return new UserspaceProxier(config, opts);
}
