// Runs bench/peers/open-loop-client.ts pinned on the client core: latency at a fixed offered
// rate, measured from each request's due time (no coordinated omission).
import { join } from 'node:path';
import { CLIENT_CORE, runPinned } from './proc.ts';

export interface OpenLoopRun {
  root: string;
  tsNode: string[];
  url: string;
  cert: string;
  key: string;
  rate: number;
  durationS: number;
  connections: number;
  /** The cores the client runs on (one core or a taskset list); the client core by default. */
  cores?: number | string;
}

export interface OpenLoopResult {
  offeredRps: number;
  achievedRps: number;
  sent: number;
  errors: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  clientCpu: number | null;
}

export async function runOpenLoop(run: OpenLoopRun): Promise<OpenLoopResult> {
  const args = [
    ...run.tsNode,
    join(run.root, 'bench/peers/open-loop-client.ts'),
    run.url,
    run.cert,
    run.key,
    String(run.rate),
    String(run.durationS),
    String(run.connections),
  ];
  const r = await runPinned(run.cores ?? CLIENT_CORE, process.execPath, args, (run.durationS + 60) * 1000, { cwd: run.root });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('{')) throw new Error(`open-loop client failed (exit ${r.code}): ${r.stderr.trim().slice(-300)}`);
  const out = JSON.parse(line);
  return { offeredRps: run.rate, ...out, clientCpu: r.cpuSeconds === null ? null : Math.round((r.cpuSeconds / run.durationS) * 1000) / 1000 };
}
