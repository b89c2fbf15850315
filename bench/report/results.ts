// What a bench run measured (bench/results.json), and what the report reads of it.
import type { BenchOptions } from '../lib/context.ts';
import type { Machine } from '../lib/machine.ts';
import type { CompileResult } from '../workloads/compile.ts';
import type { GeneratorRow } from '../workloads/generator.ts';
import type { Http2Section } from '../workloads/http2.ts';
import type { LimitsSection } from '../workloads/limits-e2e.ts';
import type { LogLineResult } from '../workloads/log-line.ts';
import type { PairedSection } from '../workloads/paired.ts';
import type { ContenderRun } from '../workloads/proxy.ts';
import type { ReloadRun } from '../workloads/reload.ts';
import type { ScaleRow } from '../workloads/scale.ts';
import type { ShardReloadRow } from '../workloads/shard-reload.ts';
import type { SwapRow } from '../workloads/swap.ts';

export interface BenchResults {
  machine: Machine;
  options: BenchOptions;
  sections: {
    generator?: GeneratorRow[];
    paired?: PairedSection[];
    http2?: Http2Section[];
    proxy?: ContenderRun[];
    compile?: CompileResult;
    scale?: ScaleRow[];
    shards?: ShardReloadRow[];
    swap?: SwapRow[];
    reload?: ReloadRun[];
    limits?: LimitsSection;
    logLine?: LogLineResult;
  };
  /** Sections that failed as a whole. */
  errors: { section: string; message: string }[];
  durationS?: number;
  loadAverageAtEnd?: number[];
}

export interface Target {
  target: string;
  measured: string;
  /** null: nothing to judge (the section did not run or failed). */
  reached: boolean | null;
}

/** The contender every ratio divides by: the bare Node proxy of the same run. */
export const BASELINE = 'node-bare';

/** A contender's run that completed, for one algorithm. */
export function find(runs: ContenderRun[], id: string, alg: string): ContenderRun | undefined {
  return runs.find((r) => r.contender === id && r.alg === alg && r.status === 'ok');
}
