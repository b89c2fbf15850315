// Interleaved keep-alive: the ratio to the bare Node proxy that survives a noisy machine.
//
// Why: on these shared 2-core VMs the CPU a request costs drifts by ±30-50% over minutes
// (steal time, the other core's tenants), so "contender A for 8 s, then contender B for 8 s"
// measures the drift as much as the code. Here every contender runs at once (idle ones cost
// nothing), pinned on the same server core, and the load visits them in short turns, several
// rounds, in a rotating order; each round gives one ratio from runs seconds apart, and the
// median round is reported with the spread, so a reader sees how much to trust it.
import type { KeyAlg } from '../../cli/pki.ts';
import type { Contender } from '../contenders/contender.ts';
import type { BenchContext } from '../lib/context.ts';
import { benchPki } from '../lib/pki.ts';
import { freePort } from '../../common/listen.ts';
import type { Upstream } from '../upstream.ts';
import { measure, median, round, type LoadResult } from './load.ts';
import { API_PATH } from './proxy.ts';

export interface PairedRow {
  contender: string;
  label: string;
  alg: KeyAlg;
  /** Median over rounds of (this contender's req/s ÷ the baseline's req/s in the same round). */
  medianRatio: number;
  minRatio: number;
  maxRatio: number;
  /** Median over rounds of the server CPU µs per request, and its ratio to the baseline's. */
  medianUsPerRequest: number;
  medianCpuRatio: number;
  medianRps: number;
  errors: number;
  rounds: number;
}

export interface PairedSection {
  turnS: number;
  rounds: number;
  rows: PairedRow[];
}

/** `contenders[0]` is the baseline every ratio divides by. */
export async function runPaired(
  ctx: BenchContext,
  contenders: Contender[],
  alg: KeyAlg,
  upstream: Upstream,
  { rounds, turnS }: { rounds: number; turnS: number },
): Promise<PairedSection> {
  const pki = await benchPki(ctx.dir(), alg);
  const scratchDir = ctx.dir('scratch');
  const started: { c: Contender; url: string; pid: number; stop: () => Promise<void> }[] = [];
  try {
    for (const c of contenders) {
      const port = await freePort();
      const running = await c.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', `paired-${c.id}-${alg}`) });
      started.push({ c, url: `https://127.0.0.1:${port}${API_PATH}`, pid: running.proc.pid, stop: () => running.proc.stop() });
    }
    const spec = (url: string, durationS: number) => ({
      url,
      combinedPem: pki.files['listed-1'].combined,
      scratchDir,
      keepAlive: true,
      concurrency: ctx.opts.connections,
      durationS,
    });
    for (const s of started) await measure(s.pid, spec(s.url, 1)); // warm-up: JIT, pools
    const perRound: LoadResult[][] = started.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < started.length; k++) {
        const i = (k + r) % started.length; // rotate: nobody always runs first or last
        // Turns shorter than 2 s are measured once (measure() retries only longer ones).
        perRound[i].push(await measure(started[i].pid, spec(started[i].url, turnS)));
      }
      ctx.log(`  paired ${alg} round ${r + 1}/${rounds}: ${started.map((s, i) => `${s.c.id} ${perRound[i][r].rps}`).join(', ')}`);
    }
    const base = perRound[0];
    const rows = started.map((s, i): PairedRow => {
      const runs = perRound[i];
      const ratios = runs.map((x, r) => x.rps / base[r].rps);
      const cpu = runs.map((x, r) => (x.serverUsPerRequest > 0 ? base[r].serverUsPerRequest / x.serverUsPerRequest : 0));
      return {
        contender: s.c.id,
        label: s.c.label,
        alg,
        medianRatio: round(median(ratios)),
        minRatio: round(Math.min(...ratios)),
        maxRatio: round(Math.max(...ratios)),
        medianUsPerRequest: Math.round(median(runs.map((x) => x.serverUsPerRequest))),
        medianCpuRatio: round(median(cpu)),
        medianRps: Math.round(median(runs.map((x) => x.rps))),
        errors: runs.reduce((n, x) => n + x.errors, 0),
        rounds,
      };
    });
    return { turnS, rounds, rows };
  } finally {
    for (const s of started) await s.stop();
  }
}
