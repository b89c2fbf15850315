// The request log line's CPU cost (issue #12: at most 3 µs per request), measured apart from the
// proxy: bench/peers/log-line-probe.ts writes 100,000 real request lines through the gateway's
// logger to a file and compares the process CPU with the same loop without them, pinned on the
// server core. Bundled with esbuild, as `mtlsgate serve` runs, so tsx costs nothing inside it.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from '../lib/context.ts';
import { buildProbe } from '../lib/probe-build.ts';
import { runPinned, SERVER_CORE } from '../lib/proc.ts';
import { round } from './load.ts';

export interface LogLineResult {
  lines: number;
  /** CPU µs per line (log on minus log off), median of the rounds, and every round. */
  medianUsPerLine: number;
  roundsUsPerLine: number[];
  /** Bytes written per line (the log file's size over the lines of one round). */
  bytesPerLine: number;
}

export async function runLogLineBench(ctx: BenchContext): Promise<LogLineResult> {
  const dir = ctx.dir('log-line');
  const probe = await buildProbe(ctx, 'log-line-probe', dir);
  const logFile = join(dir, 'gateway.log');
  const lines = ctx.opts.quick ? 20_000 : 100_000;
  const rounds = ctx.opts.quick ? 3 : 7;
  const r = await runPinned(SERVER_CORE, process.execPath, [probe, logFile, String(lines), String(rounds)], 300_000, { cwd: ctx.root });
  const last = r.stderr.trim().split('\n').at(-1) ?? '';
  if (r.code !== 0 || !last.startsWith('{')) throw new Error(`log-line probe exited ${r.code}: ${r.stderr.trim().slice(-600)}`);
  const x = JSON.parse(last) as { lines: number; usPerLine: number[]; medianUsPerLine: number };
  // Warm-up + rounds: (1 + rounds) runs with the line on.
  const bytesPerLine = statSync(logFile).size / (x.lines * (1 + rounds));
  ctx.log(
    `  log line: ${round(x.medianUsPerLine, 2)} µs CPU per line (rounds ${x.usPerLine.map((u) => round(u, 2)).join(', ')}), ${round(bytesPerLine, 0)} bytes`,
  );
  return {
    lines: x.lines,
    medianUsPerLine: round(x.medianUsPerLine, 2),
    roundsUsPerLine: x.usPerLine.map((u) => round(u, 2)),
    bytesPerLine: round(bytesPerLine, 0),
  };
}
