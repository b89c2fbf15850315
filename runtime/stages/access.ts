// Stage 5, access rights: does the key have this API, and (when its right lists allowed_urls)
// does one entry match the method and the path after the listen path (no query string).
import { refusal } from '../errors.ts';
import type { RequestContext } from './context.ts';
import { GO, type Stage, type Verdict } from './stage.ts';

function access(ctx: RequestContext): Verdict {
  const key = ctx.key;
  if (key === null) return GO; // keyless API
  const api = ctx.api!;
  const urls = key.rights.get(api.id);
  if (urls === undefined) return refusal('access.api_denied');
  if (urls === null) return GO;
  // The normalised path after the listen path, starting with "/".
  const rest = ctx.path.length > api.restStart ? ctx.path.slice(api.restStart) : '/';
  for (const allowed of urls) {
    if ((allowed.methods === null || allowed.methods.has(ctx.method)) && allowed.pattern.test(rest)) {
      // Methods are restricted for this key here: an upstream must not be told another method
      // in a header (X-HTTP-Method-Override and kin) than the one that was checked.
      if (urls.some((u) => u.methods !== null)) ctx.stripMethodOverride = true;
      return GO;
    }
  }
  return refusal('access.url_denied');
}

export const accessStage: Stage = { name: 'access', run: access };
