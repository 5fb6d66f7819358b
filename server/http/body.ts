/**
 * Reading a JSON request body, bounded, the same under every framework: the
 * API reads its own bodies (only `POST /jobs` has one) so that the size
 * limit, the accepted encodings and charsets and every refusal are the API's,
 * not whichever parser the app happens to run.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { BackjobError } from '../errors.js';

/** What a body may be compressed with (`Content-Encoding`). */
const DECODERS: Record<string, (() => NodeJS.ReadWriteStream) | undefined> = {
  identity: undefined,
  gzip: createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

function tooLarge(limit: number): BackjobError {
  return new BackjobError('BACKJOB_ERR_TOO_LARGE', `The request body exceeds ${limit / 1024}kb`, { status: 413 });
}

function unsupported(message: string): BackjobError {
  return new BackjobError('BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE', message, { status: 415 });
}

/** The charset a JSON body is in: any UTF the platform decodes, else a 415. */
function decoderOf(contentType: string | undefined): TextDecoder {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(contentType ?? '')?.[1]?.toLowerCase() ?? 'utf-8';
  if (!charset.startsWith('utf-')) throw unsupported(`Unsupported charset "${charset.toUpperCase()}"`);
  try {
    return new TextDecoder(charset, { fatal: true });
  } catch {
    throw unsupported(`Unsupported charset "${charset.toUpperCase()}"`);
  }
}

/**
 * Reads and parses `req`'s JSON body, at most `limit` bytes once decoded.
 * `undefined` for an empty body. Throws a `BackjobError`: 413 past the limit
 * (refused from `Content-Length` before a byte is read when it says so), 415
 * for an encoding or charset it cannot read, 400 for a corrupt or cut body
 * and for anything that is not a JSON object or array. `stream` is where the
 * bytes come from, when a framework has them in a stream of its own.
 * `limitOf` holds the parsed body to a limit of its kind (at most `limit`):
 * past it, the same 413 as if that limit had been the only one.
 */
export async function readJsonBody(req: IncomingMessage, limit: number, stream: Readable = req, limitOf?: (body: unknown) => number): Promise<unknown> {
  const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (!(encoding in DECODERS)) throw unsupported(`Unsupported content encoding "${encoding}"`);
  const decoder = decoderOf(req.headers['content-type']);
  const declared = Number(req.headers['content-length']);
  if (encoding === 'identity' && declared > limit) throw tooLarge(limit);

  const decode = DECODERS[encoding];
  const source: Readable = decode ? (stream.pipe(decode()) as unknown as Readable) : stream;
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const fail = (error: BackjobError) => {
      if (failed) return;
      failed = true;
      source.off('data', onData);
      if (source !== stream) {
        stream.unpipe();
        source.destroy();
      }
      // The rest is read and dropped before the answer, so that a kept-alive connection stays usable.
      stream.resume();
      if (stream.readableEnded || stream.destroyed) reject(error);
      else stream.once('end', () => reject(error)).once('close', () => reject(error));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return fail(tooLarge(limit));
      chunks.push(chunk);
    };
    source.on('data', onData);
    source.once('end', () => failed || resolve(Buffer.concat(chunks, size)));
    source.once('error', () =>
      fail(new BackjobError('BACKJOB_ERR_INVALID', 'The request body could not be read (cut short, or not in its Content-Encoding)', { status: 400 })),
    );
    if (source !== stream) stream.once('error', () => source.destroy());
    // A client gone mid-body: nobody is left to answer, but the promise must settle.
    stream.once('close', () => stream.readableEnded || fail(new BackjobError('BACKJOB_ERR_INVALID', 'The request body was cut short', { status: 400 })));
  });
  if (body.length === 0) return undefined;
  let text: string;
  try {
    text = decoder.decode(body);
  } catch {
    throw new BackjobError('BACKJOB_ERR_INVALID', 'The request body is not valid text in its charset', { status: 400 });
  }
  // Like any strict JSON parser of a request: an object or an array, never a bare string or number.
  if (!/^[\s\uFEFF]*[[{]/.test(text)) throw new BackjobError('BACKJOB_ERR_INVALID', 'The request body is not a JSON object', { status: 400 });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    throw new BackjobError('BACKJOB_ERR_INVALID', 'The request body is not valid JSON', { status: 400 });
  }
  const own = limitOf?.(parsed);
  if (own !== undefined && body.length > own) throw tooLarge(own);
  return parsed;
}
