// The compiler's public API: config directory -> diagnostics -> bundle.
// Stages (one module each, all writing into one DiagnosticLog, none throwing on bad config):
//   load (files, UTF-8) -> parse (YAML) -> schema (ajv) -> checks + resolve (APIs, policies,
//   keys, certificates; policies merged per key) -> emit (indexes, serializeBundle).
import { resolve } from 'node:path';
import { bundleProblems } from '../bundle/checks.ts';
import { serializeWire } from '../bundle/write.ts';
import { expandContent } from '../bundle/wire.ts';
import type { BundleContent, WireContent } from '../bundle/types.ts';
import { Confinement } from './confine.ts';
import { reportOutcomes } from './check-tests.ts';
import { DiagnosticLog } from './diagnostics.ts';
import { buildWire } from './emit.ts';
import { DirListings } from './dir-listings.ts';
import { KnownFiles } from './known-files.ts';
import { loadConfigFiles } from './load.ts';
import type { LiveCapture } from './live-state.ts';
import { KeyCache } from './key-cache.ts';
import type { SourceFile } from './source.ts';
import { writeSnapshot } from './compile-snapshot.ts';
import { compileFromSnapshot, type SnapshotStart, startSnapshot } from './snapshot-compile.ts';
import type { SourceDoc } from './source.ts';
import type { CompileOptions, CompileResult } from './compile-types.ts';
import { portalPlans, type ResolveInput, resolveConfig, resolveFront } from './resolve-config.ts';

export type { Diagnostic, Severity } from './diagnostics.ts';
export { CODES, type Code } from './codes.ts';
export { formatDiagnostics, displayPath, type OutputFormat } from './format.ts';
export { ConfigDirError } from './load.ts';
export { describeFailure, type AccessCase, type AccessOutcome, type AccessTestRunner } from './check-tests.ts';
export type { CompileOptions, CompileResult, PortalPlan } from './compile-types.ts';

/**
 * Compiles the config directory `dir`. Config problems are diagnostics, never exceptions;
 * it throws ConfigDirError only when `dir` itself cannot be read (an I/O error, exit 2).
 */
export async function compileDir(dir: string, opts: CompileOptions = {}): Promise<CompileResult> {
  return compileDirCapturing(dir, opts);
}

/**
 * compileDir, and with `live` what the live compile (compiler/live-compile.ts) keeps of it:
 * the files, the resolved APIs and policies, each key file's results. Not part of the CLI.
 */
export async function compileDirCapturing(dir: string, opts: CompileOptions, live?: LiveCapture): Promise<CompileResult> {
  const log = new DiagnosticLog(opts.strict === true);
  const started = performance.now();
  const confine = new Confinement(dir, opts.allowOutside);
  const cached = opts.cacheDir !== undefined && live === undefined;
  // The snapshot's witness check starts first: it runs in worker threads while the config loads.
  const early = cached ? startSnapshot(opts.cacheDir!) : undefined;
  const earlyMs = Math.round(performance.now() - started);
  const listings = opts.cacheDir !== undefined ? DirListings.read(opts.cacheDir) : undefined;
  // Key files whose stat the snapshot recorded are not read unless needed (known-files.ts).
  // With a cache every file's stat is taken (the snapshot this compile writes records it).
  const known = early ? new KnownFiles('miss' in early ? [] : early.state.files) : undefined;
  const files = loadConfigFiles(dir, log, opts.exclude, confine, listings, known);
  listings?.save();
  opts.onLoaded?.(files.length);
  return compileFiles(files, confine, dir, log, opts, Math.round(performance.now() - started) - earlyMs, live, early, earlyMs);
}

/**
 * Compiles one YAML stream (`mtlsgate check -`): its documents are shown as file `name`, and
 * relative certificate paths resolve from `baseDir`.
 */
export async function compileText(text: string, name: string, baseDir: string, opts: CompileOptions = {}): Promise<CompileResult> {
  const log = new DiagnosticLog(opts.strict === true);
  // Certificate paths named on standard input stay inside baseDir (the working directory).
  const confine = new Confinement(baseDir, opts.allowOutside);
  return compileFiles([{ path: name, absPath: resolve(baseDir, name), text }], confine, baseDir, log, opts, 0);
}

async function compileFiles(
  files: SourceFile[],
  confine: Confinement,
  dir: string,
  log: DiagnosticLog,
  opts: CompileOptions,
  loadMs: number,
  live?: LiveCapture,
  early?: SnapshotStart,
  earlyMs?: number,
): Promise<CompileResult> {
  const now = opts.now ?? new Date();
  const timings: Record<string, number> = early ? { 'snapshot-start': earlyMs ?? 0, load: loadMs } : { load: loadMs };
  let mark = performance.now();
  const stage = <T>(name: string, run: () => T): T => {
    const value = run();
    const t = performance.now();
    timings[name] = Math.round(t - mark);
    mark = t;
    return value;
  };
  const input: ResolveInput = { files, confine, dir, log, opts, now, stage };
  // The parsed documents live only inside resolveConfig: at 1,000,000 keys they are ~1 GB that
  // the index and emit stages need not share the heap with.
  let snapshotMiss: string | undefined;
  if (opts.cacheDir !== undefined && live === undefined) {
    const cache = new KeyCache(opts.cacheDir);
    const front = (docs: SourceDoc[], flog: DiagnosticLog) => resolveFront({ ...input, log: flog }, docs, { beforeApis: (certs) => certs.recordWitnesses() });
    const patched = await compileFromSnapshot(early ?? startSnapshot(opts.cacheDir), files, dir, log, opts, cache, now, stage, front);
    if ('miss' in patched) snapshotMiss = patched.miss;
    else {
      const diagnostics = patched.log.sorted();
      const errorCount = diagnostics.filter((d) => d.severity === 'error').length;
      const unread = files.filter((f) => f.textSha256 !== undefined && Object.getOwnPropertyDescriptor(f, 'text')?.get !== undefined).length;
      const cacheStats = {
        cache: { hits: patched.kept, stale: 0, patched: patched.resolved, ...(unread > 0 ? { unread } : {}) },
        keyWorkers: { count: 0 },
      };
      // A failing access test (the only error the patched path lets through).
      if (errorCount > 0)
        return {
          diagnostics,
          errorCount,
          warningCount: diagnostics.length - errorCount,
          content: null,
          wire: null,
          bundle: null,
          timings,
          tests: patched.tests,
          ...cacheStats,
          portalPlans: [],
        };
      const { bundle } = patched;
      let content: BundleContent | undefined;
      let wire: WireContent | undefined;
      // Parsed from the bytes when first read: the single-file CLI never reads it.
      const wireOf = () => (wire ??= patched.wireOf());
      return {
        diagnostics,
        errorCount: 0,
        warningCount: diagnostics.length,
        get content() {
          return (content ??= expandContent(wireOf()));
        },
        get wire() {
          return wireOf();
        },
        counts: patched.counts,
        bundle,
        timings,
        tests: patched.tests,
        ...cacheStats,
        ...(patched.bundleFile ? { bundleFile: patched.bundleFile } : {}),
        keyChange: patched.keyChange,
        portalPlans: portalPlans(patched.front.typed.policies, patched.front.policies),
      };
    }
  }
  const { apis, keys, revocation, cases, cacheStats, plans, keyWorkers, snapshot } = await resolveConfig(input, live);
  const tests: CompileResult['tests'] = { cases, outcomes: null };
  const cache = { keyWorkers, ...(cacheStats ? { cache: { ...cacheStats, ...(snapshotMiss ? { snapshotMiss } : {}) } } : {}) };
  const counted = () => {
    const diagnostics = log.sorted();
    const errorCount = diagnostics.filter((d) => d.severity === 'error').length;
    return { diagnostics, errorCount, warningCount: diagnostics.length - errorCount };
  };
  const before = counted();
  if (before.errorCount > 0) return { ...before, content: null, wire: null, bundle: null, timings, tests, ...cache, portalPlans: [] };
  const wire = stage('index', () => buildWire(apis, keys, revocation));
  // The checks above report each of these rules at its YAML node; this is the promise itself
  // (what compile accepts, serve loads), kept if a rule is ever added to one side only.
  const refused = stage('runtime-checks', () => bundleProblems(wire));
  if (refused.length > 0) {
    throw new Error(`internal error: this bundle would be refused by \`mtlsgate serve\` (${refused.map((p) => p.message).join('; ')}); please report it`);
  }
  const bundle = stage('emit', () => serializeWire(wire));
  if (cases.length > 0 && opts.accessTests) {
    const outcomes = stage('run tests', () => opts.accessTests!(bundle, cases));
    tests.outcomes = outcomes;
    reportOutcomes(cases, outcomes, log);
  }
  const after = counted();
  if (after.errorCount > 0) return { ...after, content: null, wire: null, bundle: null, timings, tests, ...cache, portalPlans: [] };
  if (live) Object.assign(live, { files, keys, revocation, diagnostics: after.diagnostics, wire, bundle, now: now.getTime(), testResults: tests });
  const bundleFile =
    snapshot && opts.cacheDir !== undefined
      ? stage('snapshot-write', () => writeSnapshot(opts.cacheDir!, resolve(dir), snapshot.context, snapshot.frame, bundle, snapshot.parts))
      : null;
  let content: BundleContent | undefined;
  return {
    ...after,
    ...(bundleFile ? { bundleFile } : {}),
    get content() {
      return (content ??= expandContent(wire));
    },
    wire,
    bundle,
    timings,
    tests,
    ...cache,
    portalPlans: plans,
  };
}
