// The portal's view of the compiler: compile a config directory with the same compiler as
// `mtlsgate compile`, and hand back the content, the bundle bytes and a readable report.
import { compileDir, formatDiagnostics, writeFileAtomic } from '../compiler/index.ts';
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

export const compileConfig: CompileFn = async (configDir) => {
  const result = await compileDir(configDir, {});
  const ok = result.errorCount === 0 && result.bundle !== null;
  return {
    errorCount: result.errorCount,
    content: ok ? (result.content as BundleContent) : null,
    bundle: ok ? result.bundle : null,
    report: formatDiagnostics(result, 'text', configDir),
  };
};
