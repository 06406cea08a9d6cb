// host-local's on-disk store: <dataDir>/<network>/<ip> holds "<containerID>\r\n<ifname>",
// last_reserved_ip.<rangeSetIndex> the round-robin position, and flock(<dir>/lock) serialises
// every plugin (podwire-ipam and host-local alike) working on the network.
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
  constants,
} from 'node:fs';
import { join } from 'node:path';
import { CniError, ErrorCode } from '../cni/spec/errors.js';
import { parseIP } from '../cni/spec/ip.js';
import { LOCK_EX, LOCK_UN, native } from '../netlink/native.js';
import type { Reservation, Store } from './store.js';

const LAST_PREFIX = 'last_reserved_ip.';
const LINE_BREAK = '\r\n';

function ioError(what: string, err: unknown): CniError {
  return new CniError(ErrorCode.IO, `${what}: ${(err as Error).message}`);
}

export class DiskStore implements Store {
  readonly dir: string;
  private lockFd = -1;
  private dirty = false;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens <dataDir>/<network> (created when missing) and takes its lock. */
  static open(dataDir: string, network: string): DiskStore {
    const s = new DiskStore(join(dataDir, network));
    try {
      mkdirSync(s.dir, { recursive: true, mode: 0o755 });
      s.lockFd = openSync(join(s.dir, 'lock'), constants.O_RDWR | constants.O_CREAT, 0o600);
    } catch (err) {
      throw ioError(`cannot open the IPAM store ${s.dir}`, err);
    }
    try {
      native().flock(s.lockFd, LOCK_EX);
    } catch (err) {
      closeSync(s.lockFd);
      throw ioError(`cannot lock ${join(s.dir, 'lock')}`, err);
    }
    return s;
  }

  /**
   * Drops the lock, then flushes the directory (so links, renames and unlinks survive a crash)
   * before the caller answers. Flushing outside the lock is as safe: the entries are visible to
   * the next holder at once, and a crash before the flush means the runtime never got an answer
   * and will ask again. It keeps concurrent ADDs from queueing behind each other's fsync.
   */
  close(): void {
    if (this.lockFd < 0) return;
    try {
      native().flock(this.lockFd, LOCK_UN);
    } finally {
      closeSync(this.lockFd);
      this.lockFd = -1;
    }
    if (this.dirty) this.syncDir();
  }

  private syncDir(): void {
    const fd = openSync(this.dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.dirty = false;
  }

  /**
   * Writes a complete file under a temporary name; the caller links or renames it into place.
   * `durable: false` skips the fsync, for last_reserved_ip.N: only a round-robin hint, which a
   * crash may reset without harm (every candidate is checked against the reservations).
   */
  private writeTemp(name: string, data: string, durable = true): string {
    const tmp = join(this.dir, `.${name}.tmp-${process.pid}`);
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      writeSync(fd, data);
      if (durable) fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      unlinkSync(tmp);
      throw err;
    }
    closeSync(fd);
    return tmp;
  }

  reserve(id: string, ifname: string, ip: string, rangeSetIndex: number): boolean {
    const path = join(this.dir, ip);
    let tmp: string;
    try {
      tmp = this.writeTemp(ip, id.trim() + LINE_BREAK + ifname);
    } catch (err) {
      throw ioError(`cannot write reservation ${path}`, err);
    }
    // link(2) fails with EEXIST instead of replacing: exclusive like O_EXCL, but never torn.
    try {
      linkSync(tmp, path);
    } catch (err) {
      unlinkSync(tmp);
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw ioError(`cannot create reservation ${path}`, err);
    }
    unlinkSync(tmp);
    this.dirty = true;
    try {
      const lastTmp = this.writeTemp(LAST_PREFIX + rangeSetIndex, ip, false);
      renameSync(lastTmp, join(this.dir, LAST_PREFIX + rangeSetIndex));
    } catch (err) {
      this.release(ip);
      throw ioError(`cannot record ${LAST_PREFIX}${rangeSetIndex} in ${this.dir}`, err);
    }
    return true;
  }

  lastReserved(rangeSetIndex: number): string | null {
    try {
      return readFileSync(join(this.dir, LAST_PREFIX + rangeSetIndex), 'utf8').trim() || null;
    } catch {
      return null;
    }
  }

  all(): Reservation[] {
    const out: Reservation[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!parseIP(name)) continue; // lock, last_reserved_ip.N, temporaries
      let data: string;
      try {
        data = readFileSync(join(this.dir, name), 'utf8').trim();
      } catch {
        continue;
      }
      const br = data.indexOf(LINE_BREAK);
      out.push(br < 0 ? { ip: name, containerID: data, ifname: '' } : { ip: name, containerID: data.slice(0, br).trim(), ifname: data.slice(br + 2).trim() });
    }
    return out;
  }

  release(ip: string): void {
    try {
      unlinkSync(join(this.dir, ip));
      this.dirty = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot release ${join(this.dir, ip)}`, err);
    }
  }
}

/** Runs fn with the network's store open and locked, always unlocking. */
export function withStore<T>(dataDir: string, network: string, fn: (s: DiskStore) => T): T {
  const s = DiskStore.open(dataDir, network);
  try {
    return fn(s);
  } finally {
    s.close();
  }
}
