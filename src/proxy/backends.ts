// Which backend serves which --proxy-mode. Each backend module exports a
// factory taking the per-family ProxyConfig.
import { createIptablesBackend } from './iptables/index.js';
import { createIpvsBackend } from './ipvs/index.js';
import { createNftablesBackend } from './nftables/index.js';
import { createUserspaceBackend } from './userspace/index.js';
import type { Logger } from './core/proxier.js';
import type { ProxyBackend, ProxyConfig } from './model.js';
import type { ProxySettings } from '../config/kube-proxy-config.js';

export type BackendFactory = (config: ProxyConfig, settings: ProxySettings, log: Logger) => ProxyBackend;

export const backendFactories: Record<string, BackendFactory> = {
  iptables: (config) => createIptablesBackend(config),
  nftables: (config) => createNftablesBackend(config),
  ipvs: (config, s) =>
    createIpvsBackend(config, {
      scheduler: s.ipvs.scheduler,
      strictARP: s.ipvs.strictARP,
      excludeCIDRs: s.ipvs.excludeCIDRs,
      tcpTimeout: Math.round(s.ipvs.tcpTimeoutMs / 1000),
      tcpFinTimeout: Math.round(s.ipvs.tcpFinTimeoutMs / 1000),
      udpTimeout: Math.round(s.ipvs.udpTimeoutMs / 1000),
    }),
  userspace: (config, s, log) => createUserspaceBackend(config, { udpIdleTimeoutMs: s.udpIdleTimeoutMs, log }),
};

export function createBackend(mode: string, config: ProxyConfig, settings: ProxySettings, log: Logger): ProxyBackend {
  const f = backendFactories[mode];
  if (!f) throw new Error(`--proxy-mode=${mode} is not available (choose one of: ${Object.keys(backendFactories).join(', ')})`);
  return f(config, settings, log);
}
