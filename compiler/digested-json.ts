// The compile cache's files (key-cache.ts entries, the snapshot's state.json): a JSON value
// preceded by a line holding the SHA-256 of the JSON text. A truncated, bit-flipped or
// hand-edited file does not match its first line and is never trusted.
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { sha256Hex } from './certs.ts';

/** The parsed JSON of a digested file; null when it is missing, corrupt or not JSON. */
export function readDigestedJson(path: string): unknown {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const nl = raw.indexOf('\n');
  if (nl !== 64) return null;
  const body = raw.slice(nl + 1);
  if (sha256Hex(body, 'utf8') !== raw.slice(0, nl)) return null;
  try {
    return JSON.parse(body);
  } catch {
    return null;
  }
}

/**
 * Writes `value` digested, atomically (a reader sees the old file or the new one). Not fsynced:
 * every read checks the digest, and a lost entry only costs a recompile of its file. Throws on
 * I/O errors.
 */
export function writeDigestedJson(path: string, value: unknown): void {
  const body = JSON.stringify(value);
  writeFileAtomic(path, `${sha256Hex(body, 'utf8')}\n${body}`, { durable: false });
}
