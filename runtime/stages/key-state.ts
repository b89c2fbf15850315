// Stage 4, key state: the key's expiry, then its inactive flag.
import { refusal } from '../errors.ts';
import type { RequestContext } from './context.ts';
import { GO, type Stage, type Verdict } from './stage.ts';

function keyState(ctx: RequestContext): Verdict {
  const key = ctx.key;
  if (key === null) return GO; // keyless API
  if (ctx.now > key.expiresAt) return refusal('key.expired');
  if (key.def.is_inactive) return refusal('key.inactive');
  return GO;
}

export const keyStateStage: Stage = { name: 'key-state', run: keyState };
