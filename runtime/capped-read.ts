// Reading a downloaded body with a ceiling: a bundle, shard or CRL fetched from a URL is read
// into memory, so whoever answers that URL (or sits on an http:// path to it: CRLs are served
// over plain HTTP, and a signed bundle may be) could otherwise send gigabytes and take the
// gateway down with an out-of-memory crash before any signature or digest is checked. The
// download is cut as soon as it passes the ceiling.
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw } from 'node:zlib';

export class TooLarge extends Error {
  override name = 'TooLarge';
}

/** The whole body, or TooLarge as soon as it passes `max` bytes (the rest is not read). */
export async function readCapped(body: AsyncIterable<Uint8Array>, max: number): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream (and closes its connection).
    if (size > max) throw new TooLarge(`it is larger than ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** The codings a crl_url fetch asks for (Accept-Encoding) and decodes. */
export const CRL_ACCEPT_ENCODING = 'gzip, deflate, br';

/**
 * The body as its Content-Encoding says it was encoded, decoded (gzip, deflate, br; node:zlib's
 * streams run in libuv's thread pool, not on this thread), or TooLarge as soon as the encoded
 * bytes or the decoded ones pass `max`: a few KiB of gzip can decode to gigabytes (a zip bomb),
 * so the ceiling is on what is kept, not on what crossed the network. Throws Error naming the
 * coding when it is not one of those or does not decode.
 */
export async function readDecoded(body: AsyncIterable<Uint8Array>, contentEncoding: string | string[] | undefined, max: number): Promise<Buffer> {
  const named = (Array.isArray(contentEncoding) ? contentEncoding.join(',') : (contentEncoding ?? '')).toLowerCase();
  const codings = named
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return readCapped(body, max);
  if (codings.length > 1 || !(codings[0] in DECODERS))
    throw new Error(`its Content-Encoding (${named}) is not one this gateway decodes: one of ${CRL_ACCEPT_ENCODING}, as its Accept-Encoding says`);
  const coding = codings[0];
  const input = encodedUpTo(body, max, coding)[Symbol.asyncIterator]();
  const first = await input.next();
  if (first.done) return Buffer.alloc(0);
  const decoder = DECODERS[coding](first.value);
  let decoded: Buffer = Buffer.alloc(0);
  try {
    await pipeline(
      (async function* () {
        try {
          yield first.value;
          for (let next = await input.next(); !next.done; next = await input.next()) yield next.value;
        } finally {
          // Cut short (the decoded ceiling, a decoding error): leaving the body's loop closes its connection.
          await input.return?.();
        }
      })(),
      decoder,
      async (out: AsyncIterable<Uint8Array>) => {
        decoded = await readCapped(out, max).catch((err: Error) => {
          throw err instanceof TooLarge
            ? new TooLarge(`its ${coding} body decodes to more than ${max} bytes (a zip bomb, or a CRL past the ceiling): not decoded further`)
            : err;
        });
      },
    );
  } catch (err) {
    if (err instanceof TooLarge) throw err;
    throw new Error(`its ${coding} body does not decode (${(err as Error).message})`);
  }
  return decoded;
}

/** The encoded body, or TooLarge past `max` (deflate's empty blocks decode to nothing: the input is bounded too). */
async function* encodedUpTo(body: AsyncIterable<Uint8Array>, max: number, coding: string): AsyncIterable<Uint8Array> {
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > max) throw new TooLarge(`its ${coding} body is larger than ${max} bytes`);
    yield chunk;
  }
}

const DECODERS: Record<string, (first: Uint8Array) => Transform> = {
  gzip: () => createGunzip(),
  'x-gzip': () => createGunzip(),
  // HTTP's deflate is zlib-wrapped (RFC 9110 8.4.1.2), but some servers send raw deflate: a zlib
  // header is a CMF byte of method 8 whose 16 bits with the FLG byte are a multiple of 31.
  deflate: (first) => (first.length >= 2 && (first[0] & 0x0f) === 8 && ((first[0] << 8) | first[1]) % 31 === 0 ? createInflate() : createInflateRaw()),
  br: () => createBrotliDecompress(),
};
