/**
 * `backjob/redis` is the entry of Redis deployments: it must not load the
 * SQLite default (better-sqlite3 and its native addon), which such an app
 * never uses and may not even have built.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The modules of `package` that loading `entry` (a file of server/) loaded, in a fresh process. */
function loadedBy(entry: string, pkg: string): string[] {
  const url = new URL(entry, import.meta.url).href;
  // Imported CommonJS (better-sqlite3 is) lands in the require cache, whoever imported it.
  const code = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(url)});
    const cache = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify(cache.filter((file) => file.includes(${JSON.stringify(`/node_modules/${pkg}/`)}))));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
  });
  return JSON.parse(out) as string[];
}

describe('entries load what they need only', () => {
  it('backjob (the SQLite default) loads better-sqlite3: the check sees it', () => {
    assert.notDeepEqual(loadedBy('./index.ts', 'better-sqlite3'), []);
  });

  it('backjob/redis loads no module of better-sqlite3', () => {
    assert.deepEqual(loadedBy('./redis.ts', 'better-sqlite3'), []);
  });
});
