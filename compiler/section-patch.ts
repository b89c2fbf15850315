// The previous bundle patched in its bytes (compiler/bundle-sections.ts): the keys a recompile
// found changed are taken out and put in, and only the content parts that hold keys are written
// again (ids, session numbers, certificate and token tables, expiries, inactive ids, sessions);
// APIs, CAs, routes, revocation and pins are copied as bytes. It follows compiler/wire-patch.ts
// rule for rule (so the bytes are what `encodeParts` + `serializeWire` make of the same keys) and
// refuses what that refuses (a pinned or CA certificate, a certificate_match key, a key id,
// certificate or token already there): the caller then compiles the ordinary way. Given the
// APIs' facts (`PatchFrame`), it also moves a certificate an API pins between a key and the pin
// alone, as `encodeParts` would (row and notAfter), and writes a new revocation part.
import { bundleProblems, checkKey } from '../bundle/checks.ts';
import type { BundleApi, BundleCa, BundleKey, BundleSession, CertMatch, WireContent } from '../bundle/types.ts';
import { sessionKey } from '../bundle/wire.ts';
import { bundleOfContentBytes, canonicalJson, documentDigest } from '../bundle/write.ts';
import { HexColumn, intsJson, type Part, parseInts, parsePart, ScalarColumn, type Sections } from './bundle-sections.ts';
import { indexIn, mergedColumn, mergedHex } from './column-splice.ts';
import { internSession, PatchRefused, search, sessionId } from './wire-patch.ts';

const HEX = /^[0-9a-f]{64}$/;

interface TableEdit {
  /** Old entry indexes taken out, ascending. */
  drop: number[];
  /** Values put in: their insertion point in the old table, value, new key row, notAfter (seconds) or null. */
  inserts: { at: number; value: string; row: number; notAfter: number | null }[];
}

/**
 * What the APIs name, from the compile that patches (the previous bundle's APIs, CAs and pins are
 * the same: compiler/snapshot-frame.ts checks it). With it a patch may take a pinned certificate
 * from a key (the entry stays, as the pin alone) or give one to a key.
 */
export interface PatchFrame {
  /** notAfter (ms) of every certificate the APIs name by PEM (check-apis.ts `ResolvedApis.notAfter`). */
  apiNotAfter: ReadonlyMap<string, number>;
  /** The CAs' fingerprints. */
  cas: { has(fp: string): boolean };
  /** The revocation part as the writer writes it (it replaces the previous one when different). */
  revocation: Uint8Array;
}

interface SectionPatch {
  /** The new bundle file and its digest. */
  bytes: Buffer;
  digest: string;
  counts: { apis: number; keys: number; certificates: number };
}

/** The previous bundle's key parts, each read from its bytes when first needed. */
export class SectionedWire {
  private memo = new Map<string, unknown>();

  constructor(readonly s: Sections) {}

  private get<T>(name: string, make: () => T): T {
    if (!this.memo.has(name)) this.memo.set(name, make());
    return this.memo.get(name) as T;
  }
  private json<T>(part: Part): T {
    return this.get(part, () => parsePart<T>(this.s, part));
  }
  get ids(): ScalarColumn {
    return this.get('ids', () => new ScalarColumn(this.s.bytes, this.s.at['keys.ids']));
  }
  get session(): Int32Array {
    return this.get('session', () => parseInts(this.s.bytes, this.s.at['keys.session']));
  }
  get certs(): HexColumn {
    return this.get('certs', () => new HexColumn(this.s.bytes, this.s.at['certs.hex']));
  }
  get certKey(): Int32Array {
    return this.get('certKey', () => parseInts(this.s.bytes, this.s.at['certs.key']));
  }
  get notAfter(): ScalarColumn {
    return this.get('notAfter', () => new ScalarColumn(this.s.bytes, this.s.at['certs.not_after']));
  }
  get tokens(): HexColumn {
    return this.get('tokens', () => new HexColumn(this.s.bytes, this.s.at['tokens.hex']));
  }
  get tokenKey(): Int32Array {
    return this.get('tokenKey', () => parseInts(this.s.bytes, this.s.at['tokens.key']));
  }
  get sessions(): BundleSession[] {
    return this.json('sessions');
  }
  get expires(): Record<string, string> {
    return this.json('keys.expires');
  }
  get inactive(): string[] {
    return this.json('keys.inactive');
  }
  get matches(): Record<string, CertMatch> {
    return this.json('matches');
  }
  get pins(): Record<string, string[]> {
    return this.json('certs.apis');
  }
  get others(): Record<string, number> {
    return this.json('not_after');
  }

  /** The records of keys `ids` as the previous bundle holds them; a string: an id it does not hold. */
  records(ids: Iterable<string>): Map<string, BundleKey> | string {
    const rows = new Map<number, { id: string; certs: string[]; token: string | null }>();
    for (const id of ids) {
      const row = this.ids.search(id);
      if (row < 0) return `${id} is not in the previous bundle`;
      rows.set(row, { id, certs: [], token: null });
    }
    const out = new Map<string, BundleKey>();
    if (rows.size === 0) return out;
    const mark = new Uint8Array(this.ids.length);
    for (const row of rows.keys()) mark[row] = 1;
    const certKey = this.certKey;
    for (let i = 0; i < certKey.length; i++) if (certKey[i]! >= 0 && mark[certKey[i]!] === 1) rows.get(certKey[i]!)!.certs.push(this.certs.at(i));
    const tokenKey = this.tokenKey;
    for (let i = 0; i < tokenKey.length; i++) if (mark[tokenKey[i]!] === 1) rows.get(tokenKey[i]!)!.token = this.tokens.at(i);
    const inactive = new Set(this.inactive);
    const { matches, expires, sessions, session } = this;
    for (const [row, r] of rows)
      out.set(
        r.id,
        sessionKey(sessions[session[row]!]!, {
          certificate_match: Object.hasOwn(matches, r.id) ? matches[r.id]! : null,
          certificates: r.certs,
          expires: Object.hasOwn(expires, r.id) ? expires[r.id]! : null,
          id: r.id,
          is_inactive: inactive.has(r.id),
          token_sha256: r.token,
        }),
      );
    return out;
  }

  /**
   * The bundle without `removed` (records as the previous bundle holds them) and with `added`
   * (sessions in canonical key order); `notAfterMs`: notAfter (ms) of the added keys'
   * certificates. Throws PatchRefused as patchWire does (without `frame`: a pinned certificate too).
   */
  patch(removed: readonly BundleKey[], added: readonly BundleKey[], notAfterMs: ReadonlyMap<string, number>, frame?: PatchFrame): SectionPatch {
    const { ids, session, certs, certKey, tokens, tokenKey, pins, others } = this;
    const nOld = ids.length;
    const [rFrom, rTo] = this.s.at.revocation;
    const revocation = frame && !this.s.bytes.subarray(rFrom, rTo).equals(frame.revocation) ? frame.revocation : undefined;
    if (removed.length === 0 && added.length === 0) {
      // Nothing to change: the previous file (or its revocation part anew), once its parts pass the checks again.
      this.checkParts(this.sessions, this.expires);
      const bytes = this.s.bytes;
      if (revocation === undefined) return { bytes, digest: documentDigest(bytes), counts: this.counts(nOld, certs.length) };
      const next = bundleOfContentBytes(this.pieces({ revocation }));
      return { ...next, counts: this.counts(nOld, certs.length) };
    }

    // Rows taken out, and checks of their certificates and token (as patchWire's dropValue).
    const certDrop: number[] = [];
    const tokenDrop: number[] = [];
    const removedRows: number[] = [];
    const removedIds = new Set<string>();
    // Pinned certificates taken from a removed key (with a frame): their entry goes back as the
    // pin alone (row -1), unless an added key takes it. Fingerprint -> old entry index.
    const freed = new Map<string, number>();
    for (const key of removed) {
      if (key.certificate_match !== null) throw new PatchRefused(`${key.id} has a certificate_match`);
      const row = ids.search(key.id);
      if (row < 0 || removedIds.has(key.id)) throw new PatchRefused(`${key.id} is not in the bundle`);
      removedIds.add(key.id);
      removedRows.push(row);
      const drop = (table: HexColumn, rowsOf: Int32Array, value: string, into: number[], cert: boolean) => {
        const at = table.search(value);
        if (at < 0 || rowsOf[at] !== row) throw new PatchRefused(`${value} is not the entry of row ${row}`);
        if (pins[value] !== undefined) {
          if (!frame || !cert) throw new PatchRefused(`${value} is also pinned by an API`);
          freed.set(value, at);
        } else if (frame && cert && (frame.apiNotAfter.has(value) || frame.cas.has(value))) {
          // Without its key it would be one of the APIs' other certificates (not_after): not handled here.
          throw new PatchRefused(`${value} is also named by an API`);
        }
        into.push(at);
      };
      for (const fp of key.certificates) drop(certs, certKey, fp, certDrop, true);
      if (key.token_sha256 !== null) drop(tokens, tokenKey, key.token_sha256, tokenDrop, false);
    }
    // Keys put in may take a pinned certificate: from a removed key (freed), or a pin no key had
    // (its entry is taken out and put in again with the key's row).
    if (frame)
      for (const key of added)
        for (const fp of key.certificates) {
          if (pins[fp] === undefined) continue;
          if (freed.delete(fp)) continue;
          const at = certs.search(fp);
          if (at >= 0 && certKey[at] === -1 && !certDrop.includes(at)) certDrop.push(at);
        }
    removedRows.sort((a, b) => a - b);
    certDrop.sort((a, b) => a - b);
    tokenDrop.sort((a, b) => a - b);
    const dropped = (list: number[], i: number) => indexIn(list, i);

    // Keys put in, by id: the old row they go before.
    const adds = [...added].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const before: number[] = [];
    for (let i = 0; i < adds.length; i++) {
      const key = adds[i]!;
      if (key.certificate_match !== null) throw new PatchRefused(`${key.id} has a certificate_match`);
      if (i > 0 && adds[i - 1]!.id === key.id) throw new PatchRefused(`${key.id} is in the bundle already`);
      const at = ids.search(key.id);
      if (at >= 0 && !removedIds.has(key.id)) throw new PatchRefused(`${key.id} is in the bundle already`);
      before.push(at >= 0 ? at : -at - 1);
    }
    // Old row -> new row (-1: taken out); an added key's new row.
    const newRowOf = new Int32Array(nOld);
    {
      let rem = 0;
      let add = 0;
      for (let r = 0; r < nOld; r++) {
        while (add < before.length && before[add]! <= r) add++;
        if (rem < removedRows.length && removedRows[rem] === r) {
          newRowOf[r] = -1;
          rem++;
        } else newRowOf[r] = r - rem + add;
      }
    }
    const removedBefore = (r: number) => {
      let lo = 0;
      let hi = removedRows.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (removedRows[mid]! < r) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const addedRow = adds.map((_, i) => before[i]! - removedBefore(before[i]!) + i);
    const nNew = nOld - removedRows.length + adds.length;

    // Sessions: interned by value, numbered by first row again (a session no key uses is dropped).
    const sessions = this.sessions.slice();
    const known = new Map(sessions.map((s, i) => [sessionId(s), i]));
    const rowSession = new Int32Array(nNew);
    for (let r = 0; r < nOld; r++) if (newRowOf[r]! >= 0) rowSession[newRowOf[r]!] = session[r]!;
    adds.forEach((key, i) => {
      rowSession[addedRow[i]!] = internSession(key, sessions, known);
    });
    const renumber = new Int32Array(sessions.length).fill(-1);
    const ordered: BundleSession[] = [];
    for (let i = 0; i < nNew; i++) {
      const s = rowSession[i]!;
      if (renumber[s] === -1) {
        renumber[s] = ordered.length;
        ordered.push(sessions[s]!);
      }
      rowSession[i] = renumber[s]!;
    }

    // Certificates and tokens put in (as patchWire's addValue), and the tables again.
    const certEdit: TableEdit = { drop: certDrop, inserts: [] };
    const tokenEdit: TableEdit = { drop: tokenDrop, inserts: [] };
    const insert = (table: HexColumn, drops: number[], edit: TableEdit, value: string, row: number, notAfter: number | null) => {
      const at = table.search(value);
      const seen = edit.inserts.some((i) => i.value === value);
      if ((at >= 0 && dropped(drops, at) < 0) || seen) throw new PatchRefused(`${value} is in the table already`);
      if (others[value] !== undefined) throw new PatchRefused(`${value} is a known CA or pin`);
      if (!HEX.test(value)) throw new PatchRefused(`${value} is not 64 lowercase hex digits`);
      edit.inserts.push({ at: at >= 0 ? at : -at - 1, value, row, notAfter });
    };
    // A certificate's notAfter: the key's, else the API's (buildWire lets the keys' override the APIs').
    const seconds = (ms: number | undefined) => (ms === undefined ? null : Math.floor(ms / 1000));
    adds.forEach((key, i) => {
      for (const fp of key.certificates) insert(certs, certDrop, certEdit, fp, addedRow[i]!, seconds(notAfterMs.get(fp) ?? frame?.apiNotAfter.get(fp)));
      if (key.token_sha256 !== null) insert(tokens, tokenDrop, tokenEdit, key.token_sha256, addedRow[i]!, null);
    });
    // Pins no key holds any more: the same entry again, without a key, with the API's notAfter.
    for (const [fp, at] of freed) certEdit.inserts.push({ at, value: fp, row: -1, notAfter: seconds(frame!.apiNotAfter.get(fp)) });
    for (const edit of [certEdit, tokenEdit]) edit.inserts.sort((a, b) => a.at - b.at || (a.value < b.value ? -1 : 1));
    const rowsOf = (table: HexColumn, rows: Int32Array, edit: TableEdit): Int32Array => {
      const out = new Int32Array(table.length - edit.drop.length + edit.inserts.length);
      let o = 0;
      let d = 0;
      let n = 0;
      for (let i = 0; i <= table.length; i++) {
        while (n < edit.inserts.length && edit.inserts[n]!.at === i) out[o++] = edit.inserts[n++]!.row;
        if (i === table.length) break;
        if (d < edit.drop.length && edit.drop[d] === i) {
          d++;
          continue;
        }
        out[o++] = rows[i]! < 0 ? rows[i]! : newRowOf[rows[i]!]!;
      }
      return out;
    };
    const certRows = rowsOf(certs, certKey, certEdit);
    const tokenRows = rowsOf(tokens, tokenKey, tokenEdit);

    // Inactive ids and expiries (both in id order).
    const inactive = this.inactive.slice();
    const expires: Record<string, string> = { ...this.expires };
    for (const key of removed) {
      const at = search(inactive, key.id);
      if (at >= 0) inactive.splice(at, 1);
      delete expires[key.id];
    }
    for (const key of adds) {
      if (key.is_inactive) {
        const at = search(inactive, key.id);
        if (at < 0) inactive.splice(-at - 1, 0, key.id);
      }
      if (key.expires !== null) expires[key.id] = key.expires;
    }
    const sortedExpires: Record<string, string> = {};
    for (const id of Object.keys(expires).sort()) sortedExpires[id] = expires[id]!;

    const replaced: Partial<Record<Part, Uint8Array | Uint8Array[]>> = {
      'certs.hex': mergedHex(certs, certDrop, certEdit.inserts),
      'certs.key': intsJson(certRows),
      'certs.not_after': mergedColumn(
        this.notAfter,
        certDrop,
        certEdit.inserts.map((i) => ({ at: i.at, text: i.notAfter === null ? 'null' : String(i.notAfter) })),
      ),
      'keys.expires': Buffer.from(canonicalJson(sortedExpires), 'utf8'),
      'keys.ids': mergedColumn(
        ids,
        removedRows,
        adds.map((k, i) => ({ at: before[i]!, text: JSON.stringify(k.id) })),
      ),
      'keys.inactive': Buffer.from(canonicalJson(inactive), 'utf8'),
      'keys.session': intsJson(rowSession),
      sessions: Buffer.from(canonicalJson(ordered), 'utf8'),
      'tokens.hex': mergedHex(tokens, tokenDrop, tokenEdit.inserts),
      'tokens.key': intsJson(tokenRows),
      ...(revocation === undefined ? {} : { revocation }),
    };
    this.checkParts(ordered, sortedExpires);
    const { bytes, digest } = bundleOfContentBytes(this.pieces(replaced));
    return { bytes, digest, counts: this.counts(nNew, certRows.length) };
  }

  /** What the CLI's summary line counts (CompileResult.counts). */
  private counts(keys: number, certs: number): SectionPatch['counts'] {
    const apis = this.json<Record<string, BundleApi>>('apis');
    const cas = this.json<Record<string, BundleCa>>('cas');
    return { apis: Object.keys(apis).length, keys, certificates: certs + Object.keys(cas).length };
  }

  /** The content's bytes with some parts replaced, in pieces (the rest are views of the previous bytes). */
  private pieces(replaced: Partial<Record<Part, Uint8Array | Uint8Array[]>>): Uint8Array[] {
    const out: Uint8Array[] = [];
    let at = this.s.content[0];
    const order = (Object.keys(replaced) as Part[]).sort((a, b) => this.s.at[a][0] - this.s.at[b][0]);
    for (const part of order) {
      const [from, to] = this.s.at[part];
      const value = replaced[part]!;
      out.push(this.s.bytes.subarray(at, from));
      if (Array.isArray(value)) out.push(...value);
      else out.push(value);
      at = to;
    }
    out.push(this.s.bytes.subarray(at, this.s.content[1]));
    return out;
  }

  /**
   * bundleProblems on the patched content, without its 1,000,000 rows: a key is refused for its
   * session's access rights or its expiry, never for its id, so every session once and every
   * expiry is the same verdict. Throws PatchRefused on a problem (the ordinary compile reports it).
   */
  private checkParts(sessions: readonly BundleSession[], expires: Record<string, string>): void {
    const apis = this.json<Record<string, BundleApi>>('apis');
    const cas = this.json<Record<string, BundleCa>>('cas');
    const none = { apis, cas, sessions: [], keys: { ids: [], session: [], expires: {}, inactive: [] } } as unknown as WireContent;
    if (bundleProblems(none).length > 0) throw new PatchRefused('an API fails the runtime checks');
    const patterns = new Map();
    try {
      for (const s of sessions) checkKey({ id: '', expires: null, access_rights: s.access_rights } as BundleKey, patterns);
      for (const id in expires) checkKey({ id, expires: expires[id]!, access_rights: {} } as BundleKey, patterns);
    } catch (err) {
      throw new PatchRefused(`a key fails the runtime checks: ${(err as Error).message}`);
    }
  }
}
