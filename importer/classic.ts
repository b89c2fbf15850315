// Tyk classic API definitions (the JSON of /tyk/apis, apps/*.json, or a Dashboard export's
// api_definition) as kind: api. Mapped: api_id, name, proxy.listen_path / strip_listen_path /
// target_url, domain, use_keyless, use_standard_auth, auth_configs.authToken (auth_header_name,
// use_certificate), strip_auth_data, use_mutual_tls_auth + client_certificates. Everything else
// that is set is reported.
import type { ApiSpec } from '../compiler/model.ts';
import { clientCertificates, domain, listenPath, upstreamTarget } from './api-parts.ts';
import type { ImportContext } from './context.ts';
import { skipDuplicateApi } from './duplicates.ts';
import { reportLeftovers } from './leftovers.ts';
import { reportPathLists } from './path-lists.ts';
import { takeWhiteList } from './white-lists.ts';
import { FatalImportError, ptr } from './report.ts';
import { bool, isObject, isUnset, obj, str, type JsonObject } from './values.ts';

const HANDLED = new Set([
  'api_id',
  'name',
  'proxy',
  'domain',
  'domain_disabled',
  'use_keyless',
  'use_standard_auth',
  'auth',
  'auth_configs',
  'strip_auth_data',
  'use_mutual_tls_auth',
  'client_certificates',
  'active',
  'definition',
  'version_data',
  'cache_options',
]);

/** Tyk bookkeeping (ids, timestamps) and values no request sees. */
const SILENT = new Set([
  'id',
  '_id',
  'org_id',
  'slug',
  'is_oas',
  'last_updated',
  'base_identity_provided_by',
  'security_requirements',
  'security_requirement_scopes',
  'idp_client_id_mapping_disabled',
  'session_lifetime_respects_key_expiration',
  'dont_set_quota_on_create',
  'expire_analytics_after',
  'tags_disabled',
  'config_data_disabled',
  'upstream_certificates_disabled',
  'certificate_pinning_disabled',
  'custom_middleware_bundle_disabled',
  'ip_access_control_disabled',
  'global_size_limit_disabled',
  'error_overrides_disabled',
  'auth_provider',
  'session_provider',
]);

/** Settings of an auth mode: reported through the mode's own flag only. */
const MODE_SETTINGS: [flag: string, fields: string[]][] = [
  [
    'enable_jwt',
    [
      'jwt_signing_method',
      'jwt_source',
      'jwt_jwks_uris',
      'jwt_identity_base_field',
      'jwt_client_base_field',
      'jwt_policy_field_name',
      'jwt_default_policies',
      'jwt_issued_at_validation_skew',
      'jwt_expires_at_validation_skew',
      'jwt_not_before_validation_skew',
      'jwt_skip_kid',
      'jwt_scope_to_policy_mapping',
      'jwt_scope_claim_name',
      'scopes',
    ],
  ],
  ['enable_signature_checking', ['hmac_allowed_clock_skew', 'hmac_allowed_algorithms', 'request_signing']],
  ['use_basic_auth', ['basic_auth']],
  ['use_oauth2', ['oauth_meta', 'notifications']],
  ['use_openid', ['openid_options']],
];

const AUTH_TOKEN_HANDLED = new Set(['name', 'auth_header_name', 'use_certificate']);

export function isClassicApi(o: JsonObject): boolean {
  return isObject(o.proxy) && !('x-tyk-api-gateway' in o);
}

/** Versions: one unnamed default version with nothing in it is what an unversioned API exports. */
function reportVersions(ctx: ImportContext, spec: ApiSpec, def: JsonObject, file: string, base: string): void {
  const vd = obj(def.version_data);
  const versions = obj(vd.versions);
  const notVersioned = vd.not_versioned !== false;
  const definition = obj(def.definition);
  if (!notVersioned || definition.enabled === true) {
    ctx.report.drop(
      file,
      ptr(base, 'version_data'),
      `version_data not converted: API versions are not supported; only the listen path and target are imported`,
      'wider',
    );
    return;
  }
  const only = Object.keys(versions).length === 1;
  for (const [name, raw] of Object.entries(versions)) {
    const v = obj(raw);
    const at = ptr(base, 'version_data', 'versions', name);
    reportLeftovers(ctx.report, file, at, v, new Set(['name', 'use_extended_paths', 'expires', 'extended_paths', 'paths']));
    // Tyk applies extended_paths when use_extended_paths is true, else the older paths: the other had no effect.
    const lists = bool(v.use_extended_paths) ? 'extended_paths' : 'paths';
    const converted = takeWhiteList(ctx, spec, file, at, v, only) ? 'white_list' : undefined;
    reportPathLists(ctx.report, file, ptr(at, lists), obj(v[lists]), converted);
    const expires = str(v.expires);
    // Tyk's samples expire in the year 3000: a date a century away narrows nothing a migration cares about.
    const year = Number(/^(\d{4})-/.exec(expires ?? '')?.[1]);
    const far = year >= new Date().getUTCFullYear() + 100;
    if (expires)
      ctx.report.drop(
        file,
        ptr(at, 'expires'),
        `expires not converted: API version expiry is not supported${far ? ' (a century away or more)' : ''}`,
        far ? undefined : 'wider',
      );
  }
}

export function convertClassic(ctx: ImportContext, def: JsonObject, file: string, base: string): void {
  const idField = str(def.api_id) ? 'api_id' : str(def.slug) ? 'slug' : 'name';
  const tykId = str(def[idField]);
  if (!tykId) throw new FatalImportError(file, base, 'API definition has no api_id');
  if (skipDuplicateApi(ctx, tykId, file, ptr(base, idField), def, 'classic')) return;
  const id = ctx.apiIds.add(tykId, file, ptr(base, 'api_id'));
  if (id !== tykId) ctx.report.note(file, ptr(base, 'api_id'), `API ${JSON.stringify(tykId)} is "${id}" in mtlsgate`);
  const proxy = obj(def.proxy);
  const spec: ApiSpec = {
    kind: 'api',
    id,
    ...(str(def.name) ? { name: str(def.name) } : {}),
    proxy: {
      listen_path: listenPath(str(proxy.listen_path), file, ptr(base, 'proxy', 'listen_path')),
      ...upstreamTarget(str(proxy.target_url), file, ptr(base, 'proxy', 'target_url')),
      strip_listen_path: bool(proxy.strip_listen_path),
    },
  };
  reportLeftovers(ctx.report, file, ptr(base, 'proxy'), proxy, new Set(['listen_path', 'target_url', 'strip_listen_path']));
  if (!bool(def.domain_disabled)) {
    const d = domain(str(def.domain), file, ptr(base, 'domain'));
    if (d) spec.domain = d;
  }

  const keyless = bool(def.use_keyless);
  const authToken = obj(obj(def.auth_configs).authToken);
  if (keyless) spec.use_keyless = true;
  else {
    spec.use_standard_auth = true;
    const header = str(authToken.auth_header_name) || str(obj(def.auth).auth_header_name);
    spec.auth = {};
    if (header && header !== 'Authorization') spec.auth.auth_header_name = header;
    if (bool(authToken.use_certificate)) spec.auth.use_certificate = true;
    if (Object.keys(spec.auth).length === 0) delete spec.auth;
    const at = ptr(base, 'auth_configs', 'authToken');
    for (const f of ['use_param', 'use_cookie']) {
      if (bool(authToken[f])) ctx.report.drop(file, ptr(at, f), `${f} not converted: mtlsgate reads the token from the auth header only`);
    }
    if (bool(authToken.disable_header)) ctx.report.drop(file, ptr(at, 'disable_header'), 'disable_header not converted: mtlsgate always reads the auth header');
    if (bool(authToken.validate_signature))
      ctx.report.drop(file, ptr(at, 'validate_signature'), 'validate_signature not converted: token signatures are not supported', 'wider');
  }
  if (keyless && bool(authToken.use_certificate))
    ctx.report.drop(file, ptr(base, 'auth_configs', 'authToken', 'use_certificate'), 'use_certificate not converted: Tyk ignores it on a keyless API');

  if (bool(def.use_mutual_tls_auth)) {
    spec.use_mutual_tls_auth = true;
    spec.client_certificates = clientCertificates(ctx, def.client_certificates, file, ptr(base, 'client_certificates'));
  } else if (!isUnset(def.client_certificates)) {
    ctx.report.drop(file, ptr(base, 'client_certificates'), 'client_certificates not converted: use_mutual_tls_auth is off, so Tyk does not check them');
  }
  if (bool(def.strip_auth_data)) spec.strip_auth_data = true;
  if (def.active === false)
    ctx.report.note(
      file,
      ptr(base, 'active'),
      'the API is inactive in Tyk (active: false); mtlsgate serves every API it is given: leave the file out to keep it off',
    );
  if (bool(obj(def.cache_options).cache_all_safe_requests))
    ctx.report.drop(file, ptr(base, 'cache_options'), 'cache_options not converted: response caching is not supported');
  reportVersions(ctx, spec, def, file, base);

  // A mode's settings go with its flag: the flag's drop (when on) says the whole mode is gone.
  const silent = new Set(SILENT);
  for (const [, fields] of MODE_SETTINGS) for (const f of fields) silent.add(f);
  // Uptime tests run only for listed hosts; an empty check_list with config defaults does nothing.
  if (isUnset(obj(def.uptime_tests).check_list)) silent.add('uptime_tests');
  reportLeftovers(ctx.report, file, base, def, HANDLED, silent);
  // Other auth_configs entries configure modes reported through their flags above.
  reportLeftovers(
    ctx.report,
    file,
    ptr(base, 'auth_configs', 'authToken'),
    authToken,
    AUTH_TOKEN_HANDLED,
    new Set(['use_param', 'use_cookie', 'disable_header', 'validate_signature', 'param_name', 'cookie_name', 'signature']),
  );

  ctx.apis.set(tykId, { spec, file, pointer: base, origin: `Tyk classic API definition ${JSON.stringify(str(def.name) ?? tykId)} (api_id ${tykId})` });
}
