// Shared CNI protocol code for podwire's plugins (podwire-bridge, podwire-ipam).
export { CniError, ErrorCode, asCniError, type CniErrorJson } from './errors.js';
export { SUPPORTED_VERSIONS, CURRENT_VERSION, type CniVersion, compareVersions, isSupportedVersion } from './version.js';
export { type CniEnv, type CniCommand, readEnv, parseCniArgs, formatCniArgs, validateContainerId, validateIfname, validateNetworkName } from './env.js';
export { readStdinSync } from './stdin.js';
export { type IPConfig, type Route, type Interface, type DNS, type Result, parseResult, formatResult, parseDns } from './result.js';
export { type NetConf, type PluginContext, type PluginHandlers, parseNetConf, runPlugin } from './plugin.js';
export { execPlugin, findPlugin } from './exec.js';
export * as ip from './ip.js';
export { type Attachment, validAttachments } from './gc.js';
