// Stage 1, route: which API the host and path name (runtime/route.ts does the lookup and the
// path normalisation). Records the API and the normalised path. A Host that is not
// host[:port] (runtime/host.ts) is refused first.
import { refusal } from '../errors.ts';
import { BAD_HOST, BAD_PATH, routeRequest } from '../route.ts';
import type { RequestContext } from './context.ts';
import { GO, type Stage, type Verdict } from './stage.ts';

function route(ctx: RequestContext): Verdict {
  if (ctx.host === BAD_HOST) return refusal('request.bad_host');
  const routed = routeRequest(ctx.snapshot.routes, ctx.host, ctx.rawPath);
  if (routed === BAD_PATH) return refusal('request.bad_path');
  if (routed === undefined) return refusal('route.not_found');
  ctx.api = routed.api;
  ctx.path = routed.path;
  return GO;
}

export const routeStage: Stage = { name: 'route', run: route };
