// Reading a downloaded body with a ceiling: a bundle, shard or CRL fetched from a URL is read
// into memory, so whoever answers that URL (or sits on an http:// path to it: CRLs are served
// over plain HTTP, and a signed bundle may be) could otherwise send gigabytes and take the
// gateway down with an out-of-memory crash before any signature or digest is checked. The
// download is cut as soon as it passes the ceiling.

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
