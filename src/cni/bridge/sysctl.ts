// Sysctls the bridge plugin sets, in the node's or the pod's namespace. Keys
// use the slash form so interface names with dots stay intact.
import { readFileSync, writeFileSync } from 'node:fs';
import { native } from '../../netlink/native.js';

function path(key: string): string {
  return `/proc/sys/${key}`;
}

/** Reads a sysctl (trimmed) inside netnsPath, or the caller's namespace. */
export function getSysctl(key: string, netnsPath?: string): string {
  return (netnsPath ? native().readFileInNetns(netnsPath, path(key)) : readFileSync(path(key), 'utf8')).trim();
}

export function setSysctl(key: string, value: string, netnsPath?: string): void {
  if (netnsPath) native().writeFileInNetns(netnsPath, path(key), value);
  else writeFileSync(path(key), value);
}

/** Sets a sysctl only when it differs; false when the key does not exist (e.g. IPv6 disabled). */
export function ensureSysctl(key: string, value: string, netnsPath?: string): boolean {
  try {
    if (getSysctl(key, netnsPath) === value) return true;
    setSysctl(key, value, netnsPath);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || /ENOENT|No such file/.test(String(e))) return false;
    throw e;
  }
}
