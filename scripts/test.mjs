#!/usr/bin/env node
// Runs every test suite (the dependency rules of .dependency-cruiser.cjs, one
// test per rule; server and end-to-end tests on node's test runner; element
// tests in Chromium through @web/test-runner) and ends with one line
// `N passed, N failed` that sums them all.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

/** System programs the suites drive, with the Debian package that has each. */
const systemNeeds = [
  { bin: 'chromium', pkg: 'chromium' },
  { bin: 'redis-server', pkg: 'redis-server' },
];

function have(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

function ensureSystemPackages() {
  const missing = systemNeeds.filter((n) => !have(n.bin)).map((n) => n.pkg);
  if (missing.length === 0) return;
  const command = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (process.getuid?.() === 0 && have('apt-get')) {
    console.log(`Installing ${missing.join(', ')}: ${command}`);
    const r = spawnSync('sh', ['-c', command], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status === 0) return;
  }
  console.error(`The tests need ${missing.join(', ')}. Install with:\n  sudo ${command}`);
  process.exit(1);
}

function findTests(dir, pattern, out = []) {
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) findTests(path, pattern, out);
    else if (pattern.test(entry)) out.push(path);
  }
  return out;
}

/** Runs a command, echoing its output, and resolves with what it printed. */
function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: process.env });
    let output = '';
    const echo = (stream) => (chunk) => {
      output += chunk;
      stream.write(chunk);
    };
    child.stdout.on('data', echo(process.stdout));
    child.stderr.on('data', echo(process.stderr));
    child.on('close', (code) => resolve({ code, output }));
  });
}

/**
 * The dependency rules (`npm run check:deps`), each one test: it passes when no
 * import breaks it, and fails printing the rule and every offending import.
 */
async function checkDependencies() {
  const cli = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
  const args = [cli, 'server', 'shared', 'client', 'bench', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'];
  const ran = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  let summary;
  try {
    summary = JSON.parse(ran.stdout).summary;
  } catch {
    console.error(`✖ dependency rules: dependency-cruiser did not run\n${ran.stderr}`);
    return { passed: 0, failed: 1 };
  }
  let pass = 0;
  let fail = 0;
  for (const rule of summary.ruleSetUsed.forbidden ?? []) {
    const broken = summary.violations.filter((v) => v.rule.name === rule.name);
    if (broken.length === 0) {
      pass++;
      console.log(`✔ dependency rule ${rule.name}`);
      continue;
    }
    fail++;
    console.log(`✖ dependency rule ${rule.name}: ${rule.comment ?? ''}`);
    for (const v of broken) console.log(`    ${v.cycle ? [v.from, ...v.cycle.map((c) => c.name ?? c)].join(' → ') : `${v.from} → ${v.to}`}`);
  }
  return { passed: pass, failed: fail };
}

const only = process.argv[2]; // optional: "deps", "node" or "browser"
ensureSystemPackages();
let passed = 0;
let failed = 0;

if (!only || only === 'deps') {
  const rules = await checkDependencies();
  passed += rules.passed;
  failed += rules.failed;
}

if (!only || only === 'node') {
  // Browser code that must also load in Node (SSR) is tested in `*.node.test.ts`.
  const nodeTests = [
    ...['server', 'shared', 'e2e'].filter((d) => existsSync(join(root, d))).flatMap((d) => findTests(join(root, d), /\.test\.ts$/)),
    ...findTests(join(root, 'client'), /\.node\.test\.ts$/),
  ].map((p) => p.slice(root.length));
  if (nodeTests.length) {
    // A hung test or hook fails after 5 minutes, and a file whose process keeps a handle open
    // (a reconnecting client, a child) is ended once its tests finished: CI never waits forever.
    const guards = ['--test-timeout=300000', '--test-force-exit'];
    const { code, output } = await run('node', ['--import', 'tsx', '--test', '--test-reporter=spec', ...guards, ...nodeTests]);
    const count = (name) => Number(output.match(new RegExp(`ℹ ${name} (\\d+)`))?.[1] ?? 0);
    passed += count('pass');
    failed += count('fail') + count('cancelled');
    if (code !== 0 && count('fail') + count('cancelled') === 0) failed += 1; // crashed before reporting
  }
}

if ((!only || only === 'browser') && existsSync(join(root, 'web-test-runner.config.mjs'))) {
  const { code, output } = await run('npx', ['web-test-runner', '--static-logging']);
  const m = [...output.matchAll(/(\d+) passed, (\d+) failed/g)].at(-1);
  passed += Number(m?.[1] ?? 0);
  failed += Number(m?.[2] ?? 0);
  if (code !== 0 && !Number(m?.[2])) failed += 1;
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
