/**
 * The page's side of the server's rate limit: messages go out at once while
 * the budget allows, else in turn, and nothing goes out on a new socket
 * before its hello said how fast this page may send.
 */
import { OPEN, type WebSocketLike } from './transport.js';

/** Messages per second a server allows when its hello does not say: the server's default. */
const DEFAULT_RATE_LIMIT = 50;
/**
 * The share of the server's limit the page uses. The server drops frames
 * past its limit unread (and closes a socket that keeps on), so the page
 * stays well inside it whatever its timers' drift.
 */
const RATE_SHARE = 0.8;

export class Outbox {
  /** Messages waiting for the rate budget, oldest first; `sent` runs once one is on the wire. */
  private queue: Array<{ data: string; sent?: () => void }> = [];
  /** Messages per second this page sends on the current socket (a token bucket of that many). */
  private rate = DEFAULT_RATE_LIMIT * RATE_SHARE;
  private tokens = this.rate;
  private refilledAt = 0;
  private timer?: ReturnType<typeof setTimeout>;
  /**
   * The current socket's hello arrived. Until then nothing is sent: the
   * server's limit may be lower than the pace this page assumes, and a burst
   * past it on a fresh socket is dropped unread and closes the socket (1008).
   * Every BackJob server says hello first.
   */
  private greeted = false;

  constructor(private readonly socket: () => WebSocketLike | null) {}

  push(data: string, sent?: () => void): void {
    this.queue.push({ data, sent });
    this.flush();
  }

  /** The hello arrived: the server's limit, if it says one, sets the pace. */
  greet(rateLimit: unknown): void {
    if (typeof rateLimit === 'number' && rateLimit >= 1) {
      this.rate = Math.max(1, Math.floor(rateLimit * RATE_SHARE));
      this.tokens = Math.min(this.tokens, this.rate);
    }
    this.greeted = true;
    this.refilledAt = Date.now();
    this.flush();
  }

  /** A new socket: nothing waits, nothing goes out before its hello, and the server's bucket for it starts full. */
  reset(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.greeted = false;
    this.queue = [];
    this.tokens = this.rate;
    this.refilledAt = Date.now();
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const socket = this.socket();
    if (!socket || socket.readyState !== OPEN || !this.greeted) return;
    const now = Date.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.refilledAt) / 1000) * this.rate);
    this.refilledAt = now;
    while (this.queue.length > 0 && this.tokens >= 1) {
      const { data, sent } = this.queue.shift()!;
      this.tokens -= 1;
      socket.send(data);
      sent?.();
    }
    if (this.queue.length > 0) this.timer = setTimeout(() => this.flush(), Math.ceil(((1 - this.tokens) / this.rate) * 1000));
  }
}
