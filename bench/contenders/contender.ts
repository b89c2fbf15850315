// A contender: one server that answers https://127.0.0.1:<port>/api/ only for the pinned client
// certificates and proxies to the shared upstream. Started and stopped by PID, pinned on the
// server core.
import type { BenchContext } from '../lib/context.ts';
import type { BenchPki } from '../lib/pki.ts';
import type { Proc } from '../lib/proc.ts';
import type { Upstream } from '../upstream.ts';

export interface StartArgs {
  pki: BenchPki;
  upstream: Upstream;
  port: number;
  /** A directory of its own for generated config and logs. */
  dir: string;
}

export interface Running {
  proc: Proc;
  /** Free-form facts about this instance for the report (e.g. keys loaded). */
  notes: string[];
  /** mtlsgate only: its admin listener (/health, /metrics). */
  adminUrl?: string;
  /** mtlsgate only: the bundle file it serves and watches. */
  bundleFile?: string;
}

export interface Contender {
  id: string;
  label: string;
  /** The executable it needs (null: only node); absent = reported "not installed". */
  binary: string | null;
  /** False for the bare Node ceiling, which checks nothing. */
  enforcesPin: boolean;
  /** How it refuses an unlisted certificate, in words, for the report. */
  refusal: string;
  version(ctx: BenchContext): string;
  start(ctx: BenchContext, args: StartArgs): Promise<Running>;
}
