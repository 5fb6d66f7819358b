/**
 * The live channel's entry points, where the rest of the server imports them:
 * the WebSocket hub (websocket.ts), the SSE transport (sse.ts), and the seam
 * both take (host.ts). How the parts fit: streams.ts (subscriptions,
 * backpressure), session.ts (one connection's messages and limits).
 */
export { LiveHub, attachHub, type HubStats } from './websocket.js';
export { createSseTransport, type SseTransport, type SseOptions } from './sse.js';
export { coalesceProgress } from './coalesce.js';
export type { LiveHost } from './host.js';
