// podwire's iptables backend, kube-proxy's chain layout (see rules-templates/iptables/rules.tpl).
export { createIptablesBackend, IptablesBackend, type IptablesBackendOptions, type SyncTimings } from './backend.js';
export { IptablesRenderer } from './render.js';
export { detectFlavour, type Flavour, type IptablesTool } from './exec.js';
