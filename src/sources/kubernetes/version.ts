// podwire's version for the User-Agent, read once from the package.json
// above this file (src/… when run from source, dist/… when bundled).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function podwireVersion(): string {
  if (cached) return cached;
  cached = '0.0.0';
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'podwire' && pkg.version) {
        cached = pkg.version;
        break;
      }
    } catch {
      // not here; look one level up
    }
    dir = dirname(dir);
  }
  return cached;
}
