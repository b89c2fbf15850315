// A column of the previous bundle (compiler/bundle-sections.ts) with some elements taken out and
// some put in, written as bytes in pieces: the kept elements are copied as runs (views into the
// old bytes, not copies), so a patch that touches a few keys writes few bytes anew. Used by
// compiler/section-patch.ts for the key and certificate tables.
import type { HexColumn, ScalarColumn } from './bundle-sections.ts';

const comma = Buffer.from(',');

/**
 * Walks `col` with the elements at `drop` (ascending) taken out and `inserts` put in before the
 * old element at their `at` (ascending): `keep` gets each run of kept elements, `put` each insert, in order.
 */
function spliceRuns<I extends { at: number }>(
  col: { readonly length: number; run(from: number, to: number): Uint8Array },
  drop: readonly number[],
  inserts: readonly I[],
  keep: (run: Uint8Array) => void,
  put: (ins: I) => void,
): void {
  // Runs of kept elements in [from, to), split at the dropped ones.
  let d = 0;
  const runs = (from: number, to: number) => {
    let at = from;
    while (d < drop.length && drop[d]! < to) {
      if (drop[d]! >= at) {
        keep(col.run(at, drop[d]!));
        at = drop[d]! + 1;
      }
      d++;
    }
    if (at < to) keep(col.run(at, to));
  };
  let r = 0;
  for (const ins of inserts) {
    runs(r, ins.at);
    r = Math.max(r, ins.at);
    put(ins);
  }
  runs(r, col.length);
}

/** A column's elements with some taken out and some put in, as a JSON array's bytes (in pieces). */
export function mergedColumn(col: ScalarColumn, drop: readonly number[], inserts: readonly { at: number; text: string }[]): Uint8Array[] {
  const parts: Uint8Array[] = [];
  const push = (b: Uint8Array) => {
    if (b.length === 0) return;
    if (parts.length > 0) parts.push(comma);
    parts.push(b);
  };
  spliceRuns(col, drop, inserts, push, (ins) => push(Buffer.from(ins.text, 'latin1')));
  return [Buffer.from('['), ...parts, Buffer.from(']')];
}

/** A hex table's value string with some values taken out and some put in (in pieces). */
export function mergedHex(col: HexColumn, drop: readonly number[], inserts: readonly { at: number; value: string }[]): Uint8Array[] {
  const parts: Uint8Array[] = [Buffer.from('"')];
  spliceRuns(
    col,
    drop,
    inserts,
    (run) => parts.push(run),
    (ins) => parts.push(Buffer.from(ins.value, 'latin1')),
  );
  parts.push(Buffer.from('"'));
  return parts;
}

/** The index of `value` in ascending `list`, or -1. */
export function indexIn(list: readonly number[], value: number): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < value) lo = mid + 1;
    else if (list[mid]! > value) hi = mid - 1;
    else return mid;
  }
  return -1;
}
