// Sorting 1,000,000 SHA-256 values (certificate fingerprints, token hashes) as strings costs
// seconds (a Map of them, then Array#sort comparing strings); as 32-byte values it costs tens
// of milliseconds. Lowercase hex strings of equal length sort as their bytes do ('0'-'9' <
// 'a'-'f', nibble by nibble), so the order here is the order of the hex strings.

export const HASH_BYTES = 32;

/** a[i] compared with b[j], byte by byte (big-endian, as the hex strings compare). */
export function compareAt(a: Uint8Array, i: number, b: Uint8Array, j: number): number {
  const x = i * HASH_BYTES;
  const y = j * HASH_BYTES;
  for (let k = 0; k < HASH_BYTES; k++) {
    const d = a[x + k] - b[y + k];
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The indexes 0..count-1 of the 32-byte values in `bytes`, in ascending order of the values.
 * LSD radix sort on the first six bytes (three 16-bit digits, stable), then runs that share
 * those six bytes (rare for hashes; all of them for a crafted input) sorted in full.
 */
export function hashOrder(bytes: Uint8Array, count: number): Int32Array {
  let order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  let spare = new Int32Array(count);
  const counts = new Int32Array(65537);
  for (let digit = 2; digit >= 0; digit--) {
    counts.fill(0);
    const at = digit * 2;
    for (let i = 0; i < count; i++) {
      const p = i * HASH_BYTES + at;
      counts[((bytes[p] << 8) | bytes[p + 1]) + 1]++;
    }
    for (let d = 1; d <= 65536; d++) counts[d] += counts[d - 1];
    for (let i = 0; i < count; i++) {
      const v = order[i];
      const p = v * HASH_BYTES + at;
      spare[counts[(bytes[p] << 8) | bytes[p + 1]]++] = v;
    }
    [order, spare] = [spare, order];
  }
  // Runs equal in the six bytes sorted: order them by all 32.
  for (let start = 0; start < count; ) {
    let end = start + 1;
    while (end < count && samePrefix(bytes, order[start], order[end])) end++;
    if (end - start > 1) {
      const run = Array.from(order.subarray(start, end)).sort((i, j) => compareAt(bytes, i, bytes, j));
      order.set(run, start);
    }
    start = end;
  }
  return order;
}

function samePrefix(bytes: Uint8Array, i: number, j: number): boolean {
  const x = i * HASH_BYTES;
  const y = j * HASH_BYTES;
  for (let k = 0; k < 6; k++) if (bytes[x + k] !== bytes[y + k]) return false;
  return true;
}

/** Position of `value` (32 bytes at `at` in `source`) among `bytes` in `order`, or -1. */
export function findHash(bytes: Uint8Array, order: Int32Array, source: Uint8Array, at: number): number {
  let lo = 0;
  let hi = order.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = compareAt(bytes, order[mid], source, at);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** True for a lowercase hex string of whole 32-byte values: only those sort as their bytes. */
export function isHashHex(hex: string): boolean {
  return hex.length % (HASH_BYTES * 2) === 0 && /^[0-9a-f]*$/.test(hex);
}
