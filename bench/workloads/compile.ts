// Compile benchmark: 1,000 APIs / 100,000 keys, each key with its own certificate, compiled by
// the real CLI in a child process: wall time, keys/s, peak RSS (GNU time's maximum resident set).
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { generateCompileConfig } from '../gen-config.ts';
import type { BenchContext } from '../lib/context.ts';
import { runPinned, SERVER_CORE } from '../lib/proc.ts';
import { round } from './load.ts';

export interface CompileResult {
  apis: number;
  keys: number;
  /** Seconds spent generating the config in this run (0 = reused from bench/.work). */
  generatedInS: number;
  wallS: number;
  cpuS: number | null;
  keysPerS: number;
  peakRssMiB: number | null;
  bundleMiB: number;
  exitCode: number | null;
  error?: string;
}

export async function runCompileBench(ctx: BenchContext): Promise<CompileResult> {
  const { compileApis: apis, compileKeys: keys } = ctx.opts;
  const gen = await generateCompileConfig(ctx.dir('compile', `config-${apis}-${keys}`), { apis, keys }, ctx.log);
  const out = join(ctx.dir('compile'), 'bundle.json');
  rmSync(out, { force: true });
  const r = await runPinned(SERVER_CORE, process.execPath, [join(ctx.root, 'dist/mtlsgate.mjs'), 'compile', gen.dir, '-o', out], 600_000);
  const result: CompileResult = {
    apis,
    keys,
    generatedInS: round(gen.generatedInS, 1),
    wallS: round(r.wallMs / 1000, 2),
    cpuS: r.cpuSeconds === null ? null : round(r.cpuSeconds, 2),
    keysPerS: Math.round(keys / (r.wallMs / 1000)),
    peakRssMiB: r.maxRssKiB === null ? null : Math.round(r.maxRssKiB / 1024),
    bundleMiB: r.code === 0 ? round(statSync(out).size / 2 ** 20, 1) : 0,
    exitCode: r.code,
  };
  if (r.code !== 0) result.error = (r.stderr || r.stdout).trim().split('\n').slice(0, 8).join('\n');
  return result;
}
