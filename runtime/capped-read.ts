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

/**
 * A ceiling several downloads share: a sharded bundle's shards are read eight at a time, each
 * under the single-file ceiling, so without one for the set a manifest naming shards whose server
 * never ends them held 8 x 512 MiB in memory at once (docs/security.md section 54).
 */
export class ByteBudget {
  constructor(
    private left: number,
    /** Why a download that passes it is refused, for messages. */
    readonly refusal: string,
  ) {}

  /** Counts `n` bytes; false once the budget is spent. */
  take(n: number): boolean {
    this.left -= n;
    return this.left >= 0;
  }
}

/** The whole body, or TooLarge as soon as it passes `max` bytes or `shared` (the rest is not read). */
export async function readCapped(body: AsyncIterable<Uint8Array>, max: number, shared?: ByteBudget): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream (and closes its connection).
    if (size > max) throw new TooLarge(`it is larger than ${max} bytes`);
    if (shared !== undefined && !shared.take(chunk.byteLength)) throw new TooLarge(shared.refusal);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** The size of a block readBlocks fills: copying one chunk into it is all a chunk costs this thread. */
const BLOCK_BYTES = 4 * 1024 * 1024;

/**
 * The whole body as blocks of up to 4 MiB, each the whole of its own ArrayBuffer (so it can be
 * transferred to a worker thread), or TooLarge (with `tooLarge`'s words) as soon as it passes
 * `max`. Each chunk is copied into the current block as it comes: joining a 39 MB body in one
 * Buffer.concat held the event loop ~100 ms (2 cores under load); the CRL thread joins the
 * blocks (runtime/crl-worker.ts).
 */
export async function readBlocks(body: AsyncIterable<Uint8Array>, max: number, tooLarge = `it is larger than ${max} bytes`): Promise<Uint8Array[]> {
  const blocks: Uint8Array[] = [];
  let block: Uint8Array | null = null;
  let used = 0;
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream (and closes its connection).
    if (size > max) throw new TooLarge(tooLarge);
    for (let at = 0; at < chunk.byteLength; ) {
      if (block === null || used === block.length) {
        block = new Uint8Array(Math.min(BLOCK_BYTES, max));
        blocks.push(block);
        used = 0;
      }
      const n = Math.min(block.length - used, chunk.byteLength - at);
      block.set(chunk.subarray(at, at + n), used);
      used += n;
      at += n;
    }
  }
  // The last block's unused end stays in its buffer (it moves whole); the view says where the bytes end.
  if (block !== null) blocks[blocks.length - 1] = block.subarray(0, used);
  return blocks;
}

/** The codings a crl_url fetch asks for (Accept-Encoding) and decodes. */
export const CRL_ACCEPT_ENCODING = 'gzip, deflate, br';

/**
 * The body (in blocks: readBlocks) as its Content-Encoding says it was encoded, decoded (gzip, deflate, br; node:zlib's
 * streams run in libuv's thread pool, not on this thread), or TooLarge as soon as the encoded
 * bytes or the decoded ones pass `max`: a few KiB of gzip can decode to gigabytes (a zip bomb),
 * so the ceiling is on what is kept, not on what crossed the network. Throws Error naming the
 * coding when it is not one of those or does not decode.
 */
export async function readDecoded(body: AsyncIterable<Uint8Array>, contentEncoding: string | string[] | undefined, max: number): Promise<Uint8Array[]> {
  const named = (Array.isArray(contentEncoding) ? contentEncoding.join(',') : (contentEncoding ?? '')).toLowerCase();
  const codings = named
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return readBlocks(body, max);
  if (codings.length > 1 || !(codings[0] in DECODERS))
    throw new Error(`its Content-Encoding (${named}) is not one this gateway decodes: one of ${CRL_ACCEPT_ENCODING}, as its Accept-Encoding says`);
  const coding = codings[0];
  const input = encodedUpTo(body, max, coding)[Symbol.asyncIterator]();
  const first = await input.next();
  if (first.done) return [];
  const decoder = DECODERS[coding](first.value);
  let decoded: Uint8Array[] = [];
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
        decoded = await readBlocks(
          out,
          max,
          `its ${coding} body decodes to more than ${max} bytes (a zip bomb, or a CRL past the ceiling): not decoded further`,
        );
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
