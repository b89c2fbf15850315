// The question `mtlsgate who` puts to the gateway's own stages (decide): one API, one method and
// path, at one moment, with the certificates given. Each candidate identity is asked with the
// credentials it holds; "gets through" is the API's answer without a refusal.
import type { Bundle, BundleApi } from '../bundle/types.ts';
import type { ClientIdentity } from '../runtime/identity.ts';
import type { Snapshot } from '../runtime/snapshot.ts';
import { decide, type Decision } from '../runtime/stages/decide.ts';
import type { GivenCert } from './given-certs.ts';

export interface WhoQuestion {
  bundle: Bundle;
  snapshot: Snapshot;
  apiId: string;
  api: BundleApi;
  method: string;
  host: string;
  path: string;
  /** No --path given: the question is the whole API, not its listen path alone. */
  wholeApi: boolean;
  now: number;
  certs: readonly GivenCert[];
  byFingerprint: ReadonlyMap<string, GivenCert>;
  /** The stages' decision for a request with these credentials. */
  ask(identity: ClientIdentity | null, tokenSha256?: string): Decision;
  /** The decision lets the request through to the API. */
  through(d: Decision): boolean;
  /** ask, then through. */
  passes(identity: ClientIdentity | null, tokenSha256?: string): boolean;
}

export function questionFor(
  bundle: Bundle,
  snapshot: Snapshot,
  apiId: string,
  opts: { method: string; path: string | null; now: number; certs: readonly GivenCert[] },
): WhoQuestion {
  // Own entries only: "constructor" or "toString" names no API (an inherited member is not one).
  const api = Object.hasOwn(bundle.content.apis, apiId) ? bundle.content.apis[apiId] : undefined;
  if (api === undefined) throw new Error(`no API "${apiId}" in the bundle (it has ${Object.keys(bundle.content.apis).sort().join(', ')})`);
  let path = api.listen_path;
  if (opts.path !== null)
    path = opts.path.startsWith(api.listen_path) || `${opts.path}/` === api.listen_path ? opts.path : api.listen_path + opts.path.replace(/^\//, '');
  const method = opts.method.toUpperCase();
  const host = api.domain ?? '';
  const { now, certs } = opts;
  const wholeApi = opts.path === null;
  const ask = (identity: ClientIdentity | null, tokenSha256?: string): Decision =>
    decide(snapshot, { method, host, path, ...(tokenSha256 ? { tokenSha256 } : {}) }, identity, now) as Decision;
  // Without --path the question is the whole API: a key refused only by its allowed_urls on
  // the listen path itself still reaches the API (on the paths those entries name).
  const through = (d: Decision) => d.api === apiId && (d.refusal === null || (wholeApi && d.refusal.code === 'access.url_denied'));
  return {
    bundle,
    snapshot,
    apiId,
    api,
    method,
    host,
    path,
    wholeApi,
    now,
    certs,
    byFingerprint: new Map(certs.map((c) => [c.identity.fingerprint, c])),
    ask,
    through,
    passes: (identity, tokenSha256) => through(ask(identity, tokenSha256)),
  };
}
