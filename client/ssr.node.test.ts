// Importing the client in Node (SSR, tests) must not throw: Lit's Node build
// shims the DOM just enough, and nothing here touches `window`, `location`
// or `WebSocket` until an element is connected to a document.
import assert from 'node:assert/strict';
import { test } from 'node:test';

test('the client imports in Node and registers its elements', async () => {
  const client = await import('./index.js');
  assert.equal(typeof client.BackjobProgress, 'function');
  assert.equal(typeof client.BackjobLog, 'function');
  assert.equal(typeof client.BackjobLauncher, 'function');
  assert.equal(typeof client.getConnection, 'function');
  assert.equal(customElements.get('backjob-progress'), client.BackjobProgress);
  assert.equal(customElements.get('backjob-log'), client.BackjobLog);
  assert.equal(customElements.get('backjob-launcher'), client.BackjobLauncher);
});

test('the elements can be constructed in Node without a document', async () => {
  const { BackjobProgress, BackjobLog, BackjobLauncher } = await import('./index.js');
  const progress = new BackjobProgress();
  progress.jobId = 'abc';
  assert.equal(progress.cancelable, false);
  assert.equal(new BackjobLog().maxLines, 1000);
  assert.equal(new BackjobLauncher().basePath, '/backjob');
});

test('the elements render on the server as Lit SSR does it, without opening a connection', async () => {
  const { BackjobProgress, BackjobLog, BackjobLauncher } = await import('./index.js');
  // Lit SSR sets properties, then calls willUpdate() and render(); an element
  // rendered on the server is never connected to a document.
  for (const element of [new BackjobProgress(), new BackjobLog(), new BackjobLauncher()]) {
    Object.assign(element, { jobId: 'abc', token: 't' });
    const lifecycle = element as unknown as { willUpdate(changed: Map<string, unknown>): void; render(): unknown };
    assert.doesNotThrow(() => {
      lifecycle.willUpdate(new Map([['jobId', undefined]]));
      lifecycle.render();
    }, element.localName);
  }
});

test('formatDuration', async () => {
  const { formatDuration } = await import('./index.js');
  assert.equal(formatDuration(0), '0:00');
  assert.equal(formatDuration(61_000), '1:01');
  assert.equal(formatDuration(3_725_000), '1:02:05');
  assert.equal(formatDuration(-5), '0:00');
});
