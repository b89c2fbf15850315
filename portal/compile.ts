// The portal's view of the compiler: compile a config directory with the same compiler as
// `mtlsgate compile`, and hand back the content, the bundle bytes and a readable report.
import type { KeyObject } from 'node:crypto';
import { compileDir, formatDiagnostics, writeFileAtomic } from '../compiler/index.ts';
import { signBundle } from '../bundle/sign.ts';
import type { BundleContent } from '../bundle/types.ts';

export { writeFileAtomic };

export interface Compiled {
  errorCount: number;
  /** The compiled content; null when the config has errors. */
  content: BundleContent | null;
  /** The bundle bytes to write; null when the config has errors. */
  bundle: Buffer | null;
  /** Diagnostics as `mtlsgate check` prints them (paths relative to the config dir). */
  report: string;
  /** With a cache directory: key files taken from the cache, and entries recomputed. */
  cache?: { hits: number; stale: number };
}

export type CompileFn = (configDir: string) => Promise<Compiled>;

/**
 * The compile step of the portal and `approve`. With a signing key every bundle they write is
 * signed as `compile --sign` signs it, so a gateway started with --bundle-public-key takes the
 * keys the portal adds (an unsigned bundle would be refused and the old one would serve on).
 */
export function compilerFor(opts: { signingKey?: KeyObject; cacheDir?: string } = {}): CompileFn {
  // With a cache directory (`portal --cache DIR`, compiler/key-cache.ts) a new key recompiles
  // only its own file; the bytes are those of a full compile.
  const compileOptions = opts.cacheDir === undefined ? {} : { cacheDir: opts.cacheDir };
  return async (configDir) => {
    const result = await compileDir(configDir, compileOptions);
    const ok = result.errorCount === 0 && result.bundle !== null;
    let bundle = ok ? result.bundle : null;
    if (bundle !== null && opts.signingKey !== undefined) bundle = signBundle(bundle, opts.signingKey);
    return {
      errorCount: result.errorCount,
      content: ok ? (result.content as BundleContent) : null,
      bundle,
      report: formatDiagnostics(result, 'text', configDir),
      ...(result.cache === undefined ? {} : { cache: result.cache }),
    };
  };
}

export const compileConfig: CompileFn = compilerFor();
