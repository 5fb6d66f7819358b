/** The error registry holds every code the sources throw, record or send. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BackjobError, ERROR_STATUS, ERRORS, isKnownErrorCode } from './errors.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Product sources: tests, harnesses and fixtures may make up codes of their own. */
function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.ts$/.test(entry.name) && !/\.test\.ts$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name))
    .filter((file) => !/[\\/](testing|fuzz)[\\/]/.test(file));
}

describe('the error registry', () => {
  it('holds every BACKJOB_ERR_ code in server/, shared/ and client/ (BACKJOB_ERR_HTTP_<status> is a pattern)', () => {
    const missing: string[] = [];
    for (const file of ['server', 'shared', 'client'].flatMap(sources)) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/BACKJOB_ERR_[A-Z0-9_]*[A-Z0-9]/g)) {
        const code = match[0];
        // The family in template form: `BACKJOB_ERR_HTTP_${status}`, or `BACKJOB_ERR_HTTP_<status>` in prose.
        if (code === 'BACKJOB_ERR_HTTP' && /^_(\$\{|<|\\d)/.test(text.slice(match.index + code.length))) continue;
        if (!isKnownErrorCode(code)) missing.push(`${code} (${relative(root, file)})`);
      }
    }
    assert.deepEqual([...new Set(missing)], []);
  });

  it('the scan finds codes at all: it is not vacuous', () => {
    const text = readFileSync(join(root, 'server/core/runner.ts'), 'utf8');
    assert.ok(text.includes('BACKJOB_ERR_STALLED'));
    assert.equal(isKnownErrorCode('BACKJOB_ERR_MADE_UP'), false);
    assert.equal(isKnownErrorCode('BACKJOB_ERR_HTTP_403'), true);
  });

  it('gives every code a status and a doc line, and errors their status', () => {
    for (const [code, entry] of Object.entries(ERRORS)) {
      assert.ok(Number.isInteger(entry.status) && entry.status >= 400 && entry.status < 600, code);
      assert.ok(entry.doc.length > 10, code);
      assert.equal(new BackjobError(code as keyof typeof ERRORS, 'x').status, entry.status);
    }
    assert.equal(ERROR_STATUS.BACKJOB_ERR_QUOTA, 429);
    assert.equal(new BackjobError('BACKJOB_ERR_HTTP_403', 'x').status, 500);
  });
});
