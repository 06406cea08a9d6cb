// Reads all of stdin synchronously: a plugin's config is small, and a sync read avoids
// starting the event loop's stream machinery on the start-up path.
import { readSync, fstatSync } from 'node:fs';
import { CniError, ErrorCode } from './errors.js';

export function readStdinSync(): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        // A non-blocking pipe with nothing yet: wait briefly and retry.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        continue;
      }
      if (code === 'EOF') break;
      throw new CniError(ErrorCode.IO, `error reading the network configuration from stdin: ${(err as Error).message}`);
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** True when stdin is a terminal (nothing is piped in). */
export function stdinIsTty(): boolean {
  try {
    return fstatSync(0).isCharacterDevice();
  } catch {
    return false;
  }
}
