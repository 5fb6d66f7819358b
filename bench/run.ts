/**
 * `npm run bench`: runs every benchmark suite in sequence and prints one
 * table of figures. `npm run bench -- core live` runs only the named suites;
 * `BENCH_QUICK=1 npm run bench` runs smaller sizes (a few minutes in all).
 * Ratios against a hand-written baseline measured in the same run are the
 * figures to compare across runs and machines; absolute ones move with load.
 *
 * To add a suite, write `bench/<name>.ts` exporting an async function that
 * returns `Figure[]` (`{ name, value, unit }`), and add ONE line to `SUITES`
 * below. Suites load lazily, so a suite that needs something absent (say,
 * redis-server) costs nothing when it is not selected.
 */
import { performance } from 'node:perf_hooks';

import type { Figure } from './kit.js';

/** A suite: its name (for selection and the table) and how to run it. */
interface Suite {
  name: string;
  run(): Promise<Figure[]>;
}

const SUITES: Suite[] = [
  { name: 'core', run: async () => (await import('./core.js')).benchCore() },
  { name: 'live', run: async () => (await import('./live.js')).benchLive() },
  { name: 'redis', run: async () => (await import('./redis.js')).benchRedis() },
  { name: 'scale', run: async () => (await import('./scale.js')).benchScale() },
  { name: 'fairness', run: async () => (await import('./fairness.js')).benchFairness() },
  { name: 'families', run: async () => (await import('./families.js')).benchFamilies() },
];

const selected = process.argv.slice(2);
const unknown = selected.filter((name) => !SUITES.some((suite) => suite.name === name));
if (unknown.length) {
  console.error(`Unknown suite ${unknown.join(', ')}; known: ${SUITES.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

const rows: Array<[suite: string, name: string, value: string, unit: string]> = [];
let failed = false;
for (const suite of SUITES.filter((s) => selected.length === 0 || selected.includes(s.name))) {
  const began = performance.now();
  process.stderr.write(`running ${suite.name}…\n`);
  try {
    for (const figure of await suite.run()) {
      rows.push([suite.name, figure.name, figure.value.toLocaleString('en-US', { maximumFractionDigits: 2 }), figure.unit]);
    }
    process.stderr.write(`  ${suite.name} done in ${((performance.now() - began) / 1000).toFixed(1)} s\n`);
  } catch (error) {
    failed = true;
    rows.push([suite.name, `FAILED: ${error instanceof Error ? error.message : String(error)}`, '', '']);
  }
}

const widths = [0, 1, 2, 3].map((i) => Math.max(...[['suite', 'figure', 'value', 'unit'], ...rows].map((row) => row[i]!.length)));
const line = (row: string[]) => row.map((cell, i) => (i === 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
console.log(`\nnode ${process.version}, ${process.platform}/${process.arch}\n`);
console.log(line(['suite', 'figure', 'value', 'unit']));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of rows) console.log(line(row));
process.exit(failed ? 1 : 0);
