// The compiler's public types: what compileDir takes (CompileOptions) and gives (CompileResult).
import type { BundleContent, WireContent } from '../bundle/types.ts';
import type { SameBytesFile } from '../common/atomic-write.ts';
import type { AccessCase, AccessOutcome, AccessTestRunner } from './check-tests.ts';
import type { Diagnostic } from './diagnostics.ts';

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
  /**
   * The portal's catalog compile (compiler/full-compile-worker.ts): key documents are dropped
   * once parsed, so their certificate files are not read nor their keys resolved (the full
   * compile after it does that). Not the bundle of the config: only its APIs and plans are used.
   */
  withoutKeys?: boolean;
  /** Called once the config files are read, with their count (the portal says how many it compiles at start). */
  onLoaded?: (files: number) => void;
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
  /** With `cacheDir`: the cache's file holding exactly `bundle` (the CLI links its output to it: atomic.ts `writeFileAtomic`). */
  bundleFile?: SameBytesFile;
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
