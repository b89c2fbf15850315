// The messages a `serve --workers N` primary and its workers exchange over the cluster IPC
// channel, and the one rule both sides share: how many tokens a lease may hold.
// Every type starts with "mtlsgate:" so that other users of the channel (prom-client's metric
// aggregation) never see ours and we never read theirs.
import type { Quota, RateLimit } from '../../bundle/types.ts';
import type { Outcome } from '../limits/algorithm.ts';
import type { ExpiringCertificate } from '../pki-status.ts';
import type { HealthReport } from '../admin.ts';

/** Largest lease: one IPC round trip per this many requests of a busy limited key. */
export const MAX_LEASE = 32;
/** A worker returns a lease's unused tokens when it has not used it for this long (ms). */
export const LEASE_IDLE_MS = 200;
/** A lease expires this long after it was granted (ms), or at the end of its quota period or
 *  rate window, whichever is first: tokens are counted when granted, so they are spent soon. */
export const LEASE_TTL_MS = 1_000;

/**
 * Tokens to grant when `remaining` (including the one the asking request uses) are left and
 * `workers` workers share the key: at most MAX_LEASE, at most a 1/(2*workers) share of what is
 * left, at least 1. So near the end of a quota every grant is one token: exact.
 */
export function leaseSize(remaining: number, workers: number): number {
  return Math.max(1, Math.min(MAX_LEASE, Math.floor(remaining / (2 * Math.max(1, workers)))));
}

/** Worker -> primary: decide one request of `key` and grant a lease. `ret` closes the
 *  worker's previous lease of that key, returning its unused tokens. */
export interface AcquireMessage {
  type: 'mtlsgate:acquire';
  req: number;
  key: string;
  rate: RateLimit | null;
  quota: Quota | null;
  ret: number;
}

/** Primary -> worker: `granted` tokens (0 = refused, `outcome` says why), the first for the
 *  asking request; `outcome` is the state after all of them. */
export interface GrantMessage {
  type: 'mtlsgate:grant';
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

/** Worker -> primary: closes the worker's lease of `key`, `unused` tokens going back. */
export interface ReturnMessage {
  type: 'mtlsgate:return';
  key: string;
  /** The lease (its grant's `req`): a return that crossed a newer grant closes nothing. */
  lease: number;
  unused: number;
}

/** Primary -> worker: give back the lease of `key` now (another worker was refused). */
export interface RecallMessage {
  type: 'mtlsgate:recall';
  key: string;
}

/** Primary -> worker requests with an answer. */
export type QueryMessage = { type: 'mtlsgate:health'; id: number } | { type: 'mtlsgate:expiring'; id: number; limit: number };

export interface AnswerMessage {
  type: 'mtlsgate:answer';
  id: number;
  health?: HealthReport;
  certificates?: ExpiringCertificate[];
}

/** Primary -> worker control. */
export type ControlMessage = { type: 'mtlsgate:reload' } | { type: 'mtlsgate:stop'; reason: string };

/** Worker -> primary: listening (or not: the start-up error). */
export type StartedMessage = { type: 'mtlsgate:ready'; listen: string; digest: string } | { type: 'mtlsgate:failed'; error: string };

export type ToWorker = GrantMessage | RecallMessage | QueryMessage | ControlMessage;
export type ToPrimary = AcquireMessage | ReturnMessage | AnswerMessage | StartedMessage;

export function isOurs(m: unknown): m is { type: string } {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('mtlsgate:');
}
