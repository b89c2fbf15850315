// The messages a `serve --workers N` primary and its workers exchange over the cluster IPC
// channel, and the one rule both sides share: how many tokens a lease may hold.
// Every type starts with "mtlsgate:" so that other users of the channel (prom-client's metric
// aggregation) never see ours and we never read theirs.
import type { Quota, RateLimit } from '../../bundle/types.ts';
import type { Outcome } from '../limits/algorithm.ts';
import type { ExpiringCertificate } from '../pki-status.ts';
import type { HealthReport } from '../admin.ts';
import type { PeerTaken } from '../peer-floors.ts';
import type { MetricsJson } from './cluster-metrics.ts';

/** Largest lease: even a worker spending tens of thousands of requests a second of one key
 *  asks at most a few times a second; also what a crashed worker can strand (twice: it holds
 *  its current lease and the next one). */
export const MAX_LEASE = 4_096;
/** A worker's first lease of a key asks for this many tokens (the fixed size before leases grew). */
export const INITIAL_LEASE = 32;
/** A worker asks for leases that last about this long at the rate it spends them (ms): each
 *  prefetch asks for at most twice the last lease (geometric growth while it keeps spending
 *  them), at least INITIAL_LEASE, at most MAX_LEASE. Every lease is a message each way, and the
 *  primary, idle otherwise, pays a cold wake-up for each (~0.2 ms of CPU on a shared core,
 *  measured in docs/workers.md): 400 ms rather than 100 ms cuts those messages by 4. Well under
 *  LEASE_TTL_MS, so a lease fetched at half of the previous one is spent before it expires even
 *  if the pace halves; near a limit the share bound (leaseSize), not this, sizes leases. */
export const LEASE_TARGET_MS = 400;
/** A worker returns a lease's unused tokens when it has not used it for this long (ms). */
export const LEASE_IDLE_MS = 200;
/** A lease expires this long after it was granted (ms), or at the end of its quota period or
 *  rate window, whichever is first: tokens are counted when granted, so they are spent soon. */
export const LEASE_TTL_MS = 1_000;

/**
 * Tokens to grant when `remaining` are left (including the one the asking request uses, if
 * any) and `workers` workers share the key, to a worker that asked for `want`: at most `want`
 * and MAX_LEASE, at most a 1/(2*workers) share of what is left, at least 1. So a key far from
 * its limit gets what its workers spend, and near the end of a quota every grant is one token.
 */
export function leaseSize(remaining: number, workers: number, want: number): number {
  return Math.max(1, Math.min(want, MAX_LEASE, Math.floor(remaining / (2 * Math.max(1, workers)))));
}

/** A prefetch is granted only while a 1/(2*workers) share of what is left is at least this:
 *  near the limit a worker asks when it has run out, as with fixed leases, so the last tokens
 *  are never held in reserve by a worker that may not need them. */
export const PREFETCH_MIN_SHARE = INITIAL_LEASE;

/**
 * What a worker asks for next after spending `spent` tokens of a lease of `granted` in
 * `elapsedMs`: LEASE_TARGET_MS of spending at that pace, at most twice `granted`, between
 * INITIAL_LEASE and MAX_LEASE.
 */
export function nextWant(granted: number, spent: number, elapsedMs: number): number {
  const byPace = elapsedMs > 0 ? Math.ceil((spent * LEASE_TARGET_MS) / elapsedMs) : Infinity;
  return Math.max(INITIAL_LEASE, Math.min(MAX_LEASE, 2 * granted, byPace));
}

/** Leases a message closes, flat: lease id (its grant's `req`), unused tokens, id, unused, ...
 *  An id the primary does not know as open (already closed, crossed a newer grant) closes
 *  nothing. */
export type Closes = number[];

/** Worker -> primary: a lease of `key` of up to `want` tokens. Not a prefetch: decide one
 *  request (the first token is that request's) and, refused while other workers hold tokens
 *  of the key, recall them and decide again. A prefetch (the worker still holds tokens) is
 *  granted only far from the limit (PREFETCH_MIN_SHARE), never recalls, and every token goes
 *  to the lease.
 *  `closes`: the worker's leases of the key that are spent or unusable. */
export interface AcquireMessage {
  type: 'mtlsgate:acquire';
  req: number;
  key: string;
  rate: RateLimit | null;
  quota: Quota | null;
  want: number;
  prefetch: boolean;
  closes: Closes;
}

/** Primary -> worker: `granted` tokens (0 = refused or prefetch declined; `outcome` says why),
 *  the first for the asking request unless it was a prefetch; `outcome` is the state after all
 *  of them. */
export interface GrantMessage {
  type: 'mtlsgate:grant';
  key: string;
  req: number;
  granted: number;
  outcome: Outcome;
  /** When the lease stops being usable (ms since the epoch). */
  expiresAt: number;
  /** The rate's theoretical arrival time after the grant (for X-RateLimit-Reset). */
  tat: number;
  /** The quota period the lease belongs to. */
  quotaEnd: number;
}

/** Worker -> primary: closes leases of `key`, their unused tokens going back. Empty `closes`:
 *  the worker holds nothing of the key (its answer to a recall). */
export interface ReturnMessage {
  type: 'mtlsgate:return';
  key: string;
  closes: Closes;
}

/** Primary -> worker: give back the lease of `key` now (another worker was refused). */
export interface RecallMessage {
  type: 'mtlsgate:recall';
  key: string;
}

/** Primary -> worker requests with an answer. */
export type QueryMessage =
  | { type: 'mtlsgate:health'; id: number }
  | { type: 'mtlsgate:expiring'; id: number; limit: number }
  | { type: 'mtlsgate:metrics'; id: number };

export interface AnswerMessage {
  type: 'mtlsgate:answer';
  id: number;
  health?: HealthReport;
  certificates?: ExpiringCertificate[];
  /** Its registries' getMetricsAsJSON() (runtime/cluster/cluster-metrics.ts). */
  metrics?: MetricsJson;
}

/** Primary -> worker control. */
export type ControlMessage = { type: 'mtlsgate:reload' } | { type: 'mtlsgate:stop'; reason: string };

/**
 * Worker -> primary, first thing (its message listener is in place): hello. Primary -> worker,
 * the answer: what the workers took so far (runtime/peer-floors.ts), before the worker reads a
 * bundle or a CRL; floors taken later follow as PeerFloorMessages.
 */
export type HelloMessage = { type: 'mtlsgate:hello' };
/** `crlDir`: the primary's hand-off directory, where large CRLs cross between the processes (crl-files.ts). */
export type StartMessage = { type: 'mtlsgate:start'; taken: PeerTaken[]; crlDir: string };

/** Worker -> primary: listening (or not: the start-up error). */
export type StartedMessage = { type: 'mtlsgate:ready'; listen: string; digest: string } | { type: 'mtlsgate:failed'; error: string };

/** Worker -> primary: a signed bundle or a CRL it took, for the state file the primary writes (serve --state-dir). */
export type TakenMessage = { type: 'mtlsgate:taken' } & PeerTaken;

/** What another worker took, sent on by the primary: the floors it raises (runtime/peer-floors.ts). */
export type PeerFloorMessage = Omit<TakenMessage, 'type'> & { type: 'mtlsgate:floor' };

export type ToWorker = GrantMessage | RecallMessage | QueryMessage | ControlMessage | PeerFloorMessage | StartMessage;
export type ToPrimary = AcquireMessage | ReturnMessage | AnswerMessage | StartedMessage | TakenMessage | HelloMessage;

export function isOurs(m: unknown): m is { type: string } {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('mtlsgate:');
}
