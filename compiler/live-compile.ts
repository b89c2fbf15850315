// The live compile: a long-lived process (the portal) compiles the same directory again and
// again, mostly after one key file changed. It keeps the state of its last successful compile
// in memory (compiler/live-state.ts) and learns what changed from directory watches
// (compiler/change-journal.ts), so a recompile after a new key file parses and resolves that
// file alone, runs the cross-file checks (duplicate key id, certificate, token) against the
// kept owner indexes, patches the bundle's file form (compiler/wire-patch.ts) and serialises it.
// The bytes and diagnostics are those of a full compile of the directory
// (test/live-compile.test.ts compares them).
//
// Everything else compiles the whole directory, as `compile` (with --cache, through the disk
// cache) does, and keeps the new state: a change to any file that is not only key documents
// (APIs, policies, ...), a certificate an API reads, a new or removed directory holding more
// than YAML files, .mtlsgateignore, a key file with certificate_match, a change that fails or
// collides with another file (so its diagnostics are exactly a full compile's), the clock leaving
// the window in which every time-dependent result holds, a lost watch, and a config with
// symlinks (a watch on the link's directory does not see its target change).
//
// Revocation documents depend on the APIs' CAs, their CRL and certificate files and the clock,
// never on keys (compiler/check-revocation.ts takes no key): a key file's change keeps their
// result, and a change to one of their files is a non-key change (a full compile). A config with
// test documents is not updated in place (a test's outcome depends on every key, and what its
// result depends on is not tracked per file): any change compiles everything. With nothing changed, the last full
// result answers 'unchanged' as for any other config, within the same time window (a CRL's
// nextUpdate bounds it too), every file it read having been watched before it was read.
import { lstatSync, readdirSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { bundleProblems } from '../bundle/checks.ts';
import type { BundleKey } from '../bundle/types.ts';
import { expandContent } from '../bundle/wire.ts';
import { serializeWire } from '../bundle/write.ts';
import type { FileKeysState } from './cached-keys.ts';
import { CertLoader } from './certs.ts';
import { ChangeJournal } from './change-journal.ts';
import { resolveKeys } from './check-keys.ts';
import { Confinement } from './confine.ts';
import { DiagnosticLog } from './diagnostics.ts';
import { buildWire } from './emit.ts';
import { IGNORE_FILE, IgnoreRules } from './ignore.ts';
import { type CompileOptions, type CompileResult, compileDirCapturing } from './index.ts';
import { validUntil } from './key-cache.ts';
import { readConfigFile, walkDirs } from './live-files.ts';
import { addOwners, buildState, dropOwners, type LiveCapture, type LiveState, stateValidUntil } from './live-state.ts';
import { parseSources } from './parse.ts';
import { validateDocs } from './schema.ts';
import type { SourceFile } from './source.ts';
import { PatchRefused, patchWire } from './wire-patch.ts';

/** How a live compile was made: everything compiled, only changed key files, or nothing changed. */
export type LiveMode = 'full' | 'incremental' | 'unchanged';
export type LiveResult = CompileResult & { live: LiveMode };

/** More changed files than this, or more changed keys than PATCH_KEYS, and a full compile / buildWire is as cheap. */
const MAX_FILES = 16;
const PATCH_KEYS = 64;
const YAML_FILE = /\.ya?ml$/i;

export class LiveCompiler {
  private state: LiveState | null = null;
  private readonly journal = new ChangeJournal();
  private readonly root: string;
  /** Config directories of the last full compile, and other directories read from (certificates). */
  private configDirs = new Set<string>();
  private readonly extraDirs = new Set<string>();
  /** How many compiles took each path (tests and the bench read it). */
  readonly counts: Record<LiveMode, number> = { full: 0, incremental: 0, unchanged: 0 };
  /** Incremental emits: the kept content patched, or built again from the merged keys. */
  readonly emits = { patched: 0, rebuilt: 0 };

  constructor(
    readonly dir: string,
    private readonly opts: CompileOptions = {},
    /** How a full compile runs: here, or in a worker thread (compiler/full-compile-client.ts, the portal). */
    private readonly compileFull: typeof compileDirCapturing = compileDirCapturing,
  ) {
    this.root = resolve(dir);
  }

  /** Compiles run one after another (a page's compile may overlap a submission's). */
  private running: Promise<unknown> = Promise.resolve();

  compile(): Promise<LiveResult> {
    const run = this.running.then(() => this.compileNow());
    this.running = run.catch(() => {});
    return run;
  }

  private async compileNow(): Promise<LiveResult> {
    const state = this.state;
    if (state === null) return this.full(null);
    const { paths, lost } = await this.journal.take();
    const now = (this.opts.now ?? new Date()).getTime();
    if (lost || now < state.validFrom || now >= stateValidUntil(state)) return this.full(null);
    const started = performance.now();
    if (!state.incremental) {
      if (paths.size > 0) return this.full(null);
      return this.resultOf(state, 'unchanged', { live: Math.round(performance.now() - started) });
    }
    const changed = this.changedFiles(state, paths);
    if (changed === 'full') return this.full(paths);
    if (changed.size === 0) return this.resultOf(state, 'unchanged', { live: Math.round(performance.now() - started) });
    const next = this.update(state, changed, now);
    if (next === null) return this.full(paths);
    return this.resultOf(next, 'incremental', { live: Math.round(performance.now() - started) });
  }

  /** Calls `listener` as each change is seen (a path; null: the watch was lost): `compile --watch` recompiles then. */
  onChange(listener: (path: string | null) => void): void {
    this.journal.onEvent(listener);
  }

  /** Stops watching (the portal closing). */
  close(): void {
    this.journal.close();
  }

  /** Key files that changed (null: removed), or 'full' when a change is not only key files. */
  private changedFiles(state: LiveState, paths: Set<string>): Map<string, SourceFile | null> | 'full' {
    const out = new Map<string, SourceFile | null>();
    const ignore = IgnoreRules.forDir(this.root, this.opts.exclude);
    // force: resolve the file again even when its text is the same (a certificate it read changed).
    const consider = (abs: string, force = false): boolean => {
      const old = state.byPath.get(abs);
      const now = readConfigFile(this.root, abs);
      if (now === 'odd') return false;
      if (!force && old !== undefined && now !== null && now.text === old.text) return true;
      if (old !== undefined && state.perFile.get(abs)?.plain !== true) return false;
      if (old === undefined && now === null) return true;
      out.set(abs, now);
      return true;
    };
    for (const p of paths) {
      if (basename(p) === IGNORE_FILE && dirname(p) === this.root) return 'full';
      if (state.nonKeyTouched.files.has(p)) return 'full';
      const readers = state.certReaders.get(p);
      if (readers && readers.size > 0) {
        // A certificate file a key file read: that key file is resolved again.
        for (const abs of readers) if (!consider(abs, true)) return 'full';
        if (!state.byPath.has(p)) continue;
      }
      if (this.configDirs.has(p)) {
        // Its own watch reports what changes inside it; gone or replaced, only a full compile can say.
        let still = false;
        try {
          still = lstatSync(p).isDirectory();
        } catch {}
        if (still) continue;
        return 'full';
      }
      const name = basename(p);
      if (name.startsWith('.') || !this.configDirs.has(dirname(p))) continue;
      const rel = relative(this.root, p).split(sep).join('/');
      let isDir = false;
      try {
        isDir = lstatSync(p).isDirectory();
      } catch {}
      if (isDir) {
        if (!ignore.empty && ignore.ignores(rel, true)) continue;
        if (!this.adoptDirectory(p, out)) return 'full';
        continue;
      }
      if (state.byPath.has(p) || (YAML_FILE.test(name) && (ignore.empty || !ignore.ignores(rel, false)))) {
        if (!consider(p)) return 'full';
      }
    }
    return out;
  }

  /** A new directory holding only YAML files: watched, and its files taken as new (false: let a full compile see it). */
  private adoptDirectory(dir: string, out: Map<string, SourceFile | null>): boolean {
    // Watch first, then list: a file written after the listing is reported by the watch.
    if (!this.journal.watch([dir])) return false;
    this.configDirs.add(dir);
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      if (!e.isFile()) return false;
      if (!YAML_FILE.test(e.name)) continue;
      const file = readConfigFile(this.root, join(dir, e.name));
      if (file === 'odd') return false;
      if (file !== null) out.set(file.absPath, file);
    }
    return true;
  }

  /** The state after the changed key files, or null when only a full compile can say. */
  private update(state: LiveState, changed: Map<string, SourceFile | null>, now: number): LiveState | null {
    if (changed.size > MAX_FILES) return null;
    const strict = this.opts.strict === true;
    const warningDays = this.opts.expiryWarningDays ?? 30;
    const confine = new Confinement(this.dir, this.opts.allowOutside);
    const at = new Date(now);
    const fresh = new Map<string, FileKeysState | null>();
    let docs = state.docs;
    for (const [abs, file] of [...changed].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const old = state.perFile.get(abs);
      docs -= old?.docs ?? 0;
      if (file === null) {
        fresh.set(abs, null);
        continue;
      }
      const log = new DiagnosticLog(strict);
      const parsed = parseSources([file], log);
      const typed = validateDocs(parsed, log);
      docs += parsed.length;
      const onlyKeys = typed.keys.length === parsed.length && typed.refused.length === 0 && typed.keys.every((k) => k.spec.certificate_match === undefined);
      if (log.diagnostics.length > 0 || !onlyKeys) return null;
      if (parsed.length === 0) {
        fresh.set(abs, null);
        continue;
      }
      const loader = new CertLoader(log, at, warningDays, confine).scoped(log);
      const resolved = resolveKeys(typed.keys, state.policies, state.apis.apis, state.broken, loader, state.apis.cas, at, log, false);
      // An error is reported by a full compile, with every other file's diagnostics.
      if (log.diagnostics.some((d) => d.severity === 'error')) return null;
      const keys = [...resolved.keys.values()];
      const expires = keys.flatMap((k) => (k.expires === null ? [] : [Date.parse(k.expires)]));
      fresh.set(abs, {
        keys,
        notAfter: [...resolved.notAfter],
        diagnostics: log.diagnostics,
        certFiles: [...loader.touched!.files],
        validUntil: validUntil(now, loader.touched!.notAfters, expires, warningDays),
        docs: parsed.length,
        plain: true,
      });
    }
    if (docs === 0) return null;
    // Every certificate file the new results read must be watched before they are kept.
    const dirs = new Set([...fresh.values()].flatMap((r) => (r ? r.certFiles.map((f) => dirname(f)) : [])));
    for (const d of dirs) if (!this.journal.watches(d)) return null;

    // Cross-file checks against the owners of every other file: a collision is a full compile's to report.
    const removed: BundleKey[] = [];
    const added: BundleKey[] = [];
    const notAfter = new Map<string, number>();
    const next: LiveState = { ...state, perFile: new Map(state.perFile), byPath: new Map(state.byPath) };
    for (const [abs, r] of fresh) {
      // Only the keys whose record changed are taken out and put in: one key edited in a file of
      // 1,000 patches one key, not 2,000 (a record is plain JSON data: the same text is the same key).
      const before = new Map((state.perFile.get(abs)?.keys ?? []).map((k) => [k.id, k]));
      for (const k of r?.keys ?? []) {
        const was = before.get(k.id);
        if (was !== undefined && JSON.stringify(was) === JSON.stringify(k)) before.delete(k.id);
        else added.push(k);
      }
      removed.push(...before.values());
    }
    const ids = new Set<string>();
    const fps = new Set<string>();
    const tokens = new Set<string>();
    for (const [abs, r] of fresh) {
      for (const k of r?.keys ?? []) {
        const clash = (owner: string | undefined) => owner !== undefined && owner !== abs && !fresh.has(owner);
        if (ids.has(k.id) || clash(state.idOwner.get(k.id))) return null;
        ids.add(k.id);
        for (const fp of k.certificates) {
          if (fps.has(fp) || clash(state.fpOwner.get(fp))) return null;
          fps.add(fp);
        }
        if (k.token_sha256 !== null) {
          if (tokens.has(k.token_sha256) || clash(state.tokenOwner.get(k.token_sha256))) return null;
          tokens.add(k.token_sha256);
        }
      }
      for (const [fp, ms] of r?.notAfter ?? []) notAfter.set(fp, ms);
    }

    // The emit: the kept content patched (a few keys; a certificate an API pins moves between the
    // key and the pin, given the APIs' facts), or built again from the merged keys (many keys, or
    // what patchWire does not handle: it refuses).
    let wire;
    try {
      const facts = { apiNotAfter: state.apis.notAfter, cas: state.apis.cas };
      wire = removed.length + added.length <= PATCH_KEYS ? patchWire(state.wire, removed, added, notAfter, facts) : null;
    } catch (err) {
      if (!(err instanceof PatchRefused)) throw err;
      wire = null;
    }
    // From here on the kept state changes: whatever fails drops it (the next compile is a full one).
    this.state = null;
    const merged = state.keys;
    // A live compile never hands its keys stage to worker threads (compiler/resolve-config.ts resolveConfig).
    if (!(merged.keys instanceof Map)) throw new Error('internal error: the live compile kept keys resolved in worker threads');
    for (const k of removed) {
      merged.keys.delete(k.id);
      for (const fp of k.certificates) merged.notAfter.delete(fp);
    }
    for (const k of added) merged.keys.set(k.id, k);
    for (const [fp, ms] of notAfter) merged.notAfter.set(fp, ms);
    if (wire) this.emits.patched++;
    else {
      this.emits.rebuilt++;
      wire = buildWire(state.apis, merged, state.revocation);
    }
    if (bundleProblems(wire).length > 0) return null;

    for (const [abs, r] of fresh) {
      const old = state.perFile.get(abs);
      if (old) dropOwners(next, abs, old);
      const file = changed.get(abs);
      if (file) next.byPath.set(abs, file);
      else next.byPath.delete(abs);
      if (r) {
        next.perFile.set(abs, r);
        addOwners(next, abs, r);
      } else next.perFile.delete(abs);
    }
    const log = new DiagnosticLog(strict);
    log.diagnostics.push(...state.base);
    for (const r of next.perFile.values()) log.diagnostics.push(...r.diagnostics);
    next.diagnostics = log.sorted();
    next.files = [...next.byPath.values()];
    next.docs = docs;
    next.wire = wire;
    next.bundle = serializeWire(wire);
    next.validFrom = Math.max(state.validFrom, now);
    next.now = now;
    this.state = next;
    return next;
  }

  private async full(requeue: Set<string> | null): Promise<LiveResult> {
    this.counts.full++;
    const ignore = IgnoreRules.forDir(this.root, this.opts.exclude);
    // Watches first, then the compile: whatever changes after a file is read is reported.
    let walked: ReturnType<typeof walkDirs>;
    try {
      walked = walkDirs(this.root, ignore);
    } catch {
      // An unreadable directory: the compile reports it (or throws ConfigDirError); nothing is kept.
      walked = { dirs: new Set(), symlink: true };
    }
    this.configDirs = walked.dirs;
    const watching = this.journal.watch([...walked.dirs, ...this.extraDirs]);
    const capture = {} as LiveCapture;
    const result = (await this.compileFull(this.dir, this.opts, capture)) as LiveResult;
    result.live = 'full';
    if (result.errorCount > 0 || result.bundle === null) {
      // The kept state is still the directory as it last compiled, but for the paths taken.
      if (this.state !== null && requeue !== null) this.journal.requeue(requeue);
      else this.state = null;
      return result;
    }
    let watchedBefore = watching && !walked.symlink;
    const read = [...capture.nonKeyTouched.files, ...[...capture.perFile.values()].flatMap((r) => r.certFiles)];
    for (const f of [...read, ...capture.files.map((f) => f.absPath)]) {
      const d = dirname(f);
      if (!this.journal.watches(d)) {
        watchedBefore = false;
        this.extraDirs.add(d);
      }
    }
    this.journal.watch(this.extraDirs);
    // Kept only when every file it read was watched from before its read; the next full compile is.
    // Access tests run without `at:` decide at the compile's clock in ways not bounded here: not kept.
    const testsAtNow = this.opts.accessTests !== undefined && result.tests.cases.some((c) => c.request.at === null);
    const incremental = capture.tests === 0;
    this.state = watchedBefore && !testsAtNow ? buildState(capture, this.opts.expiryWarningDays ?? 30, incremental) : null;
    return result;
  }

  private resultOf(state: LiveState, live: LiveMode, timings: Record<string, number>): LiveResult {
    this.counts[live]++;
    const wire = state.wire;
    let content: ReturnType<typeof expandContent> | undefined;
    return {
      diagnostics: state.diagnostics,
      errorCount: 0,
      warningCount: state.diagnostics.length,
      get content() {
        return (content ??= expandContent(wire));
      },
      wire,
      bundle: state.bundle,
      timings,
      tests: state.testResults,
      portalPlans: state.plans,
      keyWorkers: { count: 0 },
      live,
    };
  }
}
