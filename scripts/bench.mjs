// npm run bench -- NAME [args]: runs dist/bench/NAME.mjs (built by npm run build).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bench');
const [name, ...args] = process.argv.slice(2);
const file = name ? join(dir, `${name}.mjs`) : '';
if (!name || !existsSync(file)) {
  const have = existsSync(dir) ? readdirSync(dir).map((f) => f.replace(/\.mjs$/, '')) : [];
  console.error(`usage: npm run bench -- NAME [args]   (NAME: ${have.join(', ') || 'run npm run build first'})`);
  process.exit(2);
}
// The daemon's V8 flags (bin/podwire's first line), so memory figures are the daemon's.
const shebang = readFileSync(join(dir, '..', '..', 'bin', 'podwire'), 'utf8').split('\n')[0];
const nodeFlags = shebang.split(/\s+/).filter((w) => w.startsWith('--'));
const r = spawnSync(process.execPath, [...nodeFlags, file, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
