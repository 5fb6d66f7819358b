/**
 * What the page's connection (connection.ts) speaks through: a WebSocket, or
 * an SSE stream behind the same small interface (sse-socket.ts). Either way a
 * message is one JSON object of the protocol (docs/protocol.md).
 */

/** The part of the browser's `WebSocket` the connection uses (the `ws` package's client fits too, and so does `SseSocket`). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

/** A `WebSocket` constructor: the browser's, or one injected for Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * Which transport a connection uses: `auto` (the default) tries the WebSocket
 * and falls back to SSE when sockets do not open; `websocket` and `sse` use only that one.
 */
export type TransportChoice = 'auto' | 'websocket' | 'sse';

const TRANSPORTS: readonly TransportChoice[] = ['auto', 'websocket', 'sse'];

/** Throws for a `transport` option that is none of them. */
export function checkTransport(transport: unknown): void {
  if (transport !== undefined && !TRANSPORTS.includes(transport as TransportChoice)) {
    throw new TypeError(`Expected \`transport\` to be one of ${TRANSPORTS.join(', ')}`);
  }
}

/** `readyState` values, as the WebSocket's. */
export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSED = 3;
