// Sysctls under /proc/sys, read and written from inside a network namespace by
// the addon (the file resolves to the namespace of the thread that opens it,
// so Node's own fs would see the wrong one).
import { native } from './native.js';
import { NetlinkError } from './socket.js';

const EINVAL = 22;

/**
 * The /proc/sys path of a key. The dotted form ('net.ipv4.ip_forward') maps
 * dots to slashes; the path form ('net/ipv6/conf/eth0.100/disable_ipv6') is
 * taken as is, which is the only way to name an interface with a '.' in it.
 */
export function sysctlPath(key: string): string {
  const rel = key.includes('/') ? key.replace(/^\/+/, '') : key.replaceAll('.', '/');
  const parts = rel.split('/');
  if (!rel || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new NetlinkError(`sysctl ${JSON.stringify(key)}: not a sysctl key`, EINVAL, 0);
  }
  return `/proc/sys/${rel}`;
}

function where(netnsPath: string | undefined): string {
  return netnsPath ? ` in ${netnsPath}` : '';
}

function rethrow(e: unknown, what: string): never {
  const errno = typeof (e as { errno?: unknown }).errno === 'number' ? (e as { errno: number }).errno : EINVAL;
  throw new NetlinkError(what, errno, 0);
}

/** The value of a sysctl, trimmed (inside netnsPath when given, else the caller's namespace). */
export function readSysctl(key: string, netnsPath?: string): string {
  const path = sysctlPath(key);
  try {
    return native().readFileInNetns(netnsPath ?? '', path).trim();
  } catch (e) {
    return rethrow(e, `read sysctl ${key}${where(netnsPath)}`);
  }
}

export function writeSysctl(key: string, value: string, netnsPath?: string): void {
  const path = sysctlPath(key);
  try {
    native().writeFileInNetns(netnsPath ?? '', path, value);
  } catch (e) {
    rethrow(e, `write sysctl ${key}=${value}${where(netnsPath)}`);
  }
}
