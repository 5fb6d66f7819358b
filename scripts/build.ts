/**
 * `npm run build`: lays out the two publishable packages from this one
 * source tree (see docs/packaging.md).
 *
 * - packages/client (`@backjob/client`): client/ and shared/ compiled to
 *   dist/ with their types, the single-file bundle `dist/bundle.js`, and
 *   custom-elements.json.
 * - packages/server (`backjob`): server/ and shared/ compiled to dist/ with
 *   their types, the Redis backend's Lua scripts beside the modules that read
 *   them, and the same `dist/bundle.js`, which its router serves.
 *
 * Each also gets the repository's LICENSE. `npm pack packages/client
 * packages/server` (or `npm publish`) then takes what each package.json's
 * `files` names. Run as `tsx scripts/build.ts`.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_PATH, buildClientBundle } from '../server/http/client-bundle.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const packages = ['client', 'server'].map((name) => join(root, 'packages', name));

function run(script: string, args: string[]): void {
  execFileSync(process.execPath, [script, ...args], { cwd: root, stdio: 'inherit' });
}

for (const dir of packages) {
  rmSync(join(dir, 'dist'), { recursive: true, force: true });
  run(require.resolve('typescript/bin/tsc'), ['-p', join(dir, 'tsconfig.json')]);
  copyFileSync(join(root, 'LICENSE'), join(dir, 'LICENSE'));
}

// Files the server reads at run time next to its modules (`new URL('./lua/…', import.meta.url)`): tsc copies no such thing.
const serverAssets = readdirSync(join(root, 'server'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.lua'));
for (const file of serverAssets) {
  const target = join(root, 'packages', 'server', 'dist', 'server', file);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(root, 'server', file), target);
}

const bundle = await buildClientBundle(root);
for (const dir of packages) {
  mkdirSync(dirname(join(dir, BUNDLE_PATH)), { recursive: true });
  writeFileSync(join(dir, BUNDLE_PATH), bundle);
}

const analyzer = join(dirname(require.resolve('@custom-elements-manifest/analyzer/package.json')), 'cem.js');
run(analyzer, ['analyze', '--config', 'custom-elements-manifest.config.mjs', '--quiet']);
console.log(`Built ${packages.map((dir) => dir.slice(root.length)).join(' and ')} (bundle: ${(bundle.length / 1024).toFixed(1)} KiB)`);
