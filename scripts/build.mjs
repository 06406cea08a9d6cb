// Builds podwire's executables with esbuild.
//  - dist/cni-bin/podwire-bridge, dist/cni-bin/podwire-ipam: one self-contained
//    CommonJS file each (the fastest thing for Node to start), plus the netlink
//    addon copied beside them, so /opt/cni/bin needs just these three files.
//  - dist/podwire.mjs: the daemon and CLI; npm packages stay in node_modules.
//  - dist/bench/*.mjs: the benchmarks.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const addon = join(root, 'build', 'Release', 'podwire_netlink.node');
mkdirSync(join(dist, 'cni-bin'), { recursive: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: root,
};

const cniEntries = {
  'podwire-bridge': 'src/cni/bridge/main.ts',
  'podwire-ipam': 'src/ipam/main.ts',
};
const jobs = [];
for (const [name, entry] of Object.entries(cniEntries)) {
  if (!existsSync(join(root, entry))) continue;
  jobs.push(
    build({
      ...common,
      entryPoints: [entry],
      outfile: join(dist, 'cni-bin', name),
      format: 'cjs',
      minifySyntax: true,
      banner: { js: '#!/usr/bin/env node' },
      define: { 'import.meta.url': '__podwire_import_meta_url' },
      inject: [join(root, 'scripts', 'cjs-import-meta.js')],
    }).then(() => chmodSync(join(dist, 'cni-bin', name), 0o755)),
  );
}
if (existsSync(join(root, 'src/cli/main.ts'))) {
  jobs.push(
    build({
      ...common,
      entryPoints: ['src/cli/main.ts'],
      outfile: join(dist, 'podwire.mjs'),
      format: 'esm',
      packages: 'external',
      banner: { js: "import { createRequire as __pwCreateRequire } from 'node:module'; const require = __pwCreateRequire(import.meta.url);" },
    }),
  );
}
const benchDir = join(root, 'bench');
if (existsSync(benchDir)) {
  const benches = readdirSync(benchDir).filter((f) => f.endsWith('.ts'));
  if (benches.length > 0) {
    jobs.push(
      build({
        ...common,
        entryPoints: benches.map((f) => join('bench', f)),
        outdir: join(dist, 'bench'),
        outExtension: { '.js': '.mjs' },
        format: 'esm',
        packages: 'external',
        banner: { js: "import { createRequire as __pwCreateRequire } from 'node:module'; const require = __pwCreateRequire(import.meta.url);" },
      }),
    );
  }
}
await Promise.all(jobs);
if (existsSync(addon)) copyFileSync(addon, join(dist, 'cni-bin', 'podwire_netlink.node'));
// The bundles are CommonJS; inside this "type": "module" package Node would
// otherwise load them as ES modules when run directly.
writeFileSync(join(dist, 'cni-bin', 'package.json'), '{ "type": "commonjs" }\n');
