// The compile cache's files (key-cache.ts entries, the snapshot's state.json): a JSON value
// preceded by a line holding the SHA-256 of the JSON text. A truncated, bit-flipped or
// hand-edited file does not match its first line and is never trusted.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
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

/** Writes `value` digested, through a temporary file renamed over `path` (a reader sees the old file or the new one). Throws on I/O errors. */
export function writeDigestedJson(path: string, value: unknown): void {
  const body = JSON.stringify(value);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${sha256Hex(body, 'utf8')}\n${body}`);
  renameSync(tmp, path);
}
