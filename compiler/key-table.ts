// The keys of a compile resolved in worker threads, kept as columns (compiler/key-file.ts
// `KeyColumns`, one group per file) rather than a record per key: at 1,000,000 keys a Map of
// records, a Map of fingerprints and sorting them as strings cost the main thread ~10 s.
// Fingerprints and token hashes are held as bytes and ordered with compiler/hash-order.ts.
//
// `buildKeyTable` also finds what makes groups interact (a key id, certificate or token in two
// groups): the caller then compiles on one thread, which reports it as it always has.
import { lastAtOrBelow } from '../common/sorted.ts';
import type { Diagnostic } from './diagnostics.ts';
import { compareAt, HASH_BYTES, hashOrder, isHashHex } from './hash-order.ts';
import type { KeyColumns } from './key-file.ts';
import type { PackedKeys } from './key-cache.ts';

type Session = PackedKeys['sessions'][number];

export interface KeyTable {
  /** Rows: every group's keys, in group order. */
  rows: number;
  ids: string[];
  /** Row -> its canonical session (an index of `sessions`: equal sessions of any group are one). */
  session: Int32Array;
  sessions: Session[];
  /** Rows in ascending order of key id, and each row's place in that order. */
  order: Int32Array;
  rank: Int32Array;
  /** Certificates: 32 bytes each, the row of their key, their notAfter (ms, NaN when given as a pin); `certOrder` ascending. */
  certBytes: Buffer;
  certRow: Int32Array;
  certNotAfter: Float64Array;
  certOrder: Int32Array;
  /** Token hashes the same way (at most one per key). */
  tokenBytes: Buffer;
  tokenRow: Int32Array;
  tokenOrder: Int32Array;
  /** Sparse: row -> expiry; inactive rows. */
  expires: Map<number, string>;
  inactive: number[];
}

/** A group's columns and diagnostics (a key file from a worker, or the keys resolved on the main thread). */
export interface KeyGroup {
  keys: KeyColumns;
  diagnostics: Diagnostic[];
}

/** The groups as one table, or why they interact. */
export function buildKeyTable(groups: readonly KeyColumns[]): KeyTable | { restart: string } {
  const start: number[] = [];
  const ids: string[] = [];
  let certCount = 0;
  let tokenCount = 0;
  for (const g of groups) {
    start.push(ids.length);
    if (g.ids !== '') for (const id of g.ids.split('\n')) ids.push(id);
    certCount += g.certNotAfter.length;
    tokenCount += g.tokenRows.length;
    if (!isHashHex(g.certs) || !isHashHex(g.tokens)) return { restart: 'a fingerprint or token hash is not lowercase hex' };
  }
  const rows = ids.length;
  const groupOf = (row: number) => lastAtOrBelow(start, row);

  const session = new Int32Array(rows);
  const sessions: Session[] = [];
  const sessionByJson = new Map<string, number>();
  const certBytes = Buffer.allocUnsafe(certCount * HASH_BYTES);
  const certRow = new Int32Array(certCount);
  const certNotAfter = new Float64Array(certCount);
  const tokenBytes = Buffer.allocUnsafe(tokenCount * HASH_BYTES);
  const tokenRow = new Int32Array(tokenCount);
  const expires = new Map<number, string>();
  const inactive: number[] = [];
  let c = 0;
  let t = 0;
  groups.forEach((g, gi) => {
    const base = start[gi];
    const canonical = g.sessions.map((json) => {
      let s = sessionByJson.get(json);
      if (s === undefined) {
        sessionByJson.set(json, (s = sessions.length));
        sessions.push(JSON.parse(json) as Session);
      }
      return s;
    });
    const n = g.session.length;
    for (let i = 0; i < n; i++) session[base + i] = canonical[g.session[i]];
    certBytes.write(g.certs, c * HASH_BYTES, 'hex');
    for (let i = 0; i < n; i++) for (let k = g.certCount[i]; k > 0; k--) certRow[c++] = base + i;
    certNotAfter.set(g.certNotAfter, c - g.certNotAfter.length);
    tokenBytes.write(g.tokens, t * HASH_BYTES, 'hex');
    for (const row of g.tokenRows) tokenRow[t++] = base + row;
    g.expiresRows.forEach((row, i) => expires.set(base + row, g.expires[i]));
    for (const row of g.inactiveRows) inactive.push(base + row);
  });

  // Ids: each group's are unique (the keys stage kept the first of a duplicate); in files read
  // in order they usually ascend already, so the sort is a check.
  let order: Int32Array;
  let ascending = true;
  for (let i = 1; ascending && i < rows; i++) if (!(ids[i - 1] < ids[i])) ascending = false;
  if (ascending) order = Int32Array.from({ length: rows }, (_, i) => i);
  else {
    const sorted = Array.from({ length: rows }, (_, i) => i).sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
    for (let i = 1; i < rows; i++) if (ids[sorted[i - 1]] === ids[sorted[i]]) return { restart: `key id ${ids[sorted[i]]} is in two files` };
    order = Int32Array.from(sorted);
  }
  const rank = new Int32Array(rows);
  for (let i = 0; i < rows; i++) rank[order[i]] = i;

  const certOrder = hashOrder(certBytes, certCount);
  const tokenOrder = hashOrder(tokenBytes, tokenCount);
  // A certificate or token twice in one group was reported by that group's run (an error: no
  // bundle is written); in two groups, only the one-thread stage reports it as it should be.
  for (const [bytes, order, owner, what] of [
    [certBytes, certOrder, certRow, 'certificate'],
    [tokenBytes, tokenOrder, tokenRow, 'token'],
  ] as const) {
    for (let i = 1; i < order.length; i++) {
      if (compareAt(bytes, order[i - 1], bytes, order[i]) === 0 && groupOf(owner[order[i - 1]]) !== groupOf(owner[order[i]])) {
        return { restart: `a ${what} is in two files` };
      }
    }
  }
  return { rows, ids, session, sessions, order, rank, certBytes, certRow, certNotAfter, certOrder, tokenBytes, tokenRow, tokenOrder, expires, inactive };
}
