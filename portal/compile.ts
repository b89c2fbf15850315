// The portal's view of the compiler: compile a config directory with the same compiler as
// `mtlsgate compile`, and hand back what the portal reads of it (the catalog's plans and APIs,
// which certificates and key ids are taken), the bundle bytes and a readable report.
import type { KeyObject } from 'node:crypto';
import { type CompileOptions, compileDir, type CompileResult, type Diagnostic, formatDiagnostics, type PortalPlan } from '../compiler/index.ts';
import { type CatalogParts, CompileWorker } from '../compiler/full-compile-client.ts';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { LiveCompiler, type LiveMode } from '../compiler/live-compile.ts';
import { isShardedDir } from '../bundle/read-sharded.ts';
import { signBundle } from '../bundle/sign.ts';
import { shardCountAt, writeShardedBundle } from '../compiler/write-sharded.ts';
import type { BundleApi, BundleContent, WireContent } from '../bundle/types.ts';
import { hexAt, hexCount, keyRow } from '../bundle/wire.ts';
import { rememberWritten } from './written-bundle.ts';

/** Who uses a certificate in the compiled config: the key it identifies, the APIs pinning it. */
export interface CertificateUse {
  key: string | null;
  apis: string[];
}

export interface Compiled {
  errorCount: number;
  warningCount: number;
  /** The compiler's diagnostics (paths as the compiler read them), for `approve --format json`. */
  diagnostics: Diagnostic[];
  /** The key every bundle written from this compile is signed with (a sharded one signs its manifest when written). */
  signingKey?: KeyObject;
  /** The compiled content, a record per key (made when first read: at 100,000 keys that costs); null when the config has errors. */
  readonly content: BundleContent | null;
  /** The APIs by id; null when the config has errors. */
  apis: Record<string, BundleApi> | null;
  /** Policies with a `portal:` block. */
  plans: PortalPlan[];
  /** The key and APIs using a certificate (by fingerprint), undefined when none does. */
  certificate(fingerprint: string): CertificateUse | undefined;
  hasKey(id: string): boolean;
  /** The bundle bytes to write; null when the config has errors. */
  bundle: Buffer | null;
  /** The content in its file form (what `bundle` holds); null when the config has errors. */
  wire: WireContent | null;
  /** Diagnostics as `mtlsgate check` prints them (paths relative to the config dir). */
  readonly report: string;
  /** With a cache directory: key files taken from the cache, and entries recomputed. */
  cache?: { hits: number; stale: number };
  /** With the live compile: how this one was made (everything, only the changed key files, nothing changed). */
  live?: LiveMode;
}

export interface CompileFn {
  (configDir: string): Promise<Compiled>;
  /**
   * The catalog's parts alone (the config without the portal's key files), compiled before the
   * next full compile: the portal shows its catalog while that one runs. Null when the catalog
   * alone has errors or no worker runs (then the full compile tells).
   */
  earlyCatalog?(configDir: string): Promise<CatalogParts | null>;
  /** Stops at once: the compile worker ends (a compile in flight and every later one reject with CompileStopped). */
  close?(): void;
  /** Ends the compile worker if it is idle (the next full compile starts it again): the start-up compile is done. */
  release?(): void;
}

/** The portal's own key files (portal/key-file.ts PORTAL_KEYS_DIR), as an exclude pattern: what the catalog compile leaves out. */
const PORTAL_KEYS_PATTERN = '/keys/portal/';

/** Index of `value` in the ascending 64-hex table, or -1 (binary search: the table is sorted). */
function hexIndex(hex: string, value: string): number {
  let lo = 0;
  let hi = hexCount(hex) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = hexAt(hex, mid);
    if (v < value) lo = mid + 1;
    else if (v > value) hi = mid - 1;
    else return mid;
  }
  return -1;
}

/** The portal's view of a compile result: lookups straight on the file form, nothing expanded. */
function compiledView(result: CompileResult, configDir: string, signingKey?: KeyObject): Compiled {
  const wire: WireContent | null = result.errorCount === 0 ? result.wire : null;
  let bundle = wire !== null ? result.bundle : null;
  if (bundle !== null && signingKey !== undefined) bundle = signBundle(bundle, signingKey);
  const signing = signingKey === undefined ? {} : { signingKey };
  let report: string | undefined;
  return {
    errorCount: result.errorCount,
    warningCount: result.warningCount,
    diagnostics: result.diagnostics,
    get content() {
      return wire === null ? null : result.content;
    },
    apis: wire?.apis ?? null,
    plans: result.portalPlans,
    certificate(fp) {
      if (wire === null) return undefined;
      const row = hexIndex(wire.certs.hex, fp);
      if (row < 0) return undefined;
      const key = wire.certs.key[row]!;
      return { key: key < 0 ? null : wire.keys.ids[key]!, apis: wire.certs.apis[fp] ?? [] };
    },
    hasKey: (id) => wire !== null && keyRow(wire.keys.ids, id) >= 0,
    bundle,
    wire,
    ...signing,
    get report() {
      return (report ??= formatDiagnostics(result, 'text', configDir));
    },
    ...(result.cache === undefined ? {} : { cache: result.cache }),
    ...('live' in result ? { live: result.live as LiveMode } : {}),
  };
}

/**
 * The compile step of the portal and `approve`. With a signing key every bundle they write is
 * signed as `compile --sign` signs it, so a gateway started with --bundle-public-key takes the
 * keys the portal adds (an unsigned bundle would be refused and the old one would serve on).
 * With `live` (the portal) one LiveCompiler per directory keeps the last compile in memory
 * (compiler/live-compile.ts): a new key recompiles its own file; the bytes are a full compile's.
 * With a cache directory (`--cache DIR`, compiler/key-cache.ts) every full compile goes
 * through the disk cache. With `offThread` (the portal) the live compile's full compiles run
 * in one long-lived worker thread (compiler/full-compile-client.ts; `hold`: tests hold it once
 * it has read the files), which also compiles the early catalog. `onLoaded` is told how many
 * config files a compile read.
 */
export function compilerFor(
  opts: {
    signingKey?: KeyObject;
    cacheDir?: string;
    allowOutside?: readonly string[];
    live?: boolean;
    offThread?: boolean | { hold: Int32Array };
    onLoaded?: (files: number) => void;
  } = {},
): CompileFn {
  const compileOptions: CompileOptions = {
    ...(opts.cacheDir === undefined ? {} : { cacheDir: opts.cacheDir }),
    // The paths outside the config directory it may read, as `compile --allow-outside` (a pki/ beside it).
    ...(opts.allowOutside === undefined ? {} : { allowOutside: opts.allowOutside }),
    ...(opts.onLoaded === undefined ? {} : { onLoaded: opts.onLoaded }),
  };
  const worker = opts.offThread ? new CompileWorker(opts.offThread === true ? {} : { hold: opts.offThread.hold }) : undefined;
  const live = new Map<string, LiveCompiler>();
  const compile: CompileFn = async (configDir) => {
    let result: CompileResult;
    if (opts.live) {
      let compiler = live.get(configDir);
      if (!compiler) live.set(configDir, (compiler = new LiveCompiler(configDir, compileOptions, worker?.compile)));
      result = await compiler.compile();
    } else result = await compileDir(configDir, compileOptions);
    return compiledView(result, configDir, opts.signingKey);
  };
  if (worker) compile.earlyCatalog = (configDir) => worker.catalog(configDir, compileOptions, [PORTAL_KEYS_PATTERN]);
  // The directory watches stay: they keep nothing alive (persistent: false), and a closed journal would report nothing changed.
  compile.close = () => worker?.close();
  compile.release = () => worker?.release();
  return compile;
}

export const compileConfig: CompileFn = compilerFor();

/**
 * Writes a compiled bundle where the gateway reads it, atomically. The one place the portal and
 * `approve` write a bundle: another bundle form (a sharded directory) changes only this.
 */
export async function writeBundle(bundlePath: string, compiled: { bundle: Buffer | null; wire?: WireContent | null; signingKey?: KeyObject }): Promise<void> {
  if (compiled.bundle === null) throw new Error('internal error: writeBundle without a bundle (the config has errors)');
  if (compiled.wire && isShardedDir(bundlePath)) {
    // A sharded bundle (compile --shards): the same number of shards, so a new key rewrites its
    // own shard and the manifest, and a gateway serving the directory reloads that one shard.
    writeShardedBundle(bundlePath, compiled.wire, shardCountAt(bundlePath), compiled.signingKey);
    rememberWritten(bundlePath, compiled.wire);
    return;
  }
  await writeFileAtomic(bundlePath, compiled.bundle);
  // Status pages read which keys the written bundle holds from memory (portal/written-bundle.ts).
  if (compiled.wire) rememberWritten(bundlePath, compiled.wire);
}
