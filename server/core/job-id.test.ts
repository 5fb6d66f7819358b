import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JOB_ID_PATTERN } from '../../shared/jobs.js';
import { newJobId } from './job-id.js';

describe('newJobId', () => {
  it('makes ids every door accepts', () => {
    for (const now of [0, 1, Date.now(), 2 ** 48 - 1]) assert.match(newJobId(now), JOB_ID_PATTERN);
  });

  it('sorts ids by creation time, in byte order', () => {
    const times = [0, 1, 63, 64, 65, 4095, 4096, 1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000, 2 ** 48 - 1];
    const ids = times.map((t) => newJobId(t));
    // Buffer.compare: the byte order SQLite's BINARY collation uses.
    assert.deepEqual([...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), ids);
  });

  it('keeps 84 random bits after the time', () => {
    const now = Date.now();
    const ids = Array.from({ length: 1000 }, () => newJobId(now));
    assert.equal(new Set(ids.map((id) => id.slice(0, 8))).size, 1);
    assert.equal(new Set(ids).size, 1000);
    assert.equal(ids[0]!.length, 8 + 14);
  });
});
