// The one runner: stages in order until one refuses. A synchronous verdict is used at once,
// so a request whose stages all answer synchronously (in-process limiter) is decided without
// a single microtask; only a stage that answers with a promise makes the rest wait for it.
import type { RequestContext } from './context.ts';
import { GO, type Stage, type Verdict } from './stage.ts';

/**
 * Runs `stages[from..]` on `ctx`: GO when every stage let the request through, else the first
 * refusal (its stage's name recorded in `ctx.refusedBy`). A promise only once some stage
 * answered with one; it rejects if that stage's promise does (a fault, not a refusal).
 */
export function runStages(stages: readonly Stage[], ctx: RequestContext, from = 0): Verdict | Promise<Verdict> {
  for (let i = from; i < stages.length; i++) {
    const stage = stages[i];
    const verdict = stage.run(ctx);
    if (verdict === GO) continue;
    if (verdict instanceof Promise) {
      return verdict.then((settled) => {
        if (settled === GO) return runStages(stages, ctx, i + 1);
        ctx.refusedBy = stage.name;
        return settled;
      });
    }
    ctx.refusedBy = stage.name;
    return verdict;
  }
  return GO;
}
