/**
 * The packages as an app meets them: `npm run build`, `npm pack` of
 * packages/client and packages/server, and installs of the tarballs into
 * fresh apps from the npm cache (`--prefer-offline`: the registry only for
 * what the cache lacks).
 *
 * - A browser-only install pulls lit and nothing of the server, and runs no
 *   install script; its React 19 and Vue pages type-check (tsc, vue-tsc).
 * - A server install resolves with Express 5 and with Express 4 (one copy of
 *   express, the app's), its types compile under `strict` without
 *   `skipLibCheck` in an app using express-session, and the installed shim
 *   runs in that app: the client at /backjob/client.js, nothing else, and the
 *   API's errors on both majors. `--ignore-scripts` skips better-sqlite3's
 *   native build (minutes), so the app runs on `memory()`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from './harness.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = join(root, 'e2e', 'package-fixtures');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const vueTsc = join(root, 'node_modules', 'vue-tsc', 'bin', 'vue-tsc.js');
const temp = tempDir();
/** Installs and type checks on a loaded 2-core machine: generous. */
const SLOW = { timeout: 240_000 };

/** What the server's dependencies are, which a browser-only install must not have. */
const SERVER_PACKAGES = ['better-sqlite3', 'express', 'ws', 'nanoid', 'proxy-addr', 'bullmq', 'ioredis'];

interface Ran {
  code: number | null;
  /** stdout and stderr, interleaved: what a failure shows. */
  output: string;
  /** stdout alone: what a `--json` command answers (npm writes its notices, an update available among them, to stderr). */
  stdout: string;
  ms: number;
}

/**
 * Runs a command to its end. What `npm test` says of this repository is left
 * out (`npm_config_local_prefix` would point the child npm at it instead of
 * the app, and `npm_package_*`, `npm_lifecycle_*` describe it); the user's npm
 * configuration from the environment (`NPM_CONFIG_REGISTRY`, a cache, a proxy,
 * a CA file) stays, so the child npm reaches the registry the way npm does.
 */
function run(command: string, args: string[], cwd: string): Promise<Ran> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^npm_(config_local_prefix$|package_|lifecycle_|command$)/i.test(name)),
  );
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stdout = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output, stdout, ms: Date.now() - started }));
  });
}

async function mustRun(command: string, args: string[], cwd: string): Promise<Ran> {
  const ran = await run(command, args, cwd);
  assert.equal(ran.code, 0, `${command} ${args.join(' ')} in ${cwd} failed:\n${ran.output}`);
  return ran;
}

/** A fresh app folder with a package.json, and `npm install` of `specs` into it. */
async function installApp(name: string, specs: string[], options: { ignoreScripts?: boolean } = {}): Promise<string> {
  const dir = join(temp.dir, name);
  await mustRun('mkdir', ['-p', dir], temp.dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }));
  await npmInstall(dir, specs, options);
  return dir;
}

async function npmInstall(dir: string, specs: string[], options: { ignoreScripts?: boolean } = {}): Promise<void> {
  const flags = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...(options.ignoreScripts ? ['--ignore-scripts'] : [])];
  await mustRun('npm', ['install', ...flags, ...specs], dir);
}

/** Every package installed under `dir`'s node_modules, nested ones included, with its manifest and folder. */
function installedPackages(dir: string): Array<{ name: string; path: string; manifest: Record<string, any> }> {
  const found: Array<{ name: string; path: string; manifest: Record<string, any> }> = [];
  const walk = (modules: string) => {
    if (!existsSync(modules)) return;
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue;
      const names = entry.startsWith('@') ? readdirSync(join(modules, entry)).map((n) => `${entry}/${n}`) : [entry];
      for (const name of names) {
        const path = join(modules, name);
        const manifestFile = join(path, 'package.json');
        if (!existsSync(manifestFile)) continue;
        found.push({ name, path, manifest: JSON.parse(readFileSync(manifestFile, 'utf8')) });
        walk(join(path, 'node_modules'));
      }
    }
  };
  walk(join(dir, 'node_modules'));
  return found;
}

function writeTsconfig(dir: string, include: string[], compilerOptions: Record<string, unknown>): void {
  const config = {
    compilerOptions: {
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      target: 'ES2022',
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      ...compilerOptions,
    },
    include,
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(config, null, 2));
}

const tarballs: Record<'client' | 'server', string> = { client: '', server: '' };
const packed: Record<'client' | 'server', string[]> = { client: [], server: [] };

before(async () => {
  await mustRun(process.execPath, ['--import', 'tsx', 'scripts/build.ts'], root);
  const { stdout } = await mustRun('npm', ['pack', '--json', '--pack-destination', temp.dir, './packages/client', './packages/server'], root);
  const reports = JSON.parse(stdout) as Array<{ name: string; filename: string; files: Array<{ path: string }> }>;
  for (const report of reports) {
    const which = report.name === '@backjob/client' ? 'client' : 'server';
    tarballs[which] = join(temp.dir, report.filename);
    packed[which] = report.files.map((f) => f.path);
  }
}, SLOW);

after(() => temp.remove());

describe('the packed tarballs', () => {
  for (const which of ['client', 'server'] as const) {
    test(`${which}: its build, types, LICENSE and README, every export present, and nothing of the repository's tests or sources`, () => {
      const files = packed[which];
      const dir = join(root, 'packages', which);
      for (const required of ['LICENSE', 'README.md', 'package.json', 'dist/bundle.js']) assert.ok(files.includes(required), `${which} lacks ${required}`);
      assert.match(readFileSync(join(dir, 'LICENSE'), 'utf8'), /MIT License[\s\S]*Copyright \(c\) 2026 BackJob contributors/);
      const strays = files.filter((f) => (/\.ts$/.test(f) && !f.endsWith('.d.ts')) || /test|store-contract|http-contract|crash-child|fuzz|tsconfig/.test(f));
      assert.deepEqual(strays, [], 'sources, tests and test support stay in the repository');
      if (which === 'server') {
        // Read at run time beside the modules that use them (the Redis backend's scripts).
        const assets = readdirSync(join(root, 'server'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.lua'));
        assert.ok(assets.length > 0, 'the Redis backend has its Lua scripts');
        for (const asset of assets) assert.ok(files.includes(`dist/server/${asset}`), `the server tarball lacks ${asset}`);
      }

      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      const targets = (value: unknown): string[] =>
        typeof value === 'string' ? [value] : Object.values(value as Record<string, unknown>).flatMap(targets);
      for (const target of targets(manifest.exports)) assert.ok(files.includes(target.replace(/^\.\//, '')), `export ${target} is not in the ${which} tarball`);

      // A source map names sources the package does not ship: it must carry their text.
      for (const map of files.filter((f) => f.endsWith('.map'))) {
        const { sources, sourcesContent } = JSON.parse(readFileSync(join(dir, map), 'utf8'));
        assert.equal(sourcesContent?.length, sources.length, `${map} lacks sourcesContent`);
        assert.ok(sourcesContent.every((text: unknown) => typeof text === 'string' && text.length > 0), `${map} has an empty source`);
      }
    });
  }

  test('the repository installs what each package depends on, in the same range, so its tests run against it', () => {
    const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const rootRanges = { ...rootManifest.devDependencies, ...rootManifest.dependencies };
    for (const which of ['client', 'server']) {
      const manifest = JSON.parse(readFileSync(join(root, 'packages', which, 'package.json'), 'utf8'));
      for (const [name, range] of Object.entries(manifest.dependencies ?? {})) assert.equal(rootRanges[name], range, `${which}: ${name}`);
      for (const name of Object.keys(manifest.peerDependencies ?? {})) assert.ok(rootRanges[name], `${which}: peer ${name} is not installed for the tests`);
    }
  });

  test('both ship the same client bundle', () => {
    const bundle = (which: string) => readFileSync(join(root, 'packages', which, 'dist', 'bundle.js'));
    assert.ok(bundle('client').equals(bundle('server')));
  });

  test('the Custom Elements Manifest names shipped modules and types every event', () => {
    const manifest = JSON.parse(readFileSync(join(root, 'packages', 'client', 'custom-elements.json'), 'utf8'));
    assert.ok(packed.client.includes('custom-elements.json'));
    const paths: string[] = [];
    const collect = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(collect);
      else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if ((key === 'path' || key === 'module') && typeof value === 'string') paths.push(value);
          else collect(value);
        }
      }
    };
    collect(manifest.modules);
    assert.ok(paths.length > 0);
    for (const path of paths) assert.ok(packed.client.includes(path), `the manifest names ${path}, which the package does not ship`);

    const elements = manifest.modules.flatMap((m: any) => m.declarations ?? []).filter((d: any) => d.customElement);
    assert.deepEqual(elements.map((d: any) => d.tagName).sort(), ['backjob-jobs', 'backjob-launcher', 'backjob-log', 'backjob-progress']);
    const progress = elements.find((d: any) => d.tagName === 'backjob-progress');
    assert.deepEqual(
      progress.events.map((e: any) => [e.name, e.type?.text]),
      [
        ['backjob-progress', 'CustomEvent<BackjobProgressDetail>'],
        ['backjob-completed', 'CustomEvent<BackjobCompletedDetail>'],
        ['backjob-failed', 'CustomEvent<BackjobFailedDetail>'],
        ['backjob-canceled', 'CustomEvent<BackjobCanceledDetail>'],
        ['backjob-open', 'CustomEvent<BackjobOpenDetail>'],
      ],
    );
    for (const element of elements) for (const event of element.events ?? []) assert.match(event.type?.text ?? '', /^CustomEvent<\w+Detail>$/, event.name);
  });
});

describe('a browser-only install (@backjob/client)', () => {
  let app: string;

  test('pulls lit and nothing of the server, builds nothing native and runs no install script', SLOW, async () => {
    app = await installApp('browser-app', [tarballs.client]);
    const installed = installedPackages(app);
    const names = new Set(installed.map((p) => p.name));
    assert.ok(names.has('@backjob/client') && names.has('lit'));
    assert.deepEqual(SERVER_PACKAGES.filter((name) => names.has(name)), []);
    const scripted = installed.filter(
      (p) => ['preinstall', 'install', 'postinstall'].some((s) => p.manifest.scripts?.[s]) || existsSync(join(p.path, 'binding.gyp')),
    );
    assert.deepEqual(scripted.map((p) => p.name), []);
    assert.ok(installed.length <= 10, `a browser-only install of ${installed.length} packages: ${[...names].join(', ')}`);
  });

  test('a React 19 page type-checks with its props and onbackjob-* events (tsc, strict, no skipLibCheck)', SLOW, async () => {
    await npmInstall(app, ['@types/react@^19', 'vue@^3']);
    copyFileSync(join(fixtures, 'page.tsx'), join(app, 'page.tsx'));
    writeTsconfig(app, ['page.tsx'], { module: 'ESNext', moduleResolution: 'Bundler', jsx: 'react-jsx' });
    const checked = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
    assert.equal(checked.code, 0, checked.output);
  });

  test('a Vue 3 page type-checks with its props and @backjob-* events (vue-tsc)', SLOW, async () => {
    copyFileSync(join(fixtures, 'Page.vue'), join(app, 'Page.vue'));
    writeTsconfig(app, ['Page.vue'], { module: 'ESNext', moduleResolution: 'Bundler' });
    const checked = await run(process.execPath, [vueTsc, '-p', 'tsconfig.json'], app);
    assert.equal(checked.code, 0, checked.output);
  });
});

for (const express of [
  { major: 5, specs: ['express@^5', '@types/express@^5'] },
  // With the oldest @types/node the engines allow, as an app that has not upgraded it would.
  { major: 4, specs: ['express@^4.21', '@types/express@^4.17', '@types/node@^20'] },
]) {
  describe(`a server install (backjob) with Express ${express.major}`, () => {
    let app: string;

    test('resolves with the app\'s express as the one copy, and nothing of Redis', SLOW, async () => {
      app = await installApp(`express${express.major}-app`, [tarballs.server, tarballs.client, ...express.specs, '@types/express-session'], { ignoreScripts: true });
      const installed = installedPackages(app);
      const copies = installed.filter((p) => p.name === 'express');
      assert.deepEqual(copies.map((p) => [p.path, Number(p.manifest.version.split('.')[0])]), [[join(app, 'node_modules', 'express'), express.major]]);
      const names = new Set(installed.map((p) => p.name));
      for (const name of ['better-sqlite3', 'ws', 'nanoid', 'proxy-addr']) assert.ok(names.has(name), name);
      for (const name of ['bullmq', 'ioredis', '@types/better-sqlite3', '@types/ws', '@types/proxy-addr', 'esbuild']) assert.ok(!names.has(name), name);
    });

    test('its types compile under strict without skipLibCheck: identify reads req.session, both packages imported', SLOW, async () => {
      copyFileSync(join(fixtures, 'server-app.ts'), join(app, 'server-app.ts'));
      writeTsconfig(app, ['server-app.ts'], { module: 'NodeNext', moduleResolution: 'NodeNext' });
      const checked = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
      assert.equal(checked.code, 0, checked.output);
    });

    test('runs in the app: the client at /backjob/client.js and nothing else, the API and its errors', SLOW, async () => {
      copyFileSync(join(fixtures, 'serve.mjs'), join(app, 'serve.mjs'));
      const child = spawn(process.execPath, ['serve.mjs'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stderr.on('data', (chunk) => (output += chunk));
      try {
        const base = await new Promise<string>((resolve, reject) => {
          child.stdout.on('data', (chunk) => {
            output += chunk;
            const match = /listening on (\d+) with express (\d+)\./.exec(output);
            if (match) resolve(`http://127.0.0.1:${match[1]}`);
          });
          child.once('exit', (code) => reject(new Error(`serve.mjs exited with ${code}:\n${output}`)));
        });
        assert.match(output, new RegExp(`with express ${express.major}\\.`));

        const shim = await fetch(`${base}/backjob/client.js`);
        assert.equal(shim.status, 200);
        assert.equal(shim.headers.get('content-type'), 'text/javascript; charset=utf-8');
        assert.equal(shim.headers.get('cache-control'), 'no-cache');
        const hash = /^export \* from '\.\/client\.([0-9a-f]{12})\.js';\n$/.exec(await shim.text())?.[1];
        assert.ok(hash, 'client.js re-exports the hashed bundle');
        assert.equal(shim.headers.get('etag'), `"${hash}"`);
        const bundle = await fetch(`${base}/backjob/client.${hash}.js`);
        assert.equal(bundle.headers.get('cache-control'), 'public, max-age=31536000, immutable');
        assert.ok(Buffer.from(await bundle.arrayBuffer()).equals(readFileSync(join(root, 'packages', 'server', 'dist', 'bundle.js'))), 'the prebuilt bundle, not one built on the spot');

        for (const path of ['/backjob/bundle.js', '/backjob/client.js.map', '/backjob/client.000000000000.js', '/backjob/dist/server/index.js', '/backjob/package.json', '/backjob/%2e%2e/package.json']) {
          const res = await fetch(`${base}${path}`);
          assert.equal(res.status, 404, path);
          assert.equal(await res.text(), 'not found by the app', path);
        }

        // Errors thrown in async handlers reach the error handler on Express 4 too (it drops rejected promises).
        const json = { 'content-type': 'application/json' };
        const unknown = await fetch(`${base}/backjob/jobs`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'nope' }) });
        assert.equal(unknown.status, 404);
        assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'BACKJOB_ERR_UNKNOWN_JOB');
        assert.equal((await fetch(`${base}/backjob/jobs`)).status, 401);
        const started = await fetch(`${base}/backjob/jobs`, { method: 'POST', headers: { ...json, 'x-user': 'ada' }, body: JSON.stringify({ name: 'echo', params: { n: 1 } }) });
        assert.equal(started.status, 202);
        const { id } = (await started.json()) as { id: string };
        let snapshot: { status: string; result?: unknown } = { status: '' };
        for (let i = 0; i < 100 && snapshot.status !== 'completed'; i++) {
          snapshot = (await (await fetch(`${base}/backjob/jobs/${id}`, { headers: { 'x-user': 'ada' } })).json()) as typeof snapshot;
          if (snapshot.status !== 'completed') await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.deepEqual([snapshot.status, snapshot.result], ['completed', { n: 1 }]);
        assert.equal((await fetch(`${base}/backjob/jobs/${id}`, { headers: { 'x-user': 'grace' } })).status, 404, 'another user sees nothing');
      } finally {
        child.kill('SIGTERM');
      }
    });
  });
}
