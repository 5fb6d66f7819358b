/**
 * The family part of the store contract (run by `runStoreContract` on every
 * store): children keep their parent and root, `list({ parent })` finds them,
 * the fold keeps a child's end final on its parent's row, and retention
 * removes a family as one.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { ChildSnapshot } from '../../shared/protocol.js';
import type { JobEventData, JobStore } from '../types.js';
import { toSnapshot } from '../core/records.js';
import { sampleJob } from './sample-job.js';

/** Registers the family tests; `store()` is the current test's store. */
export function familyContract(store: () => JobStore): void {
  async function append(jobId: string, events: JobEventData[]) {
    const [result] = await store().append([{ jobId, events }]);
    return result!;
  }

  async function family() {
    const root = (await store().create(sampleJob())).job;
    const child = (await store().create(sampleJob({ parent: root.id, root: root.id, spawn: 0 }))).job;
    const other = (await store().create(sampleJob({ parent: root.id, root: root.id, spawn: 1 }))).job;
    const grandchild = (await store().create(sampleJob({ parent: child.id, root: root.id, spawn: 0 }))).job;
    return { root, child, other, grandchild };
  }

  it('keeps a child’s parent, root and spawn index, and lists a parent’s children newest first', async () => {
    const { root, child, other, grandchild } = await family();
    assert.equal(child.parent, root.id);
    assert.equal(child.root, root.id);
    assert.equal(other.spawn, 1);
    assert.equal((await store().get(grandchild.id))?.root, root.id);
    assert.equal(toSnapshot(child).parent, root.id);
    assert.equal('root' in toSnapshot(child), false, 'the root stays on the server');
    assert.deepEqual((await store().list({ parent: root.id })).map((job) => job.id), [other.id, child.id]);
    assert.deepEqual((await store().list({ parent: child.id })).map((job) => job.id), [grandchild.id]);
    assert.deepEqual(await store().list({ parent: grandchild.id }), []);
    assert.deepEqual((await store().list({ parent: root.id, status: 'waiting', limit: 1 })).map((job) => job.id), [other.id]);
    assert.deepEqual(await store().list({ parent: root.id, owner: 'nobody-else' }), []);
    const loner = (await store().create(sampleJob())).job;
    assert.deepEqual((await store().list({ parent: null })).map((job) => job.id), [loner.id, root.id], 'parent: null lists roots only');
    assert.deepEqual((await store().list({ parent: null, owner: 'alice', limit: 1 })).map((job) => job.id), [loner.id]);
  });

  it('folds children into the parent’s row, a child’s end staying final there', async () => {
    const { root, child } = await family();
    const snap = (status: ChildSnapshot['status'], progress: number): ChildSnapshot => ({ id: child.id, name: child.name, weight: 1, status, progress });
    await append(root.id, [{ type: 'job:start', attempt: 1 }, { type: 'job:child', child: snap('running', 40) }]);
    assert.equal((await store().get(root.id))?.progress, 40);
    await append(root.id, [{ type: 'job:child', child: snap('completed', 100) }, { type: 'job:child', child: snap('running', 50) }]);
    const row = (await store().get(root.id))!;
    assert.equal(row.children?.[0]?.status, 'completed', 'news written late cannot revive an ended child');
    assert.equal(row.progress, 100);
    assert.deepEqual(toSnapshot(row).children, row.children);
  });

  it('removes a family as one, by its root, and never a child of a live root on its own', async () => {
    const { root, child, other, grandchild } = await family();
    for (const job of [grandchild, child, other]) await append(job.id, [{ type: 'job:completed' }]);
    const later = Date.now() + 60_000;
    assert.equal(await store().deleteEnded({ completedBefore: later, endedBefore: later }), 0, 'the root still waits');
    assert.ok(await store().get(child.id));
    await append(root.id, [{ type: 'job:failed', reason: 'x' }]);
    assert.equal(await store().deleteEnded({ completedBefore: later }), 0, 'completedBefore: the root failed, so its family stays');
    assert.equal(await store().deleteEnded({ endedBefore: later }), 4);
    for (const job of [root, child, other, grandchild]) {
      assert.equal(await store().get(job.id), null);
      assert.deepEqual(await store().eventsAfter(job.id, 0, 10), []);
    }
    assert.deepEqual(await store().list({ parent: root.id }), []);
  });

  it('keeps a family while any descendant is still live, even when its root ended long ago', async () => {
    const { root, child, other, grandchild } = await family();
    await append(root.id, [{ type: 'job:canceled', reason: 'x' }]);
    await append(other.id, [{ type: 'job:canceled', reason: 'x' }]);
    await append(grandchild.id, [{ type: 'job:start', attempt: 1 }]);
    await append(child.id, [{ type: 'job:canceled', reason: 'x' }]);
    assert.equal(await store().deleteEnded({ endedBefore: Number.MAX_SAFE_INTEGER }), 0);
    assert.equal((await store().get(grandchild.id))?.status, 'running');
    assert.ok(await store().get(root.id));
    await append(grandchild.id, [{ type: 'job:completed' }]);
    assert.equal(await store().deleteEnded({ endedBefore: Number.MAX_SAFE_INTEGER }), 4);
  });
}
