/**
 * The live channel over Server-Sent Events, behind the WebSocket's interface:
 * a `fetch()` stream of `GET {basePath}/events` (so it can carry the page's
 * headers and its own `Last-Event-ID`), and one `POST {basePath}/events/<stream>`
 * per client message, in order. Framing: docs/protocol.md.
 */
import { extraHeaders } from './config.js';
import { credentialsFor } from './endpoints.js';
import { PROTOCOL_VERSION } from '../shared/protocol.js';
import { CLOSED, CONNECTING, OPEN, type WebSocketLike } from './transport.js';

/** A job the stream subscribes to as it opens, resumed after `after`. */
export interface StreamJob {
  job: string;
  token?: string;
  after: number;
}

/** Jobs the stream's URL carries at most (the server's limit); more are subscribed by POST once it is open. */
export const MAX_STREAM_JOBS = 100;
/** Heartbeats a stream may miss before it is taken for dead (a proxy that holds a dead response open). */
const MISSED_BEATS = 3;
/** How long a stream may stay silent before its hello said how often the server beats. */
const FIRST_SILENCE_MS = 45_000;

export class SseSocket implements WebSocketLike {
  readyState = CONNECTING;
  onopen: ((event: any) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: any) => void) | null = null;
  onerror: ((event: any) => void) | null = null;
  private readonly abort = new AbortController();
  private stream: string | undefined;
  private readonly queue: string[] = [];
  private posting = false;
  private silence?: ReturnType<typeof setTimeout>;
  private silenceMs = FIRST_SILENCE_MS;

  /** `jobs` are subscribed by the stream's own request (at most {@link MAX_STREAM_JOBS}). */
  constructor(
    private readonly url: string,
    jobs: StreamJob[],
  ) {
    void this.run(jobs.slice(0, MAX_STREAM_JOBS));
  }

  send(data: string): void {
    if (this.readyState !== OPEN) throw new Error('The stream is not open');
    this.queue.push(data);
    void this.post();
  }

  close(): void {
    this.end({ code: 1000, wasClean: true });
  }

  private async run(jobs: StreamJob[]): Promise<void> {
    try {
      const target = new URL(this.url);
      // The protocol version this client reads (a server from before it answers in version 1, which reads the same).
      target.searchParams.set('v', String(PROTOCOL_VERSION));
      for (const { job } of jobs) target.searchParams.append('job', job);
      const headers: Record<string, string> = { ...(await extraHeaders()), accept: 'text/event-stream' };
      // Tokens in a header, in the query's order, so no access log keeps them.
      if (jobs.some((job) => job.token)) headers['x-backjob-token'] = jobs.map((job) => job.token ?? '').join(',');
      const resumed = jobs.filter((job) => job.after > 0).map((job) => `${job.job}:${job.after}`);
      if (resumed.length > 0) headers['last-event-id'] = resumed.join(',');
      this.watchSilence();
      const response = await fetch(target, { headers, credentials: credentialsFor(this.url), cache: 'no-store', signal: this.abort.signal });
      if (!response.ok || !response.body || !/^text\/event-stream/i.test(response.headers.get('content-type') ?? '')) {
        return this.end({ code: 1006, status: response.status });
      }
      if (this.readyState !== CONNECTING) return;
      this.readyState = OPEN;
      this.onopen?.({});
      await this.read(response.body);
      this.end({ code: 1006 });
    } catch {
      this.end({ code: 1006 });
    }
  }

  /** Parses the event stream: `data:` lines make a message, a blank line ends it, `:` lines are heartbeats. */
  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let data: string[] = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done || this.readyState !== OPEN) return;
      this.watchSilence();
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) this.dispatch(data.join('\n'));
          data = [];
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
        // `id:` needs no keeping: the connection resumes from the seqs it received. `retry:` is for EventSource.
      }
    }
  }

  private dispatch(data: string): void {
    if (this.readyState !== OPEN) return;
    // The hello names the stream the POSTs go to and how often the server beats.
    if (this.stream === undefined && data.includes('"hello"')) {
      try {
        const hello = JSON.parse(data) as { type?: string; stream?: unknown; heartbeat?: unknown };
        if (hello.type === 'hello' && typeof hello.stream === 'string') this.stream = hello.stream;
        if (typeof hello.heartbeat === 'number' && hello.heartbeat > 0) this.silenceMs = hello.heartbeat * MISSED_BEATS;
      } catch {
        // Not JSON: the connection ignores it too.
      }
    }
    this.onmessage?.({ data });
  }

  /** Posts the queued messages one at a time, so they arrive in the order they were sent. */
  private async post(): Promise<void> {
    if (this.posting || this.stream === undefined) return;
    this.posting = true;
    try {
      while (this.queue.length > 0 && this.readyState === OPEN) {
        const body = this.queue.shift()!;
        const url = `${this.url.replace(/\?.*$/, '')}/${this.stream}${new URL(this.url).search}`;
        const response = await fetch(url, {
          method: 'POST',
          headers: { ...(await extraHeaders()), 'content-type': 'application/json' },
          body,
          credentials: credentialsFor(this.url),
          signal: this.abort.signal,
        });
        // 429: the server said so on the stream. 404: the stream is gone here (another process, a restart).
        if (response.status === 404) return this.end({ code: 1006, status: 404 });
      }
    } catch {
      this.end({ code: 1006 });
    } finally {
      this.posting = false;
    }
  }

  private watchSilence(): void {
    clearTimeout(this.silence);
    this.silence = setTimeout(() => this.end({ code: 1006, reason: 'No heartbeat' }), this.silenceMs);
  }

  private end(event: { code: number; wasClean?: boolean; status?: number; reason?: string }): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    clearTimeout(this.silence);
    this.abort.abort();
    // Like a WebSocket's: the close event comes after the call that caused it.
    queueMicrotask(() => this.onclose?.(event));
  }
}
