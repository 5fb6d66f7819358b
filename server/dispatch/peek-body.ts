/**
 * Reading a request's body without taking it: route dispatch digests the body
 * a signed request brought, in middleware that runs before the app's own body
 * parsers (express.json, express.urlencoded, multer), which must still find
 * every byte there.
 */
import type { IncomingMessage } from 'node:http';

/**
 * Reads the `length` bytes of `req`'s body (its Content-Length, which the
 * caller has already bounded) and puts them back, so the stream reads as if
 * untouched. Resolves with the bytes, or `null` when they cannot be had: the
 * stream is already being read, decoded or over, or the client went away
 * first. Never rejects, and its listener never throws.
 *
 * The stream is read in paused mode from a `'readable'` listener, and the
 * bytes go back with `unshift` synchronously inside that listener: the read
 * that empties an ended stream schedules `'end'` on the next tick, which runs
 * before any promise continuation, so put back any later and a body parser
 * would see an empty, ended stream. With its listener gone the stream is
 * neither flowing nor paused, as a parser expects to find it.
 */
export function peekBody(req: IncomingMessage, length: number): Promise<Buffer | null> {
  if (length === 0) return Promise.resolve(Buffer.alloc(0));
  // Flowing: someone else takes the data as it comes. An encoding: read() would give text, not the bytes.
  if (req.readableFlowing || req.readableEnded || req.destroyed || req.readableEncoding !== null) return Promise.resolve(null);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const settle = (body: Buffer | null) => {
      req.off('readable', onReadable);
      req.off('end', onGone);
      req.off('close', onGone);
      req.off('error', onGone);
      resolve(body);
    };
    const onReadable = () => {
      try {
        for (let chunk: Buffer | null; (chunk = req.read() as Buffer | null) !== null; ) {
          chunks.push(chunk);
          received += chunk.length;
        }
        if (received < length) return;
        const body = Buffer.concat(chunks, received);
        req.unshift(body);
        settle(body);
      } catch {
        // Nothing above should throw; if it ever does, the request must not take the process down.
        settle(null);
      }
    };
    // Ended short of its length, aborted or failed: nothing to digest, and nobody left to read it.
    const onGone = () => settle(null);
    req.on('readable', onReadable);
    req.on('end', onGone);
    req.on('close', onGone);
    req.on('error', onGone);
  });
}
