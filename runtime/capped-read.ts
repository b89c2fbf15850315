// Reading a downloaded body with a ceiling: a bundle, shard or CRL fetched from a URL is read
// into memory, so whoever answers that URL (or sits on an http:// path to it: CRLs are served
// over plain HTTP, and a signed bundle may be) could otherwise send gigabytes and take the
// gateway down with an out-of-memory crash before any signature or digest is checked. The
// download is cut as soon as it passes the ceiling.

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
