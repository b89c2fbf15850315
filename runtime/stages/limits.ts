// Stage 6, limits: the key's rate limit and quota (runtime/limits/). The in-process limiter
// answers synchronously, so this stage does too; the Redis limiter answers with a promise.
// Its headers go on the client's response either way (X-RateLimit-*, Retry-After).
import { Refusal } from '../errors.ts';
import type { LimitDecision } from '../limits/limiter.ts';
import type { RequestContext } from './context.ts';
import { GO, type Stage, type Verdict } from './stage.ts';

function verdictOf(ctx: RequestContext, decision: LimitDecision): Verdict {
  if (!decision.allowed) return new Refusal(decision.code ?? 'limit.rate', undefined, decision.headers);
  ctx.responseHeaders = decision.headers;
  return GO;
}

function limits(ctx: RequestContext): Verdict | Promise<Verdict> {
  const key = ctx.key;
  const limiter = ctx.limiter;
  if (key === null || !key.limited || limiter === null) return GO;
  const decision = limiter.check(key.def, ctx.now);
  if (decision instanceof Promise) return decision.then((d) => verdictOf(ctx, d));
  return verdictOf(ctx, decision);
}

export const limitsStage: Stage = { name: 'limits', run: limits };
