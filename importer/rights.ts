// Access rights and limits, shared by policies and key sessions. Tyk matches an allowed_urls
// regex against the whole request path (or, with enable_path_prefix_matching, also the path
// after the listen path); mtlsgate matches the path after the listen path. So a pattern that
// starts with the API's listen path loses it, mux templates become regexes as Tyk makes them,
// and the gateway's prefix/suffix matching becomes ^ and $.
import type { AccessRightsSpec, AllowedUrlSpec, LimitsSpec } from '../compiler/model.ts';
import type { ImportContext } from './context.ts';
import { reportLeftovers } from './leftovers.ts';
import { ptr } from './report.ts';
import { convertUrlPattern } from './url-patterns.ts';
import { withWhiteList, type RightsOwner, type TykAllowedUrl } from './white-lists.ts';
import { isObject, num, obj, str, type JsonObject } from './values.ts';

const RIGHT_FIELDS = new Set(['api_id', 'api_name', 'versions', 'allowed_urls']);

/** Tyk access_rights (API id -> definition) as mtlsgate access_rights; undefined when none survive. */
export function convertRights(ctx: ImportContext, file: string, base: string, rights: unknown, owner: RightsOwner): AccessRightsSpec | undefined {
  if (!isObject(rights)) return undefined;
  const out: AccessRightsSpec = {};
  for (const [tykApiId, rawRight] of Object.entries(rights)) {
    const at = ptr(base, tykApiId);
    const right = obj(rawRight);
    const api = ctx.apis.get(tykApiId) ?? ctx.apis.get(str(right.api_id) ?? '');
    if (api === undefined) {
      ctx.report.drop(file, at, `access right for API ${JSON.stringify(tykApiId)} not converted: that API is not among the imported API definitions`);
      continue;
    }
    reportLeftovers(ctx.report, file, at, right, RIGHT_FIELDS);
    const urls = right.allowed_urls;
    if (urls !== undefined && urls !== null && !Array.isArray(urls)) {
      // Granting the whole API here would be wider than Tyk, which cannot load such a right at all.
      ctx.report.drop(file, ptr(at, 'allowed_urls'), `allowed_urls is not a list (Tyk cannot load it): API ${JSON.stringify(tykApiId)} is not granted`);
      continue;
    }
    if (!Array.isArray(urls) || urls.length === 0) {
      const limited = withWhiteList(ctx, api.spec.id, undefined, [], file, at, owner);
      if (limited !== 'none') out[api.spec.id] = limited === undefined ? {} : { allowed_urls: limited };
      continue;
    }
    const own: TykAllowedUrl[] = [];
    const allowed: AllowedUrlSpec[] = [];
    urls.forEach((raw, i) => {
      const u = obj(raw);
      const url = str(u.url);
      const methods = Array.isArray(u.methods) ? u.methods.filter((m): m is string => typeof m === 'string') : [];
      if (url === undefined || url === '') {
        ctx.report.drop(file, ptr(at, 'allowed_urls', i), 'allowed_urls entry without url not converted');
        return;
      }
      if (methods.length === 0) {
        // Tyk requires the request method to be listed: an entry without methods allows nothing.
        ctx.report.drop(file, ptr(at, 'allowed_urls', i), 'allowed_urls entry with no methods not converted: in Tyk it allows nothing');
        return;
      }
      const upper = [...new Set(methods.map((m) => m.toUpperCase()))];
      allowed.push({ url: convertUrlPattern(url, api.spec.proxy.listen_path, ctx.pathMatching), methods: upper });
      own.push({ url, methods: upper });
    });
    // Every entry dropped: Tyk allowed nothing on this API, so grant nothing.
    if (allowed.length === 0) {
      ctx.report.drop(file, ptr(at, 'allowed_urls'), `no allowed_urls entry survives: API ${JSON.stringify(tykApiId)} is not granted`);
      continue;
    }
    const limited = withWhiteList(ctx, api.spec.id, allowed, own, file, at, owner);
    if (limited !== 'none') out[api.spec.id] = { allowed_urls: limited ?? allowed };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A Tyk limit that asks for none: absent, null, 0 or negative (-1 is Tyk's "unlimited"). */
const unlimited = (v: unknown) => v === undefined || v === null || (typeof v === 'number' && v <= 0);
/** A JSON value as the report shows it (JSON.parse reads 1e400 as Infinity, which JSON.stringify calls null). */
const shown = (v: unknown) => (typeof v === 'number' ? String(v) : JSON.stringify(v));

/**
 * Tyk rate/per and quota_max/quota_renewal_rate. Tyk enforces a rate only when rate > 0 and a
 * quota only when quota_max > 0 (and a renewal rate is set); -1 is unlimited.
 */
export function convertLimits(ctx: ImportContext, file: string, base: string, o: JsonObject): LimitsSpec {
  const out: LimitsSpec = {};
  const rate = num(o.rate);
  const per = num(o.per);
  if (rate !== undefined && per !== undefined && rate > 0 && per > 0) {
    out.rate = rate;
    out.per = per;
  } else if (!unlimited(o.rate)) {
    // A rate set to something mtlsgate cannot enforce is reported, never dropped in silence:
    // the key or policy would go without a limit.
    ctx.report.drop(
      file,
      ptr(base, 'rate'),
      `rate ${shown(o.rate)} per ${shown(o.per)} not converted: rate and per must both be numbers above 0; no rate limit was written`,
      'wider',
    );
  }
  const max = num(o.quota_max);
  const renewal = num(o.quota_renewal_rate);
  if (max === -1) out.quota_max = -1;
  else if (max !== undefined && max > 0) {
    if (renewal !== undefined && renewal > 0) {
      out.quota_max = Math.trunc(max);
      out.quota_renewal_rate = renewal;
    } else ctx.report.drop(file, ptr(base, 'quota_max'), 'quota_max not converted: without a quota_renewal_rate Tyk does not enforce it');
  } else if (!unlimited(o.quota_max)) {
    ctx.report.drop(
      file,
      ptr(base, 'quota_max'),
      `quota_max ${shown(o.quota_max)} not converted: it must be a number above 0, or -1; no quota was written`,
      'wider',
    );
  }
  return out;
}
