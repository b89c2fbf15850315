// Reading a file whose path came from input (a certificate or CRL path in the config, a path in
// a Tyk definition, a test document's certificate, .mtlsgateignore): a regular file only, of a
// bounded size, decided before a byte is read. Without this a named pipe hangs the reader
// forever (opening one waits for a writer) and /dev/zero or /dev/urandom is read until memory
// runs out.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** A path that names something other than a regular file, or one too large to be what it should be. */
export class NotARegularFileError extends Error {
  override name = 'NotARegularFileError';
  constructor(
    message: string,
    /** It is a regular file (or a stream), only larger than the bound. */
    readonly tooLarge = false,
  ) {
    super(message);
  }
}

/** What a non-regular file is, for messages. */
export function kindOfFile(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Refuses (NotARegularFileError) a non-regular file or one larger than `maxBytes`. */
export function checkRegularFile(st: Stats, maxBytes: number): void {
  if (!st.isFile()) throw new NotARegularFileError(`it is ${kindOfFile(st)}, not a regular file`);
  if (st.size > maxBytes) throw new NotARegularFileError(`it is ${st.size} bytes, more than the ${maxBytes} read at most`, true);
}

/**
 * The bytes of the regular file at `path` (at most `maxBytes`). Opened non-blocking, so a named
 * pipe is refused rather than waited on; errno errors (ENOENT, EACCES, ...) are thrown as they are.
 * `flags`: extra open flags (O_NOFOLLOW).
 */
export function readRegularFile(path: string, maxBytes: number, flags = 0): Buffer {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | flags);
  try {
    const st = fstatSync(fd);
    checkRegularFile(st, maxBytes);
    // One byte more than allowed is read, so a file that grew past the bound is refused too.
    const buf = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (let got = 1; got > 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    if (n > maxBytes) throw new NotARegularFileError(`it is more than the ${maxBytes} bytes read at most`, true);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * Standard input to its end, at most `maxBytes` (NotARegularFileError past that, the rest left
 * unread): `mtlsgate fingerprint - < /dev/zero` stops instead of reading until memory runs out.
 */
export function readStdinBounded(maxBytes: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes + 1 - total));
    const got = readSync(0, chunk, 0, chunk.length, null);
    if (got === 0) return Buffer.concat(chunks, total);
    chunks.push(chunk.subarray(0, got));
    total += got;
    if (total > maxBytes) throw new NotARegularFileError(`it is more than the ${maxBytes} bytes read at most`, true);
  }
}
