// Loads podwire's N-API addon (src/netlink/addon), built by `npm install`.
// Looked for beside the running bundle first (dist/cni-bin/, /opt/cni/bin/),
// then in the source tree's build/Release.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeNetlink {
  /** Opens and binds an AF_NETLINK socket, inside the namespace at netnsPath when given. */
  socket(protocol: number, netnsPath?: string): number;
  /** The port id the kernel gave the socket. */
  portId(fd: number): number;
  setsockoptInt(fd: number, level: number, name: number, value: number): void;
  send(fd: number, data: Uint8Array): number;
  /** One datagram, or null when nothing arrived within timeoutMs (-1: wait forever). */
  recv(fd: number, timeoutMs: number): Buffer | null;
  close(fd: number): void;
  /** flock(2); false only when LOCK_NB was given and the lock is held elsewhere. */
  flock(fd: number, operation: number): boolean;
  writeFileInNetns(netnsPath: string, path: string, data: string): void;
  readFileInNetns(netnsPath: string, path: string): string;
  isNetns(path: string): boolean;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

const ADDON = 'podwire_netlink.node';

let loaded: NativeNetlink | undefined;

export function native(): NativeNetlink {
  if (loaded) return loaded;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.PODWIRE_NETLINK_ADDON,
    join(here, ADDON),
    join(here, '..', 'build', 'Release', ADDON),
    join(here, '..', '..', 'build', 'Release', ADDON),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`podwire's netlink addon (${ADDON}) was not found; run \`npm install\` (looked in: ${candidates.join(', ')})`);
  }
  // What require() does for a .node file, without loading node:module (~0.3 ms of a CNI call's start-up).
  const mod = { exports: {} };
  process.dlopen(mod, found);
  loaded = mod.exports as NativeNetlink;
  return loaded;
}
