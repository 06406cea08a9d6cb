// --proxy-mode=nftables: the backend over nf_tables netlink batches.
import type { ProxyBackend, ProxyConfig } from '../model.js';
import { NftablesProxier, type NftablesOptions } from './backend.js';

export { NftablesProxier, type NftablesOptions };

export function createNftablesBackend(config: ProxyConfig, opts: NftablesOptions = {}): ProxyBackend {
  return new NftablesProxier(config, opts);
}
