// The proof of each converted white list (white-lists.ts): a `kind: test` document,
// tests/white-list-<api>.yaml, whose cases send the white list's paths (and the rights' own
// allowed_urls paths, and one path neither lists) with the methods they name and one they do
// not, as a key each converted right reaches, and expect Tyk's answer. The expectation is
// computed from the Tyk definitions as Tyk reads them (its regexes on the path after the listen
// path and on the whole path), never from the converted allowed_urls: `mtlsgate check` on the
// output (which the import runs) then shows whether mtlsgate's own stages decide the same.
import { stringify } from 'yaml';
import type { KeySpec, TestSpec } from '../compiler/model.ts';
import type { ImportContext, Imported } from './context.ts';
import { tykPathRegex } from './url-patterns.ts';
import type { ConvertedWhiteList, LimitedRight } from './white-lists.ts';
import type { OutFile } from './yaml-out.ts';

/** Past this many cases per API the rest are left out (the document says so). */
const MAX_CASES = 60;
const OTHER_METHODS = ['DELETE', 'PATCH', 'PUT', 'POST', 'GET'];
/** A path no Tyk definition names, for the case of a path outside the lists. */
const UNLISTED = '/tyk-import-unlisted-path';

/** A request path a Tyk pattern matches, when the pattern is a plain path or mux template; else undefined. */
function samplePath(pattern: string): string | undefined {
  const p = pattern
    .replace(/^\^/, '')
    .replace(/\$$/, '')
    .replace(/{[^}]+}/g, 'x1')
    .replaceAll('/*/', '/x1/')
    .replace(/\/\*$/, '/x1');
  if (!/^\/?[A-Za-z0-9._~/-]*$/.test(p)) return undefined;
  return p.startsWith('/') ? p : `/${p}`;
}

/**
 * Whether Tyk lets `method fullPath` through the white list and the right's own allowed_urls
 * (see white-lists.ts); undefined when a pattern is not a regex JavaScript reads (Go's syntax
 * differs in corners): no case is written for it.
 */
function tykLetsThrough(ctx: ImportContext, wl: ConvertedWhiteList, right: LimitedRight, method: string, fullPath: string): boolean | undefined {
  const lp = wl.api.proxy.listen_path.replace(/\/+$/, '');
  const rest = fullPath.startsWith(`${lp}/`) ? fullPath.slice(lp.length) : fullPath === lp ? '/' : fullPath;
  const test = (pattern: string, paths: string[]) => {
    const re = new RegExp(tykPathRegex(pattern, ctx.pathMatching));
    return paths.some((p) => re.test(p));
  };
  try {
    // Endpoint lists: matched on the path after the listen path, then on the whole path.
    const listed = wl.endpoints.some((e) => test(e.path, [rest, fullPath]) && (e.methods === null || e.methods.includes(method)));
    // allowed_urls: on the whole path (with prefix matching, also after the listen path).
    const own =
      right.own.length === 0 || right.own.some((u) => test(u.url, ctx.pathMatching.prefix ? [rest, fullPath] : [fullPath]) && u.methods.includes(method));
    return listed && own;
  } catch {
    return undefined;
  }
}

/** An imported key whose rights on the API come from this right alone and that a test can name by token. */
function keyFor(ctx: ImportContext, right: LimitedRight): Imported<KeySpec> | undefined {
  const grants = (policyId: string) => ctx.policies.some((p) => p.spec.id === policyId && p.spec.access_rights?.[right.apiId] !== undefined);
  return ctx.keys.find(({ spec, disabledBecause }) => {
    if (disabledBecause !== undefined || !spec.token_sha256 || spec.is_inactive || spec.certificate) return false;
    if (right.owner.kind === 'key') return spec.id === right.owner.id && spec.apply_policies === undefined;
    const applied = spec.apply_policies ?? [];
    return applied.includes(right.owner.id) && spec.access_rights === undefined && applied.filter(grants).length === 1;
  });
}

/** The requests to try: each listed path with its methods and one it does not name, and a path nobody lists. */
function requests(wl: ConvertedWhiteList, right: LimitedRight): { method: string; path: string }[] {
  const lp = wl.api.proxy.listen_path.replace(/\/+$/, '');
  const out: { method: string; path: string }[] = [];
  const add = (pattern: string, methods: string[] | null) => {
    const sample = samplePath(pattern);
    if (sample === undefined) return;
    const path = sample === lp || sample.startsWith(`${lp}/`) ? sample : `${lp}${sample}`;
    const named = methods ?? ['GET'];
    const other = OTHER_METHODS.find((m) => !named.includes(m))!;
    for (const method of [...named, other]) if (!out.some((r) => r.method === method && r.path === path)) out.push({ method, path });
  };
  for (const e of wl.endpoints) add(e.path, e.methods);
  for (const u of right.own) add(u.url, u.methods);
  add(UNLISTED, ['GET']);
  return out;
}

export function whiteListTests(ctx: ImportContext): OutFile[] {
  const files: OutFile[] = [];
  for (const wl of ctx.whiteLists.values()) {
    const api = wl.api;
    const cases: TestSpec['cases'] = [];
    const untested: string[] = [];
    if (api.use_mutual_tls_auth || api.auth?.use_certificate) untested.push('the API needs a client certificate, which the import does not have');
    else
      for (const right of ctx.limitedRights.filter((r) => r.apiId === api.id)) {
        const key = keyFor(ctx, right);
        if (key === undefined) {
          untested.push(`${right.owner.kind} ${right.owner.id}: no imported key with a token gets its rights on this API from it alone`);
          continue;
        }
        // Decided an hour before a key's expiry: the test is about paths, not about when it runs.
        const at = key.spec.expires ? new Date(Date.parse(key.spec.expires) - 3_600_000).toISOString() : undefined;
        for (const { method, path } of requests(wl, right)) {
          const through = tykLetsThrough(ctx, wl, right, method, path);
          if (through === undefined) continue;
          const url = api.domain ? `https://${api.domain}${path}` : path;
          cases.push({
            name: `${method} ${path} as key ${key.spec.id} (${right.owner.kind} ${right.owner.id}): Tyk ${through ? 'lets it through' : 'refuses it'}`,
            request: { method, url, as_key: key.spec.id, ...(at ? { at } : {}) },
            expect: through ? { status: 200, key: key.spec.id } : { status: 403, code: 'access.url_denied' },
          });
        }
      }
    const kept = cases.slice(0, MAX_CASES);
    const header = [
      `# Generated by \`mtlsgate import tyk --convert-white-lists\`: API "${api.id}"'s Tyk white_list, now allowed_urls.`,
      "# Each case expects the answer Tyk gives (computed from the Tyk definitions); check and test run them against mtlsgate's stages.",
      ...(cases.length > MAX_CASES ? [`# ${cases.length - MAX_CASES} more cases left out (at most ${MAX_CASES}).`] : []),
      ...untested.map((u) => `# Not tested: ${u}.`),
    ];
    if (kept.length === 0) {
      ctx.report.note(
        wl.file,
        wl.pointer,
        `no access test written for API "${api.id}"'s converted white_list: ${untested.join('; ') || 'no right carries it'}`,
      );
      continue;
    }
    const spec: TestSpec = { kind: 'test', id: `tyk-white-list-${api.id}`, cases: kept };
    files.push({ path: `tests/white-list-${api.id}.yaml`, text: `${header.join('\n')}\n${stringify(spec, { lineWidth: 0 })}` });
  }
  return files;
}
