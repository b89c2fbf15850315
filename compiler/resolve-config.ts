// The stages between the load and the index (compiler/index.ts runs them through resolveConfig):
// parse, schema, APIs, policies, keys (on this thread, in worker threads for a big config, or
// from the compile cache's entries), revocation and tests, and what the snapshot of a cached
// compile needs (compiler/compile-snapshot.ts).
import { resolve } from 'node:path';
import { CertLoader } from './certs.ts';
import type { Confinement } from './confine.ts';
import { resolveApis } from './check-apis.ts';
import { type ResolvedKeys, resolveKeys } from './check-keys.ts';
import { resolveRevocations } from './check-revocation.ts';
import { checkPolicies } from './check-policies.ts';
import { resolveTests } from './check-tests.ts';
import type { DiagnosticLog } from './diagnostics.ts';
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
import type { SnapshotInputFile } from './compile-snapshot.ts';
import { snapshotPart } from './snapshot-compile.ts';
import { frameDigest } from './snapshot-frame.ts';
import type { CompileOptions, CompileResult, PortalPlan } from './compile-types.ts';

export type Stage = <T>(name: string, run: () => T) => T;
type Resolved = ReturnType<typeof resolveOnOneThread> & { keyWorkers: CompileResult['keyWorkers'] };

/** What every resolve step reads: the config's files, where they may be read from, the options, the clock and the stage timer. */
export interface ResolveInput {
  files: SourceFile[];
  confine: Confinement;
  dir: string;
  log: DiagnosticLog;
  opts: CompileOptions;
  now: Date;
  stage: Stage;
}

/** The parse, schema and check stages: in worker threads for a big config, else (or when the workers hand it back) on this one. */
export async function resolveConfig(input: ResolveInput, live?: LiveCapture): Promise<Resolved> {
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
  const parsed = stage('parse', () => parseSources(candidates.size === 0 ? files : files.filter((f) => !candidates.has(f)), log));
  const docs = opts.withoutKeys ? parsed.filter((d) => !isKeyDoc(d)) : parsed;
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
      // The live compile needs what the APIs, revocations and tests read: their files and the times their results change.
      if (live) certs.touched = { files: new Set(), notAfters: [], changesAt: [] };
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
export function resolveFront(
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
  const cases = stage('tests', () =>
    resolveTests(typed.tests, log, (abs) => {
      certs.touched?.files.add(abs);
      return certs.outside(abs);
    }),
  );
  return { revocation, cases, plans: portalPlans(typed.policies, policies) };
}

/** Policies with a `portal:` block (the portal's catalog), in file order: the ones the policies stage kept. */
export function portalPlans(typed: ReturnType<typeof validateDocs>['policies'], policies: ReturnType<typeof checkPolicies>): PortalPlan[] {
  const plans: PortalPlan[] = [];
  for (const p of typed) {
    if (p.spec.portal && policies.get(p.spec.id) === p) plans.push({ id: p.spec.id, portal: p.spec.portal, apiIds: Object.keys(p.spec.access_rights ?? {}) });
  }
  return plans;
}

/** A document that declares `kind: key` (the catalog compile, CompileOptions.withoutKeys, drops them). */
function isKeyDoc(doc: { value: unknown }): boolean {
  return typeof doc.value === 'object' && doc.value !== null && (doc.value as { kind?: unknown }).kind === 'key';
}
