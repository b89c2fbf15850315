// Reading a file whose path came from input (a certificate or CRL path in the config, a path in
// a Tyk definition, a test document's certificate, .mtlsgateignore): a regular file only, of a
// bounded size, decided before a byte is read. Without this a named pipe hangs the reader
// forever (opening one waits for a writer) and /dev/zero or /dev/urandom is read until memory
// runs out. The runtime reads through the same two functions (the async one keeps requests
// flowing while a bundle is read): every file serve and the portal read from a path an
// operator names (docs/security.md sections 41 and 44).
//
// Each file is opened once, and its kind, size and bytes are all taken from that open
// descriptor: a file swapped while it is read (a symlink or a ConfigMap's "..data" renamed
// over) is read whole as one version, never judged as one file and read as another.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

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

/** Non-blocking: opening a named pipe for reading returns at once instead of waiting for a writer. */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/** The buffer a checked file is read into: one byte more than allowed, so a file that grew past the bound after the fstat is refused too. */
function bufferFor(st: Stats, maxBytes: number): Buffer {
  checkRegularFile(st, maxBytes);
  return Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
}

/** The `n` bytes read into `buf`, unless they are more than `maxBytes`. */
function readBytes(buf: Buffer, n: number, maxBytes: number): Buffer {
  if (n > maxBytes) throw new NotARegularFileError(`it is more than the ${maxBytes} bytes read at most`, true);
  return buf.subarray(0, n);
}

/**
 * The bytes of the regular file at `path` (at most `maxBytes`). Opened non-blocking, so a named
 * pipe is refused rather than waited on; errno errors (ENOENT, EACCES, ...) are thrown as they are.
 * `flags`: extra open flags (O_NOFOLLOW).
 */
export function readRegularFile(path: string, maxBytes: number, flags = 0): Buffer {
  const fd = openSync(path, READ_FLAGS | flags);
  try {
    const buf = bufferFor(fstatSync(fd), maxBytes);
    let n = 0;
    for (let got = 1; got > 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    return readBytes(buf, n, maxBytes);
  } finally {
    closeSync(fd);
  }
}

/** readRegularFile off the event loop (the thread pool opens, stats and reads): for the runtime, which serves requests meanwhile. */
export async function readRegularFileAsync(path: string, maxBytes: number): Promise<Buffer> {
  const file = await open(path, READ_FLAGS);
  try {
    const buf = bufferFor(await file.stat(), maxBytes);
    let n = 0;
    for (let got = 1; got > 0 && n < buf.length; n += got) got = (await file.read(buf, n, buf.length - n, null)).bytesRead;
    return readBytes(buf, n, maxBytes);
  } finally {
    await file.close();
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
