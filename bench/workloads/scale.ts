// The bundle at scale (issue 15): for each size, the bench generator's config (1,000 APIs, each
// key with its own certificate file) compiled by the real CLI (wall, CPU, peak RSS, bundle
// size), then `mtlsgate serve` started on that bundle (time to the first HTTPS answer, RSS).
// Sizes: --scale-keys (default 100,000; the 1,000,000 row is opt-in: generating its config
// takes ~4 minutes the first time and compiling it a minute or two).
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { generateCompileConfig } from '../gen-config.ts';
import type { BenchContext } from '../lib/context.ts';
import { runPinned, SERVER_CORE } from '../lib/proc.ts';
import { measureServeStartup } from '../lib/serve-startup.ts';
import { round } from './load.ts';

export interface ScaleRow {
  apis: number;
  keys: number;
  compileWallS: number;
  compileCpuS: number | null;
  compilePeakRssMiB: number | null;
  bundleMiB: number;
  bytesPerKey: number;
  /** ms from spawning `serve` to its first HTTPS answer. */
  serveFirstAnswerMs: number | null;
  /** CPU seconds serve had used when it first answered (its own share of that wait on a loaded machine). */
  serveCpuS: number | null;
  serveRssMiB: number | null;
  servePeakRssMiB: number | null;
  error?: string;
}

export const SCALE_APIS = 1000;

export async function runScaleBench(ctx: BenchContext): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  for (const keys of ctx.opts.scaleKeys) {
    const gen = await generateCompileConfig(ctx.dir('compile', `config-${SCALE_APIS}-${keys}`), { apis: SCALE_APIS, keys }, ctx.log);
    const out = join(ctx.dir('scale'), `bundle-${keys}.json`);
    rmSync(out, { force: true });
    ctx.log(`scale: compiling ${keys} keys`);
    const r = await runPinned(SERVER_CORE, process.execPath, [join(ctx.root, 'dist/mtlsgate.mjs'), 'compile', gen.dir, '-o', out], 900_000);
    const row: ScaleRow = {
      apis: SCALE_APIS,
      keys,
      compileWallS: round(r.wallMs / 1000, 1),
      compileCpuS: r.cpuSeconds === null ? null : round(r.cpuSeconds, 1),
      compilePeakRssMiB: r.maxRssKiB === null ? null : Math.round(r.maxRssKiB / 1024),
      bundleMiB: 0,
      bytesPerKey: 0,
      serveFirstAnswerMs: null,
      serveCpuS: null,
      serveRssMiB: null,
      servePeakRssMiB: null,
    };
    if (r.code !== 0) {
      row.error = `compile exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 400)}`;
      rows.push(row);
      continue;
    }
    const bytes = statSync(out).size;
    row.bundleMiB = round(bytes / 2 ** 20, 1);
    row.bytesPerKey = Math.round(bytes / keys);
    ctx.log(`scale: serving ${keys} keys`);
    try {
      const s = await measureServeStartup(ctx.root, ctx.dir('scale'), out, '/api-0000/');
      row.serveFirstAnswerMs = s.firstAnswerMs;
      row.serveCpuS = s.cpuS;
      row.serveRssMiB = s.rssMiB;
      row.servePeakRssMiB = s.peakRssMiB;
    } catch (err) {
      row.error = (err as Error).message;
    }
    rows.push(row);
  }
  return rows;
}
