// `compile --cache DIR`: one entry per key file, so a recompile after one file changed parses
// and resolves that file only. An entry is what the keys stage made of its file (bundle
// records, notAfter per fingerprint, the diagnostics it logged, already as line:col) and the
// certificate files it read, each witnessed by (size, mtimeMs, ctimeMs, ino) as git's index does. The
// compile then merges entries and fresh results and emits them with the same code as an
// uncached compile: the bytes are the same because the records are.
//
// An entry is used only when all of these hold (otherwise it is recomputed and rewritten):
// - its digest line matches its body (a truncated or corrupt entry is never trusted);
// - the file's text has the SHA-256 it was made from, and the *context* digest matches: the
//   resolved APIs, the policies, the schema-broken ids, the options that change diagnostics
//   (--strict, --expiry-warning-days, the config directory and --allow-outside);
// - the clock is inside the entry's validity window: from when it was made to the first instant
//   a time-dependent result of the file would change (a certificate's expiry, its entering the
//   warning window or its "in N days" changing, a key's `expires`); exact, not "the same day";
// - every certificate file it read has the same (size, mtimeMs, ctimeMs, ino), and, when its
//   mtime or ctime was within RACY_MS of the read, the same SHA-256 ("racily clean": a write in
//   the same timestamp tick as the read would otherwise go unseen). A rewrite that puts size and
//   mtime back (`touch -d`) still sets the ctime, which nothing sets back; what is not seen is a
//   filesystem without real ctimes, or a clock set back. Delete the cache directory to force a
//   full compile.
// Only files holding nothing but schema-valid key documents without certificate_match get
// entries (certificate_match can register a CA, a side effect on the whole bundle). Cross-file
// checks (duplicate ids, certificates, tokens) run on the merged results; when one fires, the
// compile falls back to the uncached keys stage, so its diagnostics are exactly the usual ones.
// Entries hold fingerprints, token SHA-256s and diagnostics: never a private key or token.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BundleKey } from '../bundle/types.ts';
import { type FileWitness, RACY_MS, sameWitness, sha256Hex, statWitness } from './certs.ts';
import type { Diagnostic } from './diagnostics.ts';
import { readDigestedJson, writeDigestedJson } from './digested-json.ts';
import type { SourceFile } from './source.ts';

// v2: witnesses hold the ctime too.
const FORMAT = 'mtlsgate.compile-cache/v2';
const DAY_MS = 86_400_000;

/**
 * The SHA-256 of the running compiler's code (the built dist/mtlsgate.mjs holds all of it): an
 * entry made by another build is not used, since a changed parser or schema could judge the
 * same text differently and a usable entry's file is not parsed at all.
 */
let codeDigest: string | undefined;
export function compilerCode(): string {
  if (codeDigest === undefined) {
    try {
      codeDigest = sha256Hex(readFileSync(fileURLToPath(import.meta.url)));
    } catch {
      codeDigest = 'unknown';
    }
  }
  return codeDigest;
}

export interface CacheEntry {
  format: string;
  /** compilerCode() of the build that made it. */
  code: string;
  /** The key file's absolute path and the SHA-256 of its text. */
  path: string;
  text: string;
  context: string;
  /** How many documents the file holds (all kind: key). */
  docs: number;
  /** Valid for now in [validFrom, validUntil). */
  validFrom: number;
  validUntil: number;
  keys: PackedKeys;
  notAfter: [string, number][];
  diagnostics: Diagnostic[];
  /** Certificate files read: abs path and witness (null: could not be stat'ed then). */
  files: [string, FileWitness][];
}

/**
 * A file's key records with each distinct session written once (as the bundle does): smaller
 * entries, and records that share their session objects again when read, so the emit's
 * interning (memoised per object) costs what it costs uncached.
 */
export interface PackedKeys {
  /** [access_rights, policies, quota, rate, on_limiter_error is 'deny'] */
  sessions: [BundleKey['access_rights'], BundleKey['policies'], BundleKey['quota'], BundleKey['rate'], boolean][];
  /** [id, session, certificate_match, certificates, expires, is_inactive, token_sha256] */
  keys: [string, number, BundleKey['certificate_match'], string[], string | null, boolean, string | null][];
}

export function packKeys(keys: readonly BundleKey[]): PackedKeys {
  const out: PackedKeys = { sessions: [], keys: [] };
  const index = new Map<string, number>();
  for (const k of keys) {
    const session: PackedKeys['sessions'][number] = [k.access_rights, k.policies, k.quota, k.rate, k.on_limiter_error === 'deny'];
    const id = JSON.stringify(session);
    let s = index.get(id);
    if (s === undefined) {
      index.set(id, (s = out.sessions.length));
      out.sessions.push(session);
    }
    out.keys.push([k.id, s, k.certificate_match, k.certificates, k.expires, k.is_inactive, k.token_sha256]);
  }
  return out;
}

/** The records again, in the field order the keys stage builds them; equal sessions (across entries: `shared`) are one object. */
export function unpackKeys(packed: PackedKeys, shared: Map<string, PackedKeys['sessions'][number]>): BundleKey[] {
  const sessions = packed.sessions.map((s) => {
    const id = JSON.stringify(s);
    let one = shared.get(id);
    if (one === undefined) shared.set(id, (one = s));
    return one;
  });
  return packed.keys.map(([id, s, certificate_match, certificates, expires, is_inactive, token_sha256]) => {
    const [access_rights, policies, quota, rate, deny] = sessions[s];
    return {
      access_rights,
      certificate_match,
      certificates,
      expires,
      id,
      is_inactive,
      ...(deny ? { on_limiter_error: 'deny' as const } : {}),
      policies,
      quota,
      rate,
      token_sha256,
    };
  });
}

/** What the keys stage made of one file, in the form an entry stores. */
export interface FileKeys {
  keys: BundleKey[];
  notAfter: [string, number][];
  diagnostics: Diagnostic[];
}

export function contextDigest(parts: unknown): string {
  return createHash('sha256').update(FORMAT).update(JSON.stringify(parts)).digest('hex');
}

/**
 * The first instant after `now` at which a result depending on these times would change:
 * a certificate expiring (notAfter), entering the warning window or its day count changing
 * (notAfter - k days), a key expiring. Infinity when none.
 */
export function validUntil(now: number, notAfters: readonly number[], expires: readonly number[], warningDays: number): number {
  let until = Number.POSITIVE_INFINITY;
  for (const t of notAfters) {
    if (t <= now) continue;
    // The day count floor((t - now) / day) changes at each t - k days (k whole, up to the window).
    const k = Math.min(Math.floor(warningDays), Math.ceil((t - now) / DAY_MS) - 1);
    until = Math.min(until, t - k * DAY_MS);
    // Entering the warning window (at t - warningDays days, not a whole day for a fractional N).
    const enters = t - warningDays * DAY_MS;
    if (enters > now) until = Math.min(until, enters);
  }
  for (const e of expires) if (e > now) until = Math.min(until, e);
  return until;
}

function isEntry(v: unknown, code: string): v is CacheEntry {
  const e = v as CacheEntry;
  return (
    typeof e === 'object' &&
    e !== null &&
    e.format === FORMAT &&
    e.code === code &&
    typeof e.path === 'string' &&
    typeof e.text === 'string' &&
    typeof e.context === 'string' &&
    Number.isInteger(e.docs) &&
    typeof e.validFrom === 'number' &&
    (typeof e.validUntil === 'number' || e.validUntil === null) &&
    typeof e.keys === 'object' &&
    e.keys !== null &&
    Array.isArray(e.keys.sessions) &&
    e.keys.sessions.every((s) => Array.isArray(s) && s.length === 5) &&
    Array.isArray(e.keys.keys) &&
    e.keys.keys.every(
      (k) => Array.isArray(k) && k.length === 7 && typeof k[0] === 'string' && Number.isInteger(k[1]) && k[1] >= 0 && k[1] < e.keys.sessions.length,
    ) &&
    Array.isArray(e.notAfter) &&
    Array.isArray(e.diagnostics) &&
    Array.isArray(e.files) &&
    e.files.every((f) => Array.isArray(f) && typeof f[0] === 'string')
  );
}

export class KeyCache {
  private readonly hashes = new Map<SourceFile, string>();

  /**
   * `code`: the build's compilerCode(), handed in by a key worker thread (compiler/keys-worker.ts),
   * whose own module file is not the CLI's.
   */
  constructor(
    readonly dir: string,
    private readonly code: string = compilerCode(),
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private entryPath(file: SourceFile): string {
    return join(this.dir, `${createHash('sha256').update(FORMAT).update('\0').update(file.absPath).digest('hex')}.json`);
  }

  textHash(file: SourceFile): string {
    // A file known by its stat (compiler/known-files.ts) is not read to be hashed.
    let h = file.textSha256 ?? this.hashes.get(file);
    if (h === undefined) this.hashes.set(file, (h = sha256Hex(file.text, 'utf8')));
    return h;
  }

  /** Entries whose file text is unchanged (the files that need not be parsed, if the rest holds). */
  candidates(files: readonly SourceFile[]): Map<SourceFile, CacheEntry> {
    const out = new Map<SourceFile, CacheEntry>();
    for (const file of files) {
      const entry = this.read(file);
      if (entry) out.set(file, entry);
    }
    return out;
  }

  /** The file's entry when it was made from the file's exact text by this build (not yet checked for use: `usable`). */
  read(file: SourceFile): CacheEntry | null {
    const entry = readDigestedJson(this.entryPath(file));
    if (!isEntry(entry, this.code) || entry.path !== file.absPath || entry.text !== this.textHash(file)) return null;
    return entry;
  }

  /** Whether `entry` may stand for its file now (the text was checked by `candidates`). */
  usable(entry: CacheEntry, context: string, now: number): boolean {
    if (entry.context !== context || now < entry.validFrom || now >= (entry.validUntil ?? Number.POSITIVE_INFINITY)) return false;
    for (const [abs, was] of entry.files) {
      const is = statWitness(abs);
      if (was === null || is === null) {
        if (was !== is) return false;
        continue;
      }
      if (!sameWitness(is, was)) return false;
      if (was.sha256 !== undefined) {
        try {
          if (sha256Hex(readFileSync(abs)) !== was.sha256) return false;
        } catch {
          return false;
        }
      }
    }
    return true;
  }

  write(file: SourceFile, entry: Omit<CacheEntry, 'format' | 'code' | 'path' | 'text'>): void {
    const full: CacheEntry = { format: FORMAT, code: this.code, path: file.absPath, text: this.textHash(file), ...entry };
    // JSON has no Infinity: null stands for "no time-dependent result".
    // Best effort: a cache that cannot be written only makes the next compile slower.
    try {
      writeDigestedJson(this.entryPath(file), { ...full, validUntil: Number.isFinite(full.validUntil) ? full.validUntil : null });
    } catch {}
  }
}

export { RACY_MS };
