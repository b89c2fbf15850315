// What every stage of the request path is: a small check that reads the request context,
// may record what it established (the API, the key, response headers), and answers one
// verdict: GO (continue with the next stage) or a Refusal (the error row to send, with its
// message and headers). A stage answers synchronously, or with a promise when it must wait
// (the Redis limiter); runtime/stages/run.ts runs both kinds without a microtask for the first.
import type { Refusal } from '../errors.ts';
import type { RequestContext } from './context.ts';

/** Continue with the next stage. `null`, so a passing check allocates nothing. */
export const GO = null;

export type Verdict = Refusal | typeof GO;

export interface Stage {
  /** Names the stage in a decision (`decide`) and in docs/request-path.md. */
  readonly name: string;
  run(ctx: RequestContext): Verdict | Promise<Verdict>;
}
