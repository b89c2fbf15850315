// The keys stage with a compile cache (compiler/key-cache.ts explains when an entry is used):
// each key file is resolved on its own (or taken from its entry), then the cross-file checks run
// on the merged results. Returns null when a cross-file duplicate (key id, certificate, token)
// makes the files interact: the caller then runs the ordinary keys stage over every file, so the
// diagnostics are exactly an uncached compile's.
import type { BundleApi, BundleKey, CertMatch } from '../bundle/types.ts';
import type { CertLoader, FileWitness } from './certs.ts';
import { type ResolvedKeys, resolveKeys } from './check-keys.ts';
import { DiagnosticLog } from './diagnostics.ts';
import { type CacheEntry, contextDigest, type FileKeys, type KeyCache, packKeys, type PackedKeys, unpackKeys, validUntil } from './key-cache.ts';
import type { CaRegistry } from './match.ts';
import { type KeyMatcher, reportOverlaps } from './match-overlap.ts';
import type { KeyDoc, PolicyDoc } from './model.ts';
import type { SourceDoc, SourceFile } from './source.ts';

/**
 * What the keys stage made of one key file, kept by the portal's live compile
 * (compiler/live-compile.ts) so that the next compile resolves only the files that changed.
 */
export interface FileKeysState extends FileKeys {
  /** Certificate files its keys read (absolute paths). */
  certFiles: string[];
  /** Its results hold for now < validUntil (key-cache.ts `validUntil`). */
  validUntil: number;
  /** Documents in the file. */
  docs: number;
  /** Only schema-valid key documents without certificate_match, and no parse or schema diagnostic. */
  plain: boolean;
  /** Each certificate file's witness, when the compile cache recorded them (the snapshot keeps them). */
  witnesses?: [string, FileWitness][];
}

export interface CachedKeysInput {
  /** null: no disk cache (every file is resolved), but still one file at a time. */
  cache: KeyCache | null;
  /** Entries whose file text is unchanged; their files were not parsed. */
  candidates: Map<SourceFile, CacheEntry>;
  /** Every config file, in compile order. */
  files: readonly SourceFile[];
  /** Parsed documents and the valid key documents among them (of the files not skipped). */
  docs: readonly SourceDoc[];
  keyDocs: readonly KeyDoc[];
  /** Parses and validates files whose entry turned out unusable; returns their documents and key documents. */
  parseMore: (files: SourceFile[]) => { docs: SourceDoc[]; keys: KeyDoc[] };
  policies: Map<string, PolicyDoc>;
  apis: Map<string, BundleApi>;
  cas: CaRegistry;
  broken: { api: ReadonlySet<string>; policy: ReadonlySet<string> };
  certs: CertLoader;
  now: Date;
  log: DiagnosticLog;
  /** What else changes the keys stage's results: options, config directory. */
  options: { strict: boolean; expiryWarningDays: number; dir: string; allowOutside: readonly string[] };
  /** When given, receives each key file's results (by SourceFile), for the live compile. */
  perFile?: Map<SourceFile, FileKeysState>;
}

/** The key documents of every file, in compile order (as the ordinary keys stage sees them). */
export function keyDocsInFileOrder(files: readonly SourceFile[], keyDocs: readonly KeyDoc[]): KeyDoc[] {
  const index = new Map(files.map((f, i) => [f, i]));
  return [...keyDocs].sort((a, b) => index.get(a.doc.file)! - index.get(b.doc.file)!);
}

/** The digest of what else decides a key file's keys-stage results: APIs, policies, schema-broken ids, options. */
export function keysContext(
  apis: Map<string, BundleApi>,
  policies: Map<string, PolicyDoc>,
  broken: { api: ReadonlySet<string>; policy: ReadonlySet<string> },
  options: CachedKeysInput['options'],
): string {
  return contextDigest({
    apis: [...apis],
    policies: [...policies].map(([id, p]) => [id, p.spec]),
    broken: { api: [...broken.api].sort(), policy: [...broken.policy].sort() },
    options,
  });
}

export function resolveKeysCached(input: CachedKeysInput): { keys: ResolvedKeys; hits: number; context: string } | null {
  const { cache, candidates, files, policies, apis, cas, broken, certs, now, log, options } = input;
  const context = keysContext(apis, policies, broken, options);
  const nowMs = now.getTime();
  const hits = new Map<SourceFile, CacheEntry>();
  const stale: SourceFile[] = [];
  for (const [file, entry] of candidates) {
    if (cache?.usable(entry, context, nowMs)) hits.set(file, entry);
    else stale.push(file);
  }
  const more = stale.length > 0 ? input.parseMore(stale) : { docs: [], keys: [] };

  const docsOf = new Map<SourceFile, number>();
  for (const d of [...input.docs, ...more.docs]) docsOf.set(d.file, (docsOf.get(d.file) ?? 0) + 1);
  const keyDocsOf = new Map<SourceFile, KeyDoc[]>();
  for (const k of [...input.keyDocs, ...more.keys]) {
    const list = keyDocsOf.get(k.doc.file);
    if (list) list.push(k);
    else keyDocsOf.set(k.doc.file, [k]);
  }
  // A file with a parse or schema diagnostic is resolved, never cached (its entry would miss them).
  const dirty = new Set(log.diagnostics.map((d) => d.file));

  const results: FileKeys[] = [];
  const matchers: KeyMatcher[] = [];
  const sessions = new Map<string, PackedKeys['sessions'][number]>();
  for (const file of files) {
    const entry = hits.get(file);
    if (entry) {
      const fileKeys: FileKeys = { keys: unpackKeys(entry.keys, sessions), notAfter: entry.notAfter, diagnostics: entry.diagnostics };
      results.push(fileKeys);
      input.perFile?.set(file, {
        ...fileKeys,
        certFiles: entry.files.map(([abs]) => abs),
        validUntil: entry.validUntil ?? Number.POSITIVE_INFINITY,
        docs: entry.docs,
        plain: true,
        witnesses: entry.files,
      });
      continue;
    }
    const docs = keyDocsOf.get(file);
    if (!docs) continue;
    const fileLog = new DiagnosticLog(options.strict);
    const scoped = certs.scoped(fileLog);
    const resolved = resolveKeys(docs, policies, apis, broken, scoped, cas, now, fileLog, false);
    matchers.push(...resolved.matchers);
    const fileKeys: FileKeys = { keys: [...resolved.keys.values()], notAfter: [...resolved.notAfter], diagnostics: fileLog.diagnostics };
    results.push(fileKeys);
    const cacheable = docsOf.get(file) === docs.length && !dirty.has(file.path) && docs.every((d) => d.spec.certificate_match === undefined);
    const touched = scoped.touched!;
    const expires = fileKeys.keys.flatMap((k) => (k.expires === null ? [] : [Date.parse(k.expires)]));
    const until = validUntil(nowMs, touched.notAfters, expires, options.expiryWarningDays);
    const witnesses: [string, FileWitness][] | undefined = cache ? [...touched.files].map((abs) => [abs, certs.witnessOf(abs) ?? null]) : undefined;
    input.perFile?.set(file, {
      ...fileKeys,
      certFiles: [...touched.files],
      validUntil: until,
      docs: docsOf.get(file) ?? 0,
      plain: cacheable,
      ...(witnesses ? { witnesses } : {}),
    });
    if (cacheable && cache) {
      cache.write(file, {
        context,
        docs: docs.length,
        validFrom: nowMs,
        validUntil: until,
        keys: packKeys(fileKeys.keys),
        notAfter: fileKeys.notAfter,
        diagnostics: fileKeys.diagnostics,
        files: witnesses!,
      });
    }
  }
  const merged = merge(results);
  if (merged === null) return null;
  for (const r of results) log.diagnostics.push(...r.diagnostics);
  reportOverlaps(matchers, log);
  merged.matchers = matchers;
  return { keys: merged, hits: hits.size, context };
}

/** The files' keys as one ResolvedKeys, or null when two files share a key id, certificate or token. */
function merge(results: readonly FileKeys[]): ResolvedKeys | null {
  const out = { keys: new Map<string, BundleKey>(), matches: new Map<string, CertMatch>(), notAfter: new Map<string, number>(), matchers: [] as KeyMatcher[] };
  const certs = new Set<string>();
  const tokens = new Set<string>();
  for (const r of results) {
    const fileCerts = new Set<string>();
    const fileTokens = new Set<string>();
    for (const key of r.keys as BundleKey[]) {
      if (out.keys.has(key.id)) return null;
      out.keys.set(key.id, key);
      if (key.certificate_match) out.matches.set(key.id, key.certificate_match);
      for (const fp of key.certificates) {
        if (certs.has(fp)) return null;
        fileCerts.add(fp);
      }
      if (key.token_sha256 !== null) {
        if (tokens.has(key.token_sha256)) return null;
        fileTokens.add(key.token_sha256);
      }
    }
    // Duplicates within one file were reported by its own run, as the ordinary stage would.
    for (const fp of fileCerts) certs.add(fp);
    for (const t of fileTokens) tokens.add(t);
    for (const [fp, t] of r.notAfter) out.notAfter.set(fp, t);
  }
  return out;
}
