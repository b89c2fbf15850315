// The file form of a bundle with a few keys taken out and put in, without re-encoding the other
// 100,000 (the live compile, compiler/live-compile.ts). The result must be exactly what
// `encodeParts` (bundle/wire.ts) makes of the same keys, so this follows its rules:
// - keys.ids ascending, keys.session the session number of each row, keys.inactive and
//   keys.expires in id order;
// - sessions interned by value, numbered in the order of the first row (by id) using each;
// - certs.hex / tokens.hex ascending 64-hex values with the row of their key (rows shift when a
//   key is put in or taken out before them), certs.not_after the notAfter (seconds) of each.
// Given the APIs' facts (`frame`), a certificate an API pins moves between a key and the pin alone
// as encodeParts places it (compiler/section-patch.ts does the same on bytes): a key taken out
// leaves the entry without a key (row -1, the API's notAfter), a key put in takes the entry.
// Anything beyond that (a pinned fingerprint without the frame, a certificate the APIs name
// otherwise or a CA, a certificate_match key) throws PatchRefused: the caller then builds the
// whole content with `buildWire`.
import type { BundleKey, BundleSession, WireContent } from '../bundle/types.ts';

export class PatchRefused extends Error {
  override name = 'PatchRefused';
}

const HEX = 64;

/** The index of `value` in ascending `list`, or -(insertion point) - 1. */
export function search(list: readonly string[], value: string): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = list[mid]!;
    if (v < value) lo = mid + 1;
    else if (v > value) hi = mid - 1;
    else return mid;
  }
  return -lo - 1;
}

/** The index of `value` in an ascending 64-hex table, or -(insertion point) - 1. */
function searchHex(hex: string, value: string): number {
  let lo = 0;
  let hi = hex.length / HEX - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = hex.slice(mid * HEX, (mid + 1) * HEX);
    if (v < value) lo = mid + 1;
    else if (v > value) hi = mid - 1;
    else return mid;
  }
  return -lo - 1;
}

/** The interning identity encodeParts gives a key's session. */
export function sessionId(s: Pick<BundleKey, 'access_rights' | 'policies' | 'quota' | 'rate' | 'on_limiter_error'>): string {
  return `${JSON.stringify(s.access_rights)}\n${JSON.stringify(s.policies)}\n${JSON.stringify(s.quota)}\n${JSON.stringify(s.rate)}\n${s.on_limiter_error === 'deny'}`;
}

/** The session number of `key` in `sessions` (`known`: sessionId -> number), appended when new. */
export function internSession(key: BundleKey, sessions: BundleSession[], known: Map<string, number>): number {
  const id = sessionId(key);
  let s = known.get(id);
  if (s === undefined) {
    const entry: BundleSession = { access_rights: key.access_rights, policies: key.policies, quota: key.quota, rate: key.rate };
    if (key.on_limiter_error === 'deny') entry.on_limiter_error = 'deny';
    known.set(id, (s = sessions.length));
    sessions.push(entry);
  }
  return s;
}

/** The table without its entry `at`. */
function removeAt(table: Table, at: number): void {
  table.hex = table.hex.slice(0, at * HEX) + table.hex.slice((at + 1) * HEX);
  table.rows.splice(at, 1);
  table.notAfter?.splice(at, 1);
}

/** `value` put in at its place (not in the table yet). */
function insertAt(table: Table, value: string, row: number, notAfter: number | null): void {
  const at = -searchHex(table.hex, value) - 1;
  table.hex = table.hex.slice(0, at * HEX) + value + table.hex.slice(at * HEX);
  table.rows.splice(at, 0, row);
  table.notAfter?.splice(at, 0, notAfter);
}

interface Table {
  /** The values as the file holds them: one string of 64-hex values (edited in place: no list of 100,000 strings). */
  hex: string;
  rows: number[];
  notAfter?: (number | null)[];
}

/** What the APIs of the compile name (check-apis.ts `ResolvedApis`): with it a patch may move a pinned certificate. */
export interface ApiFacts {
  /** notAfter (ms) of every certificate the APIs name by PEM. */
  apiNotAfter: ReadonlyMap<string, number>;
  /** The CAs' fingerprints. */
  cas: { has(fp: string): boolean };
}

/**
 * `wire` without the keys `removed` (records as they were compiled) and with the keys `added`;
 * `notAfterMs`: notAfter (ms) of the added keys' certificates given as PEMs. `wire` is not changed.
 */
export function patchWire(
  wire: WireContent,
  removed: readonly BundleKey[],
  added: readonly BundleKey[],
  notAfterMs: ReadonlyMap<string, number>,
  frame?: ApiFacts,
): WireContent {
  const ids = wire.keys.ids.slice();
  const session = wire.keys.session.slice();
  const inactive = wire.keys.inactive.slice();
  const expires: Record<string, string> = { ...wire.keys.expires };
  const sessions: BundleSession[] = wire.sessions.slice();
  const certs: Table = { hex: wire.certs.hex, rows: wire.certs.key.slice(), notAfter: wire.certs.not_after.slice() };
  const tokens: Table = { hex: wire.tokens.hex, rows: wire.tokens.key.slice() };

  const shift = (table: Table, from: number, by: number) => {
    const rows = table.rows;
    for (let i = 0; i < rows.length; i++) if (rows[i]! >= from) rows[i]! += by;
  };
  // Pinned certificates a removed key held: their entry goes back as the pin alone unless an added key takes it.
  const freed = new Set<string>();
  const pinned = (value: string) => wire.certs.apis[value] !== undefined;
  const dropValue = (table: Table, value: string, row: number) => {
    const at = searchHex(table.hex, value);
    if (at < 0 || table.rows[at] !== row) throw new PatchRefused(`${value} is not the entry of row ${row}`);
    if (table === certs && pinned(value)) {
      if (!frame) throw new PatchRefused(`${value} is also pinned by an API`);
      freed.add(value);
    } else if (table === certs && frame && (frame.apiNotAfter.has(value) || frame.cas.has(value)))
      // Without its key it would be one of the APIs' other certificates (not_after): not handled here.
      throw new PatchRefused(`${value} is also named by an API`);
    else if (pinned(value)) throw new PatchRefused(`${value} is also pinned by an API`);
    removeAt(table, at);
  };
  const addValue = (table: Table, value: string, row: number, notAfter: number | null) => {
    if (searchHex(table.hex, value) >= 0) throw new PatchRefused(`${value} is in the table already`);
    if (wire.not_after[value] !== undefined) throw new PatchRefused(`${value} is a known CA or pin`);
    if (!/^[0-9a-f]{64}$/.test(value)) throw new PatchRefused(`${value} is not 64 lowercase hex digits`);
    insertAt(table, value, row, notAfter);
  };
  const listRemove = (list: string[], value: string) => {
    const at = search(list, value);
    if (at >= 0) list.splice(at, 1);
  };
  const listAdd = (list: string[], value: string) => {
    const at = search(list, value);
    if (at < 0) list.splice(-at - 1, 0, value);
  };

  for (const key of removed) {
    if (key.certificate_match !== null) throw new PatchRefused(`${key.id} has a certificate_match`);
    const row = search(ids, key.id);
    if (row < 0) throw new PatchRefused(`${key.id} is not in the bundle`);
    for (const fp of key.certificates) dropValue(certs, fp, row);
    if (key.token_sha256 !== null) dropValue(tokens, key.token_sha256, row);
    ids.splice(row, 1);
    session.splice(row, 1);
    shift(certs, row + 1, -1);
    shift(tokens, row + 1, -1);
    listRemove(inactive, key.id);
    delete expires[key.id];
  }

  const known = new Map(sessions.map((s, i) => [sessionId(s), i]));
  for (const key of added) {
    if (key.certificate_match !== null) throw new PatchRefused(`${key.id} has a certificate_match`);
    const at = search(ids, key.id);
    if (at >= 0) throw new PatchRefused(`${key.id} is in the bundle already`);
    const row = -at - 1;
    const s = internSession(key, sessions, known);
    shift(certs, row, 1);
    shift(tokens, row, 1);
    ids.splice(row, 0, key.id);
    session.splice(row, 0, s);
    for (const fp of key.certificates) {
      if (frame && pinned(fp) && !freed.delete(fp)) {
        // A pin no key held: its entry (row -1) is taken out, and put in again with this key's row.
        const at = searchHex(certs.hex, fp);
        if (at < 0 || certs.rows[at] !== -1) throw new PatchRefused(`${fp} is pinned and held by another key`);
        removeAt(certs, at);
      }
      const ms = notAfterMs.get(fp) ?? frame?.apiNotAfter.get(fp);
      addValue(certs, fp, row, ms === undefined ? null : Math.floor(ms / 1000));
    }
    if (key.token_sha256 !== null) addValue(tokens, key.token_sha256, row, null);
    if (key.is_inactive) listAdd(inactive, key.id);
    if (key.expires !== null) expires[key.id] = key.expires;
  }

  // Pins no key holds any more: the same entry again, without a key, with the API's notAfter.
  for (const fp of freed) {
    const ms = frame!.apiNotAfter.get(fp);
    insertAt(certs, fp, -1, ms === undefined ? null : Math.floor(ms / 1000));
  }

  // Sessions numbered by their first row again; a session no key uses any more is dropped.
  const renumber = new Map<number, number>();
  const ordered: BundleSession[] = [];
  for (let i = 0; i < session.length; i++) {
    let n = renumber.get(session[i]!);
    if (n === undefined) {
      renumber.set(session[i]!, (n = ordered.length));
      ordered.push(sessions[session[i]!]!);
    }
    session[i] = n;
  }
  // expires in id order, as encodeParts inserts it (the writer sorts object keys either way).
  const sortedExpires: Record<string, string> = {};
  for (const id of Object.keys(expires).sort()) sortedExpires[id] = expires[id]!;

  return {
    ...wire,
    keys: { expires: sortedExpires, ids, inactive, session },
    sessions: ordered,
    certs: { apis: wire.certs.apis, hex: certs.hex, key: certs.rows, not_after: certs.notAfter! },
    tokens: { hex: tokens.hex, key: tokens.rows },
  };
}
