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
}

export type CompileFn = (configDir: string) => Promise<Compiled>;

/**
 * The compile step of the portal and `approve`. With a signing key every bundle they write is
 * signed as `compile --sign` signs it, so a gateway started with --bundle-public-key takes the
 * keys the portal adds (an unsigned bundle would be refused and the old one would serve on).
 */
export function compilerFor(opts: { signingKey?: KeyObject } = {}): CompileFn {
  return async (configDir) => {
    const result = await compileDir(configDir, {});
    const ok = result.errorCount === 0 && result.bundle !== null;
    let bundle = ok ? result.bundle : null;
    if (bundle !== null && opts.signingKey !== undefined) bundle = signBundle(bundle, opts.signingKey);
    return {
      errorCount: result.errorCount,
      content: ok ? (result.content as BundleContent) : null,
      bundle,
      report: formatDiagnostics(result, 'text', configDir),
    };
  };
}

export const compileConfig: CompileFn = compilerFor();
