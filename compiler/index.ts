// The compiler's public API: config directory -> diagnostics -> bundle.
// Stages (one module each, all writing into one DiagnosticLog, none throwing on bad config):
//   load (files, UTF-8) -> parse (YAML) -> schema (ajv) -> checks + resolve (APIs, policies,
//   keys, certificates; policies merged per key) -> emit (indexes, serializeBundle).
import { resolve } from 'node:path';
import { bundleProblems } from '../bundle/checks.ts';
import { serializeWire } from '../bundle/write.ts';
import { expandContent } from '../bundle/wire.ts';
import type { BundleContent, WireContent } from '../bundle/types.ts';
import { CertLoader } from './certs.ts';
import { Confinement } from './confine.ts';
import { resolveApis } from './check-apis.ts';
import { type ResolvedKeys, resolveKeys } from './check-keys.ts';
import { resolveRevocations } from './check-revocation.ts';
import { checkPolicies } from './check-policies.ts';
import { reportOutcomes, resolveTests, type AccessCase, type AccessOutcome, type AccessTestRunner } from './check-tests.ts';
import { DiagnosticLog, type Diagnostic } from './diagnostics.ts';
import { buildWire } from './emit.ts';
import { DirListings } from './dir-listings.ts';
import { KnownFiles } from './known-files.ts';
import { loadConfigFiles } from './load.ts';
import { type FileKeysState, keyDocsInFileOrder, keysContext, resolveKeysCached } from './cached-keys.ts';
import type { LiveCapture } from './live-state.ts';
import { compilerCode, KeyCache } from './key-cache.ts';
import { poolCacheResult } from './key-file-cache.ts';
import { toColumns } from './key-file.ts';
import { buildKeyTable } from './key-table.ts';
import { KeyWorkerPool, planWorkers } from './parallel-keys.ts';
import { checkLimitsOfBroken } from './limits.ts';
import type { SourceFile } from './source.ts';
import { parseSources } from './parse.ts';
import { validateDocs } from './schema.ts';
import { type SnapshotInputFile, writeSnapshot } from './compile-snapshot.ts';
import { compileFromSnapshot, type SnapshotStart, snapshotPart, startSnapshot } from './snapshot-compile.ts';
import { frameDigest } from './snapshot-frame.ts';
import type { SourceDoc } from './source.ts';

export type { Diagnostic, Severity } from './diagnostics.ts';
export { CODES, type Code } from './codes.ts';
export { formatDiagnostics, displayPath, type OutputFormat } from './format.ts';
export { ConfigDirError } from './load.ts';
export { describeFailure, type AccessCase, type AccessOutcome, type AccessTestRunner } from './check-tests.ts';

export interface CompileOptions {
  /** Warn about certificates expiring within this many days (default 30). */
  expiryWarningDays?: number;
  /** Every warning is an error (the code stays W_...). */
  strict?: boolean;
  /** An empty config (no documents; no APIs) is meant: no E_EMPTY_CONFIG / W_NO_APIS. */
  allowEmpty?: boolean;
  /** Extra ignore patterns (gitignore syntax), after the config directory's .mtlsgateignore. */
  exclude?: readonly string[];
  /** The clock for expiry checks (default: now). */
  now?: Date;
  /** Files or directories outside the config directory that may be read (`--allow-outside`). */
  allowOutside?: readonly string[];
  /**
   * Decides the kind: test cases against the bundle (the CLI passes access/'s runner, which
   * runs the gateway's stages); failing cases are E_ACCESS_TEST errors. Without it, tests are
   * validated but not run.
   */
  accessTests?: AccessTestRunner;
  /**
   * A directory for the compile cache (`--cache DIR`, compiler/key-cache.ts): one entry per key
   * file, so a recompile parses and resolves only the key files that changed. Same output.
   */
  cacheDir?: string;
  /**
   * Worker threads for the keys stage (compiler/parallel-keys.ts): 0 never; undefined (the
   * default) when the key files hold at least MIN_WORKER_TEXT of text, one per core up to 8.
   * The same bytes and diagnostics either way.
   */
  keyWorkers?: number;
}

export interface CompileResult {
  /** Sorted by file, line, col. */
  diagnostics: Diagnostic[];
  errorCount: number;
  warningCount: number;
  /** null when there are errors. Made from `wire` when first read (a record per key). */
  readonly content: BundleContent | null;
  /** The content in its file form (what `bundle` holds); null when there are errors. */
  wire: WireContent | null;
  /** The summary's counts when known without reading `wire` (a patched snapshot); else count `wire`. */
  counts?: { apis: number; keys: number; certificates: number };
  /** serializeWire(wire); null when there are errors. */
  bundle: Buffer | null;
  /** Milliseconds per stage (load, parse, schema, apis, policies, keys, index, runtime-checks, emit), for benchmarks. */
  timings: Record<string, number>;
  /** The access test cases, and their outcomes when they ran (null: not run). Never in the bundle. */
  tests: { cases: AccessCase[]; outcomes: AccessOutcome[] | null };
  /**
   * With `cacheDir`: key files taken from the cache, and entries found but unusable (recomputed);
   * `patched` when the previous compile's snapshot was patched: the key files resolved again;
   * else `snapshotMiss`: why it was not (none at all on a first compile). `unread`: key files
   * known by their stat (compiler/known-files.ts), not read by this compile (absent when none).
   */
  cache?: { hits: number; stale: number; patched?: number; snapshotMiss?: string; unread?: number };
  /** Set when the previous compile's bundle was patched: its digest and the ids of the keys taken out or put in (a sharded output keeps the other shards: sharded-output.ts). */
  keyChange?: { previous: string; changed: readonly string[] };
  /** Policies with a `portal:` block (the portal's catalog), in file order; empty when there are errors. */
  portalPlans: PortalPlan[];
  /** Worker threads the keys stage ran in (0: the main thread), and why it went back to one thread, if it did. */
  keyWorkers: { count: number; restarted?: string };
}

export interface PortalPlan {
  id: string;
  portal: { name: string; description?: string; require_approval?: boolean };
  /** The API ids its access_rights name. */
  apiIds: string[];
}

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
  if (live) Object.assign(live, { files, keys, revocation, diagnostics: after.diagnostics, wire, bundle, now: now.getTime() });
  if (snapshot && opts.cacheDir !== undefined)
    stage('snapshot-write', () => writeSnapshot(opts.cacheDir!, resolve(dir), snapshot.context, snapshot.frame, bundle, snapshot.parts));
  let content: BundleContent | undefined;
  return {
    ...after,
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

type Stage = <T>(name: string, run: () => T) => T;
type Resolved = ReturnType<typeof resolveOnOneThread> & { keyWorkers: CompileResult['keyWorkers'] };

/** What every resolve step reads: the config's files, where they may be read from, the options, the clock and the stage timer. */
interface ResolveInput {
  files: SourceFile[];
  confine: Confinement;
  dir: string;
  log: DiagnosticLog;
  opts: CompileOptions;
  now: Date;
  stage: Stage;
}

/** The parse, schema and check stages: in worker threads for a big config, else (or when the workers hand it back) on this one. */
async function resolveConfig(input: ResolveInput, live?: LiveCapture): Promise<Resolved> {
  const { files, log, opts } = input;
  // The live compile (the portal) keeps per-file state the one-thread stage makes. With a cache,
  // the workers use and write the key files' entries (compiler/key-file-cache.ts).
  const plan = live === undefined ? planWorkers(files, opts.keyWorkers) : null;
  if (plan === null) return { ...resolveOnOneThread(input, live), keyWorkers: { count: 0 } };
  const afterLoad = log.diagnostics.length;
  const parallel = await resolveInWorkers(input, plan);
  if (parallel.restart === undefined) return { ...parallel, keyWorkers: { count: plan.workers } };
  log.truncate(afterLoad);
  return { ...resolveOnOneThread(input), keyWorkers: { count: 0, restarted: parallel.restart } };
}

/** The options a key file's keys-stage results depend on (part of the cache's context digest). */
function keysOptions(opts: CompileOptions, dir: string) {
  return { strict: opts.strict === true, expiryWarningDays: opts.expiryWarningDays ?? 30, dir: resolve(dir), allowOutside: opts.allowOutside ?? [] };
}

function reportEmptyConfig(dir: string, log: DiagnosticLog): void {
  log.reportAt(
    'E_EMPTY_CONFIG',
    '.',
    1,
    1,
    `no kind: api, policy or key documents found in ${dir} (looked for *.yaml and *.yml, recursively); pass --allow-empty if an empty bundle is meant`,
  );
}

function reportNoApis(dir: string, log: DiagnosticLog): void {
  log.reportAt('W_NO_APIS', '.', 1, 1, `no kind: api document in ${dir}: the bundle routes nothing (pass --allow-empty if that is meant)`);
}

/** The parse, schema and check stages on this thread: the resolved APIs, keys and revocation, and every diagnostic logged. */
function resolveOnOneThread(input: ResolveInput, live?: LiveCapture) {
  const { files, dir, log, opts, now, stage } = input;
  const cache = opts.cacheDir === undefined ? null : new KeyCache(opts.cacheDir);
  // Key files with an entry for their exact text are not parsed unless the entry proves unusable.
  const candidates = cache ? stage('cache', () => cache.candidates(files)) : new Map();
  const cachedDocs = [...candidates.values()].reduce((n, e) => n + e.docs, 0);
  const docs = stage('parse', () => parseSources(candidates.size === 0 ? files : files.filter((f) => !candidates.has(f)), log));
  if (docs.length + cachedDocs === 0 && log.diagnostics.length === 0 && !opts.allowEmpty) {
    reportEmptyConfig(dir, log);
  }
  const front = resolveFront(input, docs, {
    afterSchema: (typed) => {
      if (
        docs.length + cachedDocs > 0 &&
        typed.apis.length === 0 &&
        typed.broken.api.size === 0 &&
        !opts.allowEmpty &&
        !log.diagnostics.some((d) => d.severity === 'error')
      ) {
        reportNoApis(dir, log);
      }
    },
    beforeApis: (certs) => {
      if (cache) certs.recordWitnesses();
      // The live compile needs what the APIs (and revocations) read: their files and certificate times.
      if (live) certs.touched = { files: new Set(), notAfters: [] };
    },
  });
  const { typed, certs, apis, policies } = front;
  let cacheStats: CompileResult['cache'];
  const perFile = live || cache ? new Map<SourceFile, FileKeysState>() : undefined;
  let context: string | undefined;
  const keys = stage('keys', () => {
    if (!cache && !live) return resolveKeys(typed.keys, policies, apis.apis, typed.broken, certs, apis.cas, now, log);
    const parsed = { docs: [...docs], keys: [...typed.keys] };
    const parseMore = (more: SourceFile[]) => {
      const moreDocs = parseSources(more, log);
      const moreKeys = validateDocs(moreDocs, log).keys;
      parsed.docs.push(...moreDocs);
      parsed.keys.push(...moreKeys);
      return { docs: moreDocs, keys: moreKeys };
    };
    const cached = resolveKeysCached({
      cache,
      candidates,
      files,
      docs,
      keyDocs: typed.keys,
      parseMore,
      policies,
      apis: apis.apis,
      cas: apis.cas,
      broken: typed.broken,
      certs,
      now,
      log,
      options: keysOptions(opts, dir),
      perFile,
    });
    if (cache) cacheStats = { hits: cached?.hits ?? 0, stale: candidates.size - (cached?.hits ?? 0) };
    context = cached?.context;
    if (cached) return cached.keys;
    // Files interact (a duplicate across files): the ordinary stage over every file, in file order.
    const seen = new Set(parsed.docs.map((d) => d.file));
    parseMore(files.filter((f) => candidates.has(f) && !seen.has(f)));
    return resolveKeys(keyDocsInFileOrder(files, parsed.keys), policies, apis.apis, typed.broken, certs, apis.cas, now, log);
  });
  const { revocation, cases, plans } = resolveTail(input, front);
  if (live) {
    Object.assign(live, {
      apis,
      policies,
      broken: typed.broken,
      perFile: new Map([...(perFile ?? [])].map(([f, r]) => [f.absPath, r])),
      revocations: typed.revocations.length,
      tests: typed.tests.length,
      nonKeyTouched: certs.touched!,
      docs: docs.length + cachedDocs,
      plans,
    });
  }
  // The snapshot (compiler/compile-snapshot.ts) is written when every key file is plain and was resolved on its own.
  let snapshot: { context: string; frame: string; parts: SnapshotInputFile[] } | undefined;
  if (cache && context !== undefined && perFile && typed.apis.length > 0) {
    const nowMs = now.getTime();
    const parts: SnapshotInputFile[] = [];
    let writable = true;
    for (const file of files) {
      const r = perFile.get(file);
      const part = r ? snapshotPart(file, r, cache.textHash(file), nowMs, resolve(dir)) : undefined;
      if (part === null) writable = false;
      else if (part) parts.push(part);
    }
    if (writable && [...perFile.values()].every((r) => r.plain && r.witnesses !== undefined)) snapshot = { context, frame: frameDigest(apis), parts };
  }
  return { apis, keys, revocation, cases, cacheStats, plans, snapshot };
}

/**
 * resolveOnOneThread with the key files (plan.keyFiles) parsed and resolved in worker threads
 * (compiler/parallel-keys.ts) and the rest here. E_EMPTY_CONFIG and W_NO_APIS are decided once
 * the workers' counts are in, on the same facts as on one thread (documents, parse diagnostics,
 * errors before the checks). `restart` when the files interact: the caller compiles on one thread.
 */
async function resolveInWorkers(
  input: ResolveInput,
  plan: { keyFiles: Set<SourceFile>; workers: number },
): Promise<(ReturnType<typeof resolveOnOneThread> & { restart?: undefined }) | { restart: string }> {
  const pool = new KeyWorkerPool(
    input.files.filter((f) => plan.keyFiles.has(f)),
    plan.workers,
  );
  try {
    return await resolveWithPool(input, plan.keyFiles, pool);
  } finally {
    pool.close();
  }
}

async function resolveWithPool(
  input: ResolveInput,
  keyFiles: Set<SourceFile>,
  pool: KeyWorkerPool,
): Promise<(ReturnType<typeof resolveOnOneThread> & { restart?: undefined }) | { restart: string }> {
  const { files, confine, dir, log, opts, now, stage } = input;
  const docs = stage('parse', () =>
    parseSources(
      files.filter((f) => !keyFiles.has(f)),
      log,
    ),
  );
  const parseDiagnostics = log.diagnostics.length;
  let earlyError = false;
  const front = resolveFront(input, docs, {
    afterSchema: () => {
      earlyError = log.diagnostics.some((d) => d.severity === 'error');
    },
  });
  const { typed, certs, apis, policies } = front;
  const context = opts.cacheDir === undefined ? undefined : keysContext(apis.apis, policies, typed.broken, keysOptions(opts, dir));
  const outcome = pool.run({
    apis: apis.apis,
    policies: new Map([...policies].map(([id, p]) => [id, p.spec])),
    broken: { api: typed.broken.api, policy: typed.broken.policy },
    strict: opts.strict === true,
    expiryWarningDays: opts.expiryWarningDays ?? 30,
    nowMs: now.getTime(),
    root: confine.rootArgument,
    allowOutside: confine.allowedArguments,
    ...(context === undefined ? {} : { cache: { dir: opts.cacheDir!, code: compilerCode(), context, root: resolve(dir) } }),
  });
  // Keys in the other files (beside APIs or policies, or with a certificate_match) resolve here
  // meanwhile, as one group: their CAs and certificate_match overlaps are this thread's.
  const here = resolveKeys(typed.keys, policies, apis.apis, typed.broken, certs, apis.cas, now, log);
  const done = await outcome;
  if (done.restart !== undefined) return { restart: done.restart };
  const table = buildKeyTable([toColumns(here.keys.values(), here.notAfter), ...done.files.map((f) => f.keys)]);
  if ('restart' in table) return { restart: table.restart };
  for (const f of done.files) for (const d of f.diagnostics) log.diagnostics.push(d);
  const keys: ResolvedKeys = { keys: table, matches: here.matches, notAfter: here.notAfter, matchers: here.matchers };
  // Timed from the end of the policies stage: the workers' parse and schema are in it too.
  stage('keys', () => keys);
  const allDocs = docs.length + done.docs;
  if (allDocs === 0 && parseDiagnostics + done.parseDiagnostics === 0 && !opts.allowEmpty) reportEmptyConfig(dir, log);
  if (allDocs > 0 && typed.apis.length === 0 && typed.broken.api.size === 0 && !opts.allowEmpty && !earlyError && !done.earlyError) reportNoApis(dir, log);
  const tail = resolveTail(input, front);
  if (context === undefined) return { apis, keys, ...tail, cacheStats: undefined, snapshot: undefined };
  const cached = poolCacheResult(
    files.filter((f) => keyFiles.has(f)),
    done.files,
    now.getTime(),
  );
  // The snapshot as on one thread: every key file plain (none resolved here), APIs.
  const snapshotted = cached.parts !== null && typed.keys.length === 0 && typed.apis.length > 0;
  return { apis, keys, ...tail, cacheStats: cached.stats, snapshot: snapshotted ? { context, frame: frameDigest(apis), parts: cached.parts! } : undefined };
}

/**
 * The stages before the keys, the same on one thread and with worker threads: schema, the
 * limits of refused documents, APIs, policies. `afterSchema` runs between the schema and the
 * checks (the W_NO_APIS decision and the "errors before the checks" fact are taken there);
 * `beforeApis` prepares the certificate loader (cache witnesses, the live compile's record).
 */
function resolveFront(
  { confine, log, opts, now, stage }: ResolveInput,
  docs: ReturnType<typeof parseSources>,
  hooks: { afterSchema?: (typed: ReturnType<typeof validateDocs>) => void; beforeApis?: (certs: CertLoader) => void },
) {
  const typed = stage('schema', () => validateDocs(docs, log));
  hooks.afterSchema?.(typed);
  // Documents the schema refused still get the checks that need only their well-typed fields.
  checkLimitsOfBroken(typed.refused, log);
  const certs = new CertLoader(log, now, opts.expiryWarningDays ?? 30, confine);
  hooks.beforeApis?.(certs);
  const apis = stage('apis', () => resolveApis(typed.apis, certs, log));
  const policies = stage('policies', () => checkPolicies(typed.policies, apis.apis, typed.broken.api, log));
  return { typed, certs, apis, policies };
}

/** The stages after the keys, the same on one thread and with worker threads. */
function resolveTail({ now, log, stage }: ResolveInput, { typed, apis, policies, certs }: ReturnType<typeof resolveFront>) {
  const revocation = stage('revocation', () => resolveRevocations(typed.revocations, apis.cas, certs, now, log));
  const cases = stage('tests', () => resolveTests(typed.tests, log, (abs) => certs.outside(abs)));
  return { revocation, cases, plans: portalPlans(typed.policies, policies) };
}

/** Policies with a `portal:` block (the portal's catalog), in file order: the ones the policies stage kept. */
function portalPlans(typed: ReturnType<typeof validateDocs>['policies'], policies: ReturnType<typeof checkPolicies>): PortalPlan[] {
  const plans: PortalPlan[] = [];
  for (const p of typed) {
    if (p.spec.portal && policies.get(p.spec.id) === p) plans.push({ id: p.spec.id, portal: p.spec.portal, apiIds: Object.keys(p.spec.access_rights ?? {}) });
  }
  return plans;
}
