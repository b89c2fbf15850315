// `compile --cache DIR` inside a key worker thread (compiler/keys-worker.ts): the worker that
// resolves a key file also takes it from its per-file entry (compiler/key-cache.ts) when the
// entry is usable, or writes the entry once the file is resolved, and hands back the file's part
// of the snapshot (compiler/compile-snapshot.ts) as compact columns. So a cold `--cache` compile
// at 1,000,000 keys runs the keys stage in the workers like an uncached one, and the main thread
// never holds 1,000,000 records, their packed entries or a witness object per certificate file.
// The rules are compiler/cached-keys.ts's, file for file: an entry is used under the same
// conditions (key-cache.ts `usable`) and written for the same files (only schema-valid key
// documents without certificate_match, no parse or schema diagnostic).
import type { BundleKey } from '../bundle/types.ts';
import type { CertLoader, FileWitness } from './certs.ts';
import { type SnapshotInputFile, type WitnessColumns, witnessColumns } from './compile-snapshot.ts';
import type { Diagnostic } from './diagnostics.ts';
import { KeyCache, packKeys, type PackedKeys, unpackKeys, validUntil } from './key-cache.ts';
import type { SourceFile } from './source.ts';

/** What a worker needs to use and write entries: the cache directory, the build, the keys-stage context digest, the config directory (absolute). */
export interface KeyFileCacheContext {
  dir: string;
  code: string;
  context: string;
  root: string;
}

/** A key file's cache facts, beside its columns. */
export interface KeyFileCacheFacts {
  /** 'hit': taken from its entry (not parsed); 'stale': an entry for this text was not usable; 'none': no entry for this text. */
  entry: 'hit' | 'stale' | 'none';
  /** SHA-256 of the file's text. */
  text: string;
  /** Whether the file has an entry now and may be in the snapshot (cached-keys.ts `cacheable`). */
  plain: boolean;
  /** Key documents (= documents, when plain). */
  keyDocs: number;
  /** Its results hold for now < validUntil (null: no time-dependent result). */
  validUntil: number | null;
  /** Its certificate files in the snapshot's witness form; null when one cannot be written there. */
  witnesses: WitnessColumns | null;
}

/** A usable entry's records and facts, or why there is none ('stale' / 'none'). */
type EntryLookup = { keys: BundleKey[]; notAfter: [string, number][]; diagnostics: Diagnostic[]; facts: KeyFileCacheFacts } | { entry: 'stale' | 'none' };

export class KeyFileCache {
  private readonly cache: KeyCache;
  /** Equal sessions of every entry this worker reads are one object (key-cache.ts `unpackKeys`). */
  private readonly sessions = new Map<string, PackedKeys['sessions'][number]>();

  constructor(private readonly ctx: KeyFileCacheContext) {
    this.cache = new KeyCache(ctx.dir, ctx.code);
  }

  /** The file's entry when it may stand for the file now (its certificate files stat'ed here, in the worker). */
  lookup(file: SourceFile, nowMs: number): EntryLookup {
    const entry = this.cache.read(file);
    if (entry === null) return { entry: 'none' };
    if (!this.cache.usable(entry, this.ctx.context, nowMs)) return { entry: 'stale' };
    const facts: KeyFileCacheFacts = {
      entry: 'hit',
      text: this.cache.textHash(file),
      plain: true,
      keyDocs: entry.docs,
      validUntil: entry.validUntil ?? null,
      witnesses: witnessColumns(entry.files, this.ctx.root),
    };
    return { keys: unpackKeys(entry.keys, this.sessions), notAfter: entry.notAfter, diagnostics: entry.diagnostics, facts };
  }

  /** A loader that records what the cache needs: a witness of each certificate file (stat before read) and what the file's keys touched. */
  static prepare(certs: CertLoader): void {
    certs.recordWitnesses();
    certs.touched = { files: new Set(), notAfters: [] };
  }

  /**
   * The facts of a file just resolved (with a loader `prepare`d), and its entry written when it
   * is plain. `plain`: only schema-valid key documents, none with certificate_match, and no
   * parse or schema diagnostic (the caller knows).
   */
  record(
    file: SourceFile,
    was: 'stale' | 'none',
    r: { keys: BundleKey[]; notAfter: [string, number][]; diagnostics: Diagnostic[]; keyDocs: number; plain: boolean },
    certs: CertLoader,
    nowMs: number,
    warningDays: number,
  ): KeyFileCacheFacts {
    const touched = certs.touched!;
    const expires = r.keys.flatMap((k) => (k.expires === null ? [] : [Date.parse(k.expires)]));
    const until = validUntil(nowMs, touched.notAfters, expires, warningDays);
    const witnesses: [string, FileWitness][] = [...touched.files].map((abs) => [abs, certs.witnessOf(abs) ?? null]);
    if (r.plain) {
      this.cache.write(file, {
        context: this.ctx.context,
        docs: r.keyDocs,
        validFrom: nowMs,
        validUntil: until,
        keys: packKeys(r.keys),
        notAfter: r.notAfter,
        diagnostics: r.diagnostics,
        files: witnesses,
      });
    }
    return {
      entry: was,
      text: this.cache.textHash(file),
      plain: r.plain,
      keyDocs: r.keyDocs,
      validUntil: Number.isFinite(until) ? until : null,
      witnesses: r.plain ? witnessColumns(witnesses, this.ctx.root) : null,
    };
  }
}

/**
 * On the main thread, once every worker file is in: the cache counts (as cached-keys.ts counts
 * them) and the snapshot's parts, in file order, when every file the workers resolved can be in
 * it (plain, its witnesses writable); files without key documents have no part, as on one thread.
 */
export function poolCacheResult(
  files: readonly SourceFile[],
  results: readonly { keys: { ids: string }; diagnostics: Diagnostic[]; cached?: KeyFileCacheFacts }[],
  nowMs: number,
): { stats: { hits: number; stale: number }; parts: SnapshotInputFile[] | null } {
  const stats = { hits: 0, stale: 0 };
  let parts: SnapshotInputFile[] | null = [];
  results.forEach((r, i) => {
    const facts = r.cached;
    if (facts === undefined) return;
    if (facts.entry === 'hit') stats.hits++;
    else if (facts.entry === 'stale') stats.stale++;
    if (!facts.plain || facts.witnesses === null) parts = null;
    parts?.push({
      path: files[i].absPath,
      text: facts.text,
      ...(files[i].stat ? { stat: files[i].stat } : {}),
      docs: facts.keyDocs,
      validFrom: nowMs,
      validUntil: facts.validUntil,
      diagnostics: r.diagnostics,
      ids: r.keys.ids,
      witnesses: facts.witnesses!,
    });
  });
  return { stats, parts };
}
