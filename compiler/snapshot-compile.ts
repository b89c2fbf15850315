// `compile --cache` when only key files changed since the compile that wrote the snapshot
// (compiler/compile-snapshot.ts): the APIs and policies are resolved again (small), the key files
// whose text, validity window or certificate files changed are parsed and resolved, and the
// previous bundle is patched in its bytes with the keys that differ (compiler/section-patch.ts,
// rule for rule the portal's live-compile patch, compiler/wire-patch.ts). The bytes and diagnostics are an uncached compile's: every fact a key
// file's results depend on is checked (its text, the context digest of APIs, policies and
// options, its certificate files' witnesses, the clock), and anything this path does not handle
// returns null, so the caller compiles the ordinary way (a context change, a certificate file an
// API names changed, a key file that is not only plain key documents, an error, a key id,
// certificate or token another file holds, an unreadable or corrupt snapshot). Revocation and
// test documents are resolved again on every compile (compiler/snapshot-frame.ts): the
// revocation part is written anew when it changed, and the access tests run on the patched
// bundle (a failing case fails the compile, with its E_ACCESS_TEST, as on the ordinary path).
import { resolve } from 'node:path';
import type { BundleKey, WireContent } from '../bundle/types.ts';
import { documentDigest } from '../bundle/write.ts';
import type { SameBytesFile } from '../common/atomic-write.ts';
import { contentOf, locateSections } from './bundle-sections.ts';
import { type FileKeysState, keysContext } from './cached-keys.ts';
import type { CertLoader, FileWitness } from './certs.ts';
import { resolveKeys } from './check-keys.ts';
import type { ResolvedApis } from './check-apis.ts';
import { resolveRevocations } from './check-revocation.ts';
import { type AccessCase, type AccessOutcome, reportOutcomes, resolveTests } from './check-tests.ts';
import {
  idsOf,
  readSnapshotBundle,
  readSnapshotIds,
  readSnapshotState,
  readWitnesses,
  type SnapshotFile,
  type SnapshotState,
  type SnapshotInputFile,
  witnessColumns,
  writeSnapshot,
} from './compile-snapshot.ts';
import { DiagnosticLog } from './diagnostics.ts';
import type { CompileOptions } from './index.ts';
import { type KeyCache, packKeys, validUntil } from './key-cache.ts';
import type { KeyDoc, PolicyDoc } from './model.ts';
import { parseSources } from './parse.ts';
import { validateDocs } from './schema.ts';
import type { SourceDoc, SourceFile } from './source.ts';
import { recordId, withCanonSession } from './key-record.ts';
import { SectionedWire } from './section-patch.ts';
import { frameDigest, patchFrame } from './snapshot-frame.ts';
import { PatchRefused } from './wire-patch.ts';
import { changedWitnesses, WitnessFindings, type WitnessTable } from './witness-check.ts';

/** What resolveFront (compiler/index.ts) returns: the stages before the keys. */
export interface Front {
  typed: ReturnType<typeof validateDocs>;
  certs: CertLoader;
  apis: ResolvedApis;
  policies: Map<string, PolicyDoc>;
}

export interface Patched {
  log: DiagnosticLog;
  /** The content in its file form, parsed from `bundle` (~1 s at 1,000,000 keys: only when read). */
  wireOf: () => WireContent;
  /** What the CLI's summary counts, known without parsing. */
  counts: { apis: number; keys: number; certificates: number };
  bundle: Buffer;
  front: Front;
  /** Key files resolved again (changed, new, or their certificates or clock window changed). */
  resolved: number;
  /** Key files taken from the snapshot. */
  kept: number;
  /** The previous bundle's digest and the ids of the keys taken out of it or put in (compiler/sharded-output.ts keeps the other shards). */
  keyChange: { previous: string; changed: string[] };
  /** The access test cases and their outcomes (null: not run). A failing case is an error in `log`, and no snapshot is written. */
  tests: { cases: AccessCase[]; outcomes: AccessOutcome[] | null };
  /** The snapshot's bundle.json holding exactly `bundle` (null: none written). */
  bundleFile: SameBytesFile | null;
}

type Stage = <T>(name: string, run: () => T) => T;

const miss = (why: string) => ({ miss: why });

/**
 * The snapshot's state and witness table, read before the config is loaded, and the check of
 * every witness already running in worker threads (witness-check.ts): at 1,000,000 certificate
 * files the check is the longest part of a recompile, so it overlaps the load, parse and keys
 * stages. `bad`: indexes (into state.files) of key files a witness of which no longer holds.
 */
export type SnapshotStart =
  | {
      state: SnapshotState;
      table: WitnessTable;
      bad: Promise<Set<number>>;
      /** The indexes in `bad` found so far (the workers report each at once). */
      found: WitnessFindings;
      stop: () => void;
    }
  | { miss: string };

export function startSnapshot(cacheDir: string): SnapshotStart {
  const state = readSnapshotState(cacheDir);
  if (state === null) return miss('no usable snapshot');
  const table = readWitnesses(cacheDir, state);
  if (table === null) return miss('the witness table is corrupt');
  const abort = new AbortController();
  const found = new WitnessFindings();
  const bad = changedWitnesses(
    table,
    state.files.map((was) => ({ start: was.certs[0], end: was.certs[1], ...(was.racy ? { racy: was.racy } : {}) })),
    undefined,
    abort.signal,
    found,
  );
  // (A rejection is awaited by compileFromSnapshot; until then it must not count as unhandled.)
  bad.catch(() => {});
  return { state, table, bad, found, stop: () => abort.abort() };
}

/** The previous bundle patched, or why not (the caller then compiles the ordinary way). */
export async function compileFromSnapshot(start: SnapshotStart, ...rest: PatchInput): Promise<Patched | { miss: string }> {
  if ('miss' in start) return start;
  const result = await patchSnapshot(start, ...rest);
  // A miss: the workers still checking stop (the ordinary path stats every file itself).
  if ('miss' in result) start.stop();
  return result;
}

/** patchSnapshot's inputs after the started snapshot: the files, config dir, load log, options, key cache, clock, stage timer, front. */
type PatchInput = Parameters<typeof patchSnapshot> extends [unknown, ...infer Rest] ? Rest : never;

async function patchSnapshot(
  start: Exclude<SnapshotStart, { miss: string }>,
  files: SourceFile[],
  dir: string,
  loadLog: DiagnosticLog,
  opts: CompileOptions,
  cache: KeyCache,
  now: Date,
  stage: Stage,
  front: (docs: SourceDoc[], log: DiagnosticLog) => Front,
): Promise<Patched | { miss: string }> {
  const cacheDir = cache.dir;
  const nowMs = now.getTime();
  const { state, table } = start;
  const strict = opts.strict === true;
  const log = new DiagnosticLog(strict);
  log.diagnostics.push(...loadLog.diagnostics);

  // Key files whose text and clock window still hold are candidates; everything else is parsed.
  const previous = new Map(state.files.map((f, i) => [f.path, { f, i }]));
  const kept = new Map<SourceFile, SnapshotFile>();
  const indexOf = new Map<SourceFile, number>();
  for (const file of files) {
    const was = previous.get(file.absPath)?.f;
    if (was && was.text === cache.textHash(file) && nowMs >= was.validFrom && nowMs < (was.validUntil ?? Number.POSITIVE_INFINITY)) {
      kept.set(file, was);
      indexOf.set(file, previous.get(file.absPath)!.i);
    }
  }
  const docs = stage('parse', () =>
    parseSources(
      files.filter((f) => !kept.has(f)),
      log,
    ),
  );
  const f = front(docs, log);
  const options = { strict, expiryWarningDays: opts.expiryWarningDays ?? 30, dir: resolve(dir), allowOutside: opts.allowOutside ?? [] };
  const { typed, certs, apis, policies } = f;
  if (typed.apis.length === 0 || log.diagnostics.some((d) => d.severity === 'error')) return miss('no API, or an error before the keys');
  if (keysContext(apis.apis, policies, typed.broken, options) !== state.context) return miss('APIs, policies or options changed');

  const fresh = new Map<SourceFile, FileKeysState>();
  let why = '';
  const fail = (reason: string) => {
    why = reason;
    return false;
  };
  const resolveFiles = (docs: readonly SourceDoc[], keyDocs: readonly KeyDoc[]): boolean => {
    // The files to resolve hold only schema-valid key documents without certificate_match, and
    // no parse or schema diagnostic (the snapshot keeps only the keys stage's).
    const docsOf = new Map<SourceFile, number>();
    for (const d of docs) docsOf.set(d.file, (docsOf.get(d.file) ?? 0) + 1);
    const keyDocsOf = new Map<SourceFile, KeyDoc[]>();
    for (const k of keyDocs) {
      if (k.spec.certificate_match !== undefined) return fail('a key with certificate_match');
      const list = keyDocsOf.get(k.doc.file);
      if (list) list.push(k);
      else keyDocsOf.set(k.doc.file, [k]);
    }
    const dirty = new Set(log.diagnostics.map((d) => d.file));
    for (const [file, list] of keyDocsOf)
      if (docsOf.get(file) !== list.length || dirty.has(file.path)) return fail(`${file.path} is not only valid key documents`);
    for (const [file, list] of keyDocsOf) {
      const fileLog = new DiagnosticLog(strict);
      const scoped = certs.scoped(fileLog);
      const r = resolveKeys(list, policies, apis.apis, typed.broken, scoped, apis.cas, now, fileLog, false);
      if (fileLog.diagnostics.some((d) => d.severity === 'error')) return fail(`an error in ${file.path}`);
      const keys = [...r.keys.values()];
      const touched = scoped.touched!;
      const expires = keys.flatMap((k) => (k.expires === null ? [] : [Date.parse(k.expires)]));
      fresh.set(file, {
        keys,
        notAfter: [...r.notAfter],
        diagnostics: fileLog.diagnostics,
        certFiles: [...touched.files],
        validUntil: validUntil(nowMs, touched.notAfters, expires, options.expiryWarningDays),
        docs: list.length,
        plain: true,
        witnesses: [...touched.files].map((abs): [string, FileWitness] => [abs, certs.witnessOf(abs) ?? null]),
      });
    }
    return true;
  };
  if (!stage('keys', () => resolveFiles(docs, typed.keys))) return miss(why);
  // The bundle's other parts are the previous ones only if what they take from the APIs' certificate files held.
  if (frameDigest(apis) !== state.frame) return miss('a certificate file an API names changed');
  // After the keys, as on the ordinary path (resolveTail in compiler/index.ts).
  const revocation = stage('revocation', () => resolveRevocations(typed.revocations, apis.cas, certs, now, log));
  const cases = stage('tests', () => resolveTests(typed.tests, log, (abs) => certs.outside(abs)));
  if (log.diagnostics.some((d) => d.severity === 'error')) return miss('an error in a revocation or test document');

  const bytes = stage('snapshot-bundle', () => readSnapshotBundle(cacheDir, state));
  if (bytes === null) return miss('the previous bundle is corrupt');
  const ids = readSnapshotIds(cacheDir, state);
  if (ids === null) return miss('the key id table is corrupt');
  // The previous bundle as byte ranges (bundle-sections.ts): no JSON.parse of its 1,000,000 rows.
  const sections = stage('snapshot-parse', () => locateSections(bytes));
  if (sections === null) return miss('the previous bundle is not laid out as this build writes it');
  const previousWire = new SectionedWire(sections);

  // Kept files one of whose certificate files changed are parsed and resolved again: those the
  // workers found already (a changed file is reported at once), while they check the rest; then,
  // once the check is over, those found last. Either way before the patch reads `kept`.
  const resolveAgain = (isBad: (i: number) => boolean): boolean => {
    const recheck = [...kept.keys()].filter((file) => isBad(indexOf.get(file)!));
    if (recheck.length === 0) return true;
    for (const file of recheck) kept.delete(file);
    const moreDocs = parseSources(recheck, log);
    const moreTyped = validateDocs(moreDocs, log);
    if (moreTyped.keys.length !== moreDocs.length || !stage('keys-again', () => resolveFiles(moreDocs, moreTyped.keys))) {
      why ||= 'a key file whose certificate changed is not only key documents';
      return false;
    }
    return true;
  };
  const early = start.found.soFar();
  if (!resolveAgain((i) => early.has(i))) return miss(why);
  // A worker that could not run: the ordinary path (it stats every file itself).
  const bad = await start.bad.catch(() => null);
  stage('witnesses', () => bad);
  if (bad === null) return miss('the witness check failed');
  if (!resolveAgain((i) => bad.has(i))) return miss(why);

  // The previous rows of the files that are not kept, and the new keys: only the keys that differ are patched.
  const keptPaths = new Set([...kept.values()].map((s) => s.path));
  const changed: string[] = [];
  const patched = stage('patch', () => {
    const oldIds = new Set<string>();
    for (const s of state.files) if (!keptPaths.has(s.path)) for (const id of idsOf(ids, s)) oldIds.add(id);
    const old = previousWire.records(oldIds);
    if (typeof old === 'string') return old;
    const removed: BundleKey[] = [];
    const added: BundleKey[] = [];
    const notAfter = new Map<string, number>();
    for (const r of fresh.values()) {
      for (const k of r.keys) {
        const was = old.get(k.id);
        if (was && recordId(was) === recordId(k)) {
          old.delete(k.id);
          continue;
        }
        if (was) {
          removed.push(was);
          old.delete(k.id);
        }
        added.push(withCanonSession(k));
      }
      for (const [fp, ms] of r.notAfter) notAfter.set(fp, ms);
    }
    removed.push(...old.values());
    for (const k of removed) changed.push(k.id);
    for (const k of added) changed.push(k.id);
    // A certificate kept by an unchanged key must keep its notAfter: only changed keys' matter here.
    // The runtime checks (bundleProblems) run inside, on the parts a key can change.
    try {
      return previousWire.patch(removed, added, notAfter, patchFrame(apis, revocation));
    } catch (err) {
      if (err instanceof PatchRefused) return `the patch was refused: ${err.message}`;
      throw err;
    }
  });
  if (typeof patched === 'string') return miss(patched);
  const bundle = patched.bytes;

  // Diagnostics: the stages before the keys (just run), then each key file's, in file order.
  for (const file of files) {
    const was = kept.get(file);
    if (was) log.diagnostics.push(...was.diagnostics);
    else {
      const r = fresh.get(file);
      if (r) log.diagnostics.push(...r.diagnostics);
    }
  }
  if (log.diagnostics.some((d) => d.severity === 'error')) return miss('an error');

  // The access tests, on the bundle this compile gives (as the ordinary path runs them on its own).
  const tests: Patched['tests'] = { cases, outcomes: null };
  if (cases.length > 0 && opts.accessTests) {
    const outcomes = stage('run tests', () => opts.accessTests!(bundle, cases));
    tests.outcomes = outcomes;
    reportOutcomes(cases, outcomes, log);
  }
  const failed = log.diagnostics.some((d) => d.severity === 'error');

  // A failed compile writes nothing: the next one patches the same previous bundle.
  let bundleFile: SameBytesFile | null = null;
  if (!failed)
    bundleFile = stage('snapshot-write', () => {
      const parts: SnapshotInputFile[] = [];
      let writable = true;
      for (const file of files) {
        const was = kept.get(file);
        if (was) {
          const { certs: _c, racy: _r, ids: _i, stat: _s, ...rest } = was;
          // Its stat as this compile found it (a file touched but not changed is recorded anew).
          parts.push({ ...rest, ...(file.stat ? { stat: file.stat } : {}), previous: was });
          continue;
        }
        const r = fresh.get(file);
        if (!r) continue;
        const part = snapshotPart(file, r, cache.textHash(file), nowMs, resolve(dir));
        // One path a line: a certificate path with a newline cannot be kept (the entries still work).
        if (part === null) writable = false;
        else parts.push(part);
        // The per-file entry too, so that a compile that cannot patch finds this file cached.
        cache.write(file, {
          context: state.context,
          docs: r.docs,
          validFrom: nowMs,
          validUntil: r.validUntil,
          keys: packKeys(r.keys),
          notAfter: r.notAfter,
          diagnostics: r.diagnostics,
          files: r.witnesses!,
        });
      }
      const sameBundle = patched.digest === documentDigest(bytes);
      return writable ? writeSnapshot(cacheDir, resolve(dir), state.context, state.frame, bundle, parts, { state, table, ids, sameBundle }) : null;
    });
  return {
    log,
    wireOf: () => contentOf(bundle),
    counts: patched.counts,
    bundle,
    front: f,
    resolved: fresh.size,
    kept: kept.size,
    keyChange: { previous: state.bundle, changed },
    tests,
    bundleFile,
  };
}

/** A key file's part of the snapshot, from its keys-stage results; null when it cannot have one (a certificate path with a newline). */
export function snapshotPart(file: SourceFile, r: FileKeysState, text: string, nowMs: number, root: string): SnapshotInputFile | null {
  const witnesses = witnessColumns(r.witnesses ?? [], root);
  if (witnesses === null) return null;
  return {
    path: file.absPath,
    text,
    ...(file.stat ? { stat: file.stat } : {}),
    docs: r.docs,
    validFrom: nowMs,
    validUntil: Number.isFinite(r.validUntil) ? r.validUntil : null,
    diagnostics: r.diagnostics,
    ids: r.keys.map((k) => k.id).join('\n'),
    witnesses,
  };
}
