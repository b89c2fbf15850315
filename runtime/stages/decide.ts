// The request path without a network: runs every stage (route to limits, not the proxy) on a
// described request and says what the gateway would do, which API and key it saw, and which
// stage refused. The gateway runs the same stages on real requests (runtime/http1.ts), so
// access tests and `explain` tools get the gateway's own answer.
import type { Refusal } from '../errors.ts';
import type { Limiter } from '../limits/limiter.ts';
import { hostOf, pathEnd } from '../route.ts';
import type { Snapshot } from '../snapshot.ts';
import { RequestContext, type RequestHeaders, type StageIdentity } from './context.ts';
import { STAGES } from './index.ts';
import { runStages } from './run.ts';
import type { Verdict } from './stage.ts';

export interface DescribedRequest {
  method: string;
  /** Host as in a Host header ("api.example.com", "api.example.com:8443"). */
  host: string;
  /** Path as sent, query string allowed ("/payments/v1/charges?x=1"). */
  path: string;
  /** Lower-case names. */
  headers?: RequestHeaders;
  /** The client's address; default "". */
  remote?: string;
  /**
   * The SHA-256 (hex) of the token the request bears in the API's auth header, for callers
   * that know a key's token only by its hash (access tests: `as_key`). Wins over the header.
   */
  tokenSha256?: string;
}

export interface Decision {
  /** null: every stage let the request through (the gateway would proxy it). */
  refusal: Refusal | null;
  /** The refusing stage's name (runtime/stages/index.ts), or null. */
  stage: string | null;
  api: string | null;
  key: string | null;
  /** Response headers the gateway would add (rate-limit headers), or null. */
  responseHeaders: Record<string, string> | null;
}

function decision(ctx: RequestContext, verdict: Verdict): Decision {
  return { refusal: verdict, stage: ctx.refusedBy, api: ctx.api?.id ?? null, key: ctx.key?.id ?? null, responseHeaders: ctx.responseHeaders };
}

/** The stages' context for a described request (decide runs STAGES on it; `explain` one by one). */
export function contextFor(snapshot: Snapshot, request: DescribedRequest, identity: StageIdentity | null, now: number, limiter?: Limiter): RequestContext {
  const rawPath = request.path.slice(0, pathEnd(request.path));
  const ctx = new RequestContext(
    snapshot,
    identity,
    now,
    request.method.toUpperCase(),
    hostOf(request.host, ''),
    rawPath,
    request.headers ?? {},
    request.remote ?? '',
    limiter ?? null,
  );
  if (request.tokenSha256 !== undefined) ctx.tokenSha256 = request.tokenSha256.toLowerCase();
  return ctx;
}

/**
 * Decides `request` against `snapshot` for a client presenting `identity` (null: no
 * certificate) at `now` (ms since the epoch). Without a limiter the limits stage is skipped
 * and the answer is synchronous; with one, it counts against that limiter like a real request
 * (give it a throw-away in-process limiter to leave the gateway's counters alone).
 */
export function decide(snapshot: Snapshot, request: DescribedRequest, identity: StageIdentity | null, now: number): Decision;
export function decide(
  snapshot: Snapshot,
  request: DescribedRequest,
  identity: StageIdentity | null,
  now: number,
  limiter: Limiter,
): Decision | Promise<Decision>;
export function decide(
  snapshot: Snapshot,
  request: DescribedRequest,
  identity: StageIdentity | null,
  now: number,
  limiter?: Limiter,
): Decision | Promise<Decision> {
  const ctx = contextFor(snapshot, request, identity, now, limiter);
  const verdict = runStages(STAGES, ctx);
  if (verdict instanceof Promise) return verdict.then((v) => decision(ctx, v));
  return decision(ctx, verdict);
}
