// Where a workers bench puts a gateway's processes and its load on this machine's cores.
//   core0: the gateway's whole tree (primary and workers) on core 0, the load generator and the
//          upstream on core 1: both variants get the same one-core budget, and two workers
//          time-share that core.
//   split: the deployment `--workers N` is for on N cores: worker k on core k-1 (its own core),
//          the primary free on every core; a one-process gateway on core 0. The load generator
//          and the upstream free on every core (there is no core left for them).
//   free:  nothing pinned: the gateway, the load generator and the upstream on every core, the
//          scheduler placing them.
import { ALL_CORES, CLIENT_CORE, CORES, processTree, SERVER_CORE, setAffinity } from './proc.ts';

export type Placement = 'core0' | 'split' | 'free';
export const PLACEMENTS: Placement[] = ['core0', 'split', 'free'];

/** Where the load generator (and the upstream) run for a gateway placed so. */
export function loadCores(p: Placement): number | string {
  return p === 'core0' ? CLIENT_CORE : ALL_CORES;
}

/** The cores whose load is watched while the gateway serves (its own, or all). */
export function watchedCores(p: Placement): number[] {
  return p === 'core0' ? [SERVER_CORE] : Array.from({ length: CORES }, (_, i) => i);
}

/**
 * Pins a started gateway's processes (every thread) as `p` says; workers are its child processes
 * in pid order (node:cluster forks them in order). Returns "pid:cores" per process, primary first,
 * read back from the kernel.
 */
export function placeGateway(rootPid: number, p: Placement): string {
  const [root, ...workers] = processTree(rootPid);
  workers.sort((a, b) => a - b);
  const placed: string[] = [];
  if (p === 'free') for (const pid of [root, ...workers]) placed.push(`${pid}:${setAffinity(pid, ALL_CORES)}`);
  else if (p === 'core0' || workers.length === 0) for (const pid of [root, ...workers]) placed.push(`${pid}:${setAffinity(pid, SERVER_CORE)}`);
  else {
    placed.push(`${root}:${setAffinity(root, ALL_CORES)}`);
    workers.forEach((pid, k) => placed.push(`${pid}:${setAffinity(pid, k % CORES)}`));
  }
  return placed.join(' ');
}

/** Moves the upstream's processes to where the load runs for placement `p`. */
export function placeUpstream(upstreamPid: number, p: Placement): void {
  for (const pid of processTree(upstreamPid)) setAffinity(pid, loadCores(p));
}
