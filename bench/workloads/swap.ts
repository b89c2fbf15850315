// Bundle load-and-swap: the time to verify, build and swap in a bundle of 1k, 10k and 100k keys
// and the longest event-loop stall it causes, measured in a child process pinned on the server
// core (bench/peers/swap-probe.ts, through the runtime's own BundleStore). The probe is bundled
// with esbuild beside dist/bundle-worker.mjs, as `mtlsgate serve` runs: from source its worker
// thread would spend seconds loading tsx, which production never does.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundle } from '../../bundle/read.ts';
import { serializeBundle } from '../../bundle/write.ts';
import { buildGatewayBundle, withSyntheticKeys } from '../bundles.ts';
import type { BenchContext } from '../lib/context.ts';
import { buildProbe } from '../lib/probe-build.ts';
import { LISTED_CLIENTS, benchPki } from '../lib/pki.ts';
import { runPinned, SERVER_CORE } from '../lib/proc.ts';
import { round } from './load.ts';

const SWAP_SIZES = [1_000, 10_000, 100_000];

export interface SwapRow {
  keys: number;
  bundleMiB: number;
  readMs: number;
  verifyBuildSwapMs: number;
  maxEventLoopDelayMs: number;
  maxTimerDriftMs: number;
  rssMiB: number;
  /** Measured again phase by phase on the same bytes: digest, JSON.parse, shape check (loadBundle's rest), buildSnapshot. */
  phases: { digestMs: number; parseMs: number; shapeMs: number; buildSnapshotMs: number };
}

export async function runSwapBench(ctx: BenchContext, upstreamUrl: string): Promise<SwapRow[]> {
  const dir = ctx.dir('swap');
  const pki = await benchPki(ctx.dir(), 'ec');
  const small = join(dir, 'initial.json');
  await buildGatewayBundle(ctx, pki, upstreamUrl, 'dynamic', 0, small);
  const compiled = loadBundle(readFileSync(small)).content;
  const files = SWAP_SIZES.map((n) => {
    const file = join(dir, `keys-${n}.json`);
    writeFileSync(file, serializeBundle(withSyntheticKeys(compiled, LISTED_CLIENTS[0], n)));
    return file;
  });
  const probe = await buildProbe(ctx, 'swap-probe', dir);
  copyFileSync(join(ctx.root, 'dist/bundle-worker.mjs'), join(dir, 'bundle-worker.mjs'));
  const r = await runPinned(SERVER_CORE, process.execPath, ['--expose-gc', probe, small, ...files], 300_000, { cwd: ctx.root });
  if (r.code !== 0) throw new Error(`swap probe exited ${r.code}: ${r.stderr.trim().slice(-600)}`);
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .map((x) => ({
      keys: x.keys,
      bundleMiB: round(x.bytes / 2 ** 20, 1),
      readMs: round(x.readMs, 1),
      verifyBuildSwapMs: round(x.verifyBuildSwapMs, 1),
      maxEventLoopDelayMs: round(x.maxEventLoopDelayMs, 1),
      maxTimerDriftMs: round(x.maxTimerDriftMs, 1),
      rssMiB: x.rssMiB,
      phases: {
        digestMs: round(x.phases.digestMs, 1),
        parseMs: round(x.phases.parseMs, 1),
        shapeMs: round(x.phases.shapeMs, 1),
        buildSnapshotMs: round(x.phases.buildSnapshotMs, 1),
      },
    }));
}
