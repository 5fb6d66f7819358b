/**
 * The event writer's group commit on a real store: what it coalesces (the
 * latest progress, the latest move of one step, the latest news of each
 * child) and what it keeps apart.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { ChildSnapshot } from '../../shared/protocol.js';
import { memory } from '../backends/local/memory.js';
import { sampleJob } from '../testing/sample-job.js';
import { EventWriter } from './event-writer.js';

async function writerWithJob() {
  const backend = memory();
  const errors: unknown[] = [];
  const writer = new EventWriter(backend.store, backend.bus, (error) => errors.push(error));
  const { job } = await backend.store.create(sampleJob());
  return { backend, writer, job, errors };
}

const child = (id: string, progress: number, status: ChildSnapshot['status'] = 'running'): ChildSnapshot => ({ id, name: 'part', weight: 1, status, progress });

it('keeps the latest news of each child per write, in the place its first news took', async () => {
  const { backend, writer, job, errors } = await writerWithJob();
  void writer.write(job.id, [{ type: 'job:child', child: child('a', 10) }]);
  void writer.write(job.id, [{ type: 'job:child', child: child('b', 5) }, { type: 'job:log', line: 'between' }]);
  void writer.write(job.id, [{ type: 'job:child', child: child('a', 60) }]);
  await writer.write(job.id, [{ type: 'job:child', child: child('b', 100, 'completed') }]);
  const stored = (await backend.store.eventsAfter(job.id, 1, 100)).map((e) => (e.type === 'job:child' ? `${e.child.id}:${e.child.progress}` : e.type));
  assert.deepEqual(stored, ['a:60', 'b:100', 'job:log']);
  const row = (await backend.store.get(job.id))!;
  assert.equal(row.progress, 80, 'a at 60, b done');
  assert.deepEqual(errors, []);
});

it('merges moves of one step in one state, and keeps a change of step or state apart', async () => {
  const { backend, writer, job } = await writerWithJob();
  void writer.write(job.id, [{ type: 'job:steps', steps: [{ name: 'one' }, { name: 'two' }] }]);
  void writer.write(job.id, [{ type: 'job:step', name: 'one', progress: 10, text: 'first' }]);
  void writer.write(job.id, [{ type: 'job:step', name: 'one', progress: 20 }]);
  void writer.write(job.id, [{ type: 'job:step', name: 'one', state: 'completed' }]);
  void writer.write(job.id, [{ type: 'job:step', name: 'two', progress: 1 }]);
  await writer.write(job.id, [{ type: 'job:step', name: 'two', text: 'second' }]);
  const steps = (await backend.store.eventsAfter(job.id, 1, 100)).flatMap((e) => (e.type === 'job:step' ? [[e.name, e.state ?? 'running', e.progress, e.text]] : []));
  assert.deepEqual(steps, [
    ['one', 'running', 20, 'first'],
    ['one', 'completed', undefined, undefined],
    ['two', 'running', 1, 'second'],
  ]);
  const row = (await backend.store.get(job.id))!;
  assert.deepEqual(row.steps?.map((s) => [s.state, s.progress]), [['completed', 20], ['running', 1]]);
  assert.equal(row.text, 'second');
});
