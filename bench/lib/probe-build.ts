// A bench probe (bench/peers/*-probe.ts) bundled into one .mjs with esbuild, as `mtlsgate serve`
// runs from dist/: run from source, its code (and its worker threads) would spend seconds in
// tsx's loader, which production never does.
import { join } from 'node:path';
import { build } from 'esbuild';
import type { BenchContext } from './context.ts';

/** Bundles bench/peers/NAME.ts into OUTDIR/NAME.mjs; returns that path. */
export async function buildProbe(ctx: BenchContext, name: string, outDir: string): Promise<string> {
  const outfile = join(outDir, `${name}.mjs`);
  await build({
    entryPoints: [join(ctx.root, 'bench/peers', `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'warning',
    banner: { js: "import { createRequire as __probeRequire } from 'node:module'; const require = __probeRequire(import.meta.url);" },
  });
  return outfile;
}
