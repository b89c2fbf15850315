// --convert-white-lists: a classic version's extended_paths.white_list (Tyk refuses every path
// and method it does not list, for every client) carried over as allowed_urls on each policy and
// key that grants the API, intersected with the right's own allowed_urls (Tyk applies both).
// mtlsgate restricts paths per right, not per API, so this is the only place it can go.
//
// Converted only where the result decides every request as Tyk does:
// - one version, read from extended_paths (use_extended_paths), the API not keyless;
// - no mock_response, ignored, black_list or internal entries: Tyk checks those before (or
//   beside) the white list, path by path, which a list of allowed patterns cannot express;
// - every entry's methods are plain: `method_actions` with `no_action` (a `reply` is a mock
//   answer, another action a refusal that stops Tyk's search), or `method`, or neither (every
//   method); no `ignore_case` (allowed_urls are case-sensitive);
// - a right's own allowed_urls and the white list intersect pattern by pattern: the same
//   pattern, or an exact path (^/a/b$) the other pattern matches. Anything else is not
//   intersected: that right keeps its own allowed_urls and the white list stays reported for it.
// Each converted list is proven by a generated access test (white-list-tests.ts).
import type { AllowedUrlSpec, ApiSpec } from '../compiler/model.ts';
import type { ImportContext } from './context.ts';
import { ptr } from './report.ts';
import { convertUrlPattern, tykPathRegex } from './url-patterns.ts';
import { bool, obj, str, type JsonObject } from './values.ts';

export interface RightsOwner {
  kind: 'policy' | 'key';
  id: string;
}
/** A Tyk allowed_urls entry as Tyk reads it: its raw pattern and (upper-case) methods. */
export interface TykAllowedUrl {
  url: string;
  methods: string[];
}
/** A white_list entry as Tyk reads it: its raw path; null methods = every method. */
export interface TykEndpoint {
  path: string;
  methods: string[] | null;
}
export interface ConvertedWhiteList {
  api: ApiSpec;
  /** Where the white_list is. */
  file: string;
  pointer: string;
  endpoints: TykEndpoint[];
  /** The entries as allowed_urls. */
  allowed: AllowedUrlSpec[];
}
/** A right the white list was applied to, with the right's own Tyk allowed_urls (empty = the whole API). */
export interface LimitedRight {
  apiId: string;
  owner: RightsOwner;
  own: TykAllowedUrl[];
}

/** The lists Tyk checks before the white list, or next to it, path by path. */
const CHECKED_WITH_IT = ['mock_response', 'ignored', 'black_list', 'internal'];

const enabled = (list: unknown) => (Array.isArray(list) ? list.filter((e) => !bool(obj(e).disabled)) : []);

/** The methods a white_list entry lets through in Tyk, or why they cannot be carried over. */
function endpointMethods(e: JsonObject): string[] | null | { refused: string } {
  if (e.method_actions !== undefined && e.method_actions !== null) {
    // Tyk compares the request method to each key as written: a key that is not upper case matches nothing.
    const methods: string[] = [];
    for (const [m, action] of Object.entries(obj(e.method_actions))) {
      const a = str(obj(action).action);
      if (a !== 'no_action')
        return { refused: `it answers ${m} with the action ${JSON.stringify(a ?? null)} (a mock reply, or a refusal that ends Tyk's search)` };
      if (m === m.toUpperCase()) methods.push(m);
    }
    return methods;
  }
  const m = str(e.method);
  if (m) return m === m.toUpperCase() ? [m] : [];
  return null;
}

/**
 * With --convert-white-lists, takes a version's white_list for conversion: true when it is
 * converted (the caller then does not report it as dropped); otherwise a note says why not.
 */
export function takeWhiteList(ctx: ImportContext, api: ApiSpec, file: string, at: string, version: JsonObject, only: boolean): boolean {
  if (!ctx.convertWhiteLists) return false;
  const form = bool(version.use_extended_paths) ? 'extended_paths' : 'paths';
  const lists = obj(version[form]);
  const list = lists.white_list;
  if (!Array.isArray(list) || list.length === 0) return false;
  const refuse = (why: string) => {
    ctx.report.note(file, ptr(at, form, 'white_list'), `white_list not converted (--convert-white-lists): ${why}`);
    return false;
  };
  if (form === 'paths') return refuse('the older paths form (use_extended_paths is false) is not converted');
  if (!only) return refuse('the API has more than one version');
  if (api.use_keyless) return refuse('the API is keyless: no policy or key carries allowed_urls for it');
  const beside = CHECKED_WITH_IT.filter((f) => enabled(lists[f]).length > 0);
  if (beside.length > 0)
    return refuse(
      `${beside.join(', ')} ${beside.length === 1 ? 'is' : 'are'} set too: Tyk weighs them against the white list path by path, which allowed_urls cannot express`,
    );
  if (bool(version.ignore_endpoint_case)) return refuse('ignore_endpoint_case: Tyk matches the paths ignoring case, allowed_urls do not');
  const endpoints: TykEndpoint[] = [];
  for (const [i, raw] of list.entries()) {
    const e = obj(raw);
    if (bool(e.disabled)) continue;
    const path = str(e.path);
    if (!path) return refuse(`entry ${i} has no path`);
    if (bool(e.ignore_case)) return refuse(`entry ${i} (${path}) ignores case; allowed_urls do not`);
    if (matches(tykPathRegex(path, ctx.pathMatching), '/') === undefined) return refuse(`entry ${i} (${path}) is not a regex the import can read`);
    const methods = endpointMethods(e);
    if (methods !== null && !Array.isArray(methods)) return refuse(`entry ${i} (${path}): ${methods.refused}`);
    if (methods === null || methods.length > 0) endpoints.push({ path, methods });
  }
  if (endpoints.length === 0) return refuse('no entry lets a method through');
  const allowed: AllowedUrlSpec[] = [];
  for (const e of endpoints) {
    const url = convertUrlPattern(e.path, api.proxy.listen_path, ctx.pathMatching);
    if (!allowed.some((a) => a.url === url && sameMethods(a.methods, e.methods ?? undefined)))
      allowed.push({ url, ...(e.methods ? { methods: e.methods } : {}) });
  }
  ctx.whiteLists.set(api.id, { api, file, pointer: ptr(at, 'extended_paths', 'white_list'), endpoints, allowed });
  ctx.report.note(
    file,
    ptr(at, 'extended_paths', 'white_list'),
    `white_list converted (--convert-white-lists): its ${endpoints.length} ${endpoints.length === 1 ? 'entry becomes' : 'entries become'} allowed_urls on every policy and key granting API "${api.id}" (intersected with their own); tests/white-list-${api.id}.yaml checks the listed paths get Tyk's answers`,
  );
  return true;
}

const sameMethods = (a: string[] | undefined, b: string[] | undefined) => (a ?? []).join() === (b ?? []).join();

/** A pattern that matches exactly one path (^/a/b$, no regex characters): that path. */
const exactPath = (url: string) => /^\^(\/[A-Za-z0-9_~/-]*)\$$/.exec(url)?.[1];

function matches(pattern: string, path: string): boolean | undefined {
  try {
    return new RegExp(pattern).test(path);
  } catch {
    return undefined;
  }
}

/** a ∩ w as one allowed_urls entry; null when they share no request; 'unknown' when no single pattern says it. */
function intersect(a: AllowedUrlSpec, w: AllowedUrlSpec): AllowedUrlSpec | null | 'unknown' {
  const methods = a.methods && w.methods ? a.methods.filter((m) => w.methods!.includes(m)) : (a.methods ?? w.methods);
  if (methods !== undefined && methods.length === 0) return null;
  const m = methods ? { methods } : {};
  if (a.url === w.url) return { url: a.url, ...m };
  for (const [exact, other] of [
    [a, w],
    [w, a],
  ]) {
    const path = exactPath(exact.url);
    if (path === undefined) continue;
    const hit = matches(other.url, path);
    if (hit === undefined) return 'unknown';
    return hit ? { url: exact.url, ...m } : null;
  }
  return 'unknown';
}

/**
 * A right on `apiId` limited by the API's converted white list: the allowed_urls to write,
 * 'none' when no request passes both (Tyk allowed nothing), undefined when the API has no
 * converted white list or the intersection cannot be written (reported: wider than in Tyk).
 * `allowed`: the right's own allowed_urls (undefined = the whole API); `own`: the same as Tyk reads them.
 */
export function withWhiteList(
  ctx: ImportContext,
  apiId: string,
  allowed: AllowedUrlSpec[] | undefined,
  own: TykAllowedUrl[],
  file: string,
  at: string,
  owner: RightsOwner,
): AllowedUrlSpec[] | 'none' | undefined {
  const wl = ctx.whiteLists.get(apiId);
  if (wl === undefined) return undefined;
  let result: AllowedUrlSpec[] = [];
  if (allowed === undefined) result = wl.allowed.map((w) => ({ ...w }));
  else
    for (const a of allowed)
      for (const w of wl.allowed) {
        const r = intersect(a, w);
        if (r === 'unknown') {
          ctx.report.drop(
            file,
            ptr(at, 'allowed_urls'),
            `API "${apiId}"'s white_list not applied to this ${owner.kind} (--convert-white-lists): its allowed_urls entry ${a.url} and the white_list entry ${w.url} do not intersect as one pattern; its keys reach paths the white list refused in Tyk (wider than in Tyk): narrow the allowed_urls by hand`,
            'wider',
          );
          return undefined;
        }
        if (r !== null && !result.some((x) => x.url === r.url && sameMethods(x.methods, r.methods))) result.push(r);
      }
  if (result.length === 0) {
    ctx.report.note(
      file,
      at,
      `no request passes both API "${apiId}"'s white_list and this right's allowed_urls (Tyk let none through): the API is not granted`,
    );
    return 'none';
  }
  ctx.limitedRights.push({ apiId, owner, own });
  return result;
}
