/**
 * Response bodies a proxy compressed. Requests ask for `Accept-Encoding: identity` (EWS responses
 * are small, a GetStreamingEvents response must not sit in a compressor's buffer, and Exchange
 * itself does not compress unasked), but a proxy or load balancer may compress anyway: gzip,
 * deflate and br are decoded through `node:zlib` before the incremental parser, chunk by chunk, so
 * a compressed GetStreamingEvents response still delivers each envelope as soon as its bytes are
 * decoded. Any other encoding is an {@link EwsContentEncodingError} naming it.
 *
 * @packageDocumentation
 */
import type { IncomingMessage } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { EwsContentEncodingError, EwsParseError } from '../errors.js';

/** The request header that asks for an uncompressed body. */
export const ACCEPT_IDENTITY = { 'Accept-Encoding': 'identity' } as const;

function decoderFor(coding: string): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  switch (coding) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      // RFC 9110 `deflate` is zlib-wrapped; some servers send it raw: `createUnzip` would not take raw.
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return undefined;
  }
}

/**
 * The body of `res`, decoded as its `Content-Encoding` says (codings applied in order are undone
 * in reverse). Returns `res` itself when nothing needs decoding.
 *
 * Errors: an unknown coding throws {@link EwsContentEncodingError} (and destroys `res`). The
 * returned stream emits zlib's error for a body that does not decode (turn it into a typed one with
 * {@link bodyDecodeError}) and the premature-close error when the response was cut short;
 * destroying it destroys `res`.
 */
export function decodedBody(res: IncomingMessage): Readable {
  const header = res.headers['content-encoding'];
  if (header === undefined) return res;
  const codings = header
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return res;
  const decoders = codings.reverse().map((coding) => ({ coding, decoder: decoderFor(coding) }));
  const unknown = decoders.find((d) => d.decoder === undefined);
  if (unknown !== undefined) {
    res.destroy();
    throw new EwsContentEncodingError(header);
  }
  let body: Readable = res;
  for (const { decoder } of decoders) {
    const stage = decoder as NonNullable<typeof decoder>;
    // Errors of both ends reach the reader through the last stage (see bodyDecodeError).
    pipeline(body, stage, () => undefined);
    body = stage;
  }
  encodings.set(body, header);
  return body;
}

const encodings = new WeakMap<Readable, string>();

/**
 * The typed error for a failure of a decoded body, when it is one of the decoder's (corrupt or
 * truncated compressed data): an {@link EwsParseError} naming the `Content-Encoding`. `undefined`
 * for other failures (a cut connection), and for bodies {@link decodedBody} did not wrap.
 */
export function bodyDecodeError(body: Readable, error: Error): EwsParseError | undefined {
  const encoding = encodings.get(body);
  const code = (error as NodeJS.ErrnoException).code;
  if (encoding === undefined || code === undefined) return undefined;
  if (!code.startsWith('Z_') && !code.startsWith('ERR_BROTLI') && code !== 'ERR__ERROR') return undefined;
  return new EwsParseError(`The response body (Content-Encoding ${JSON.stringify(encoding.slice(0, 60))}) could not be decoded (${code})`, { cause: error });
}
