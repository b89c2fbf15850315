// Tyk OAS API definitions: an OpenAPI 3 document with the `x-tyk-api-gateway` extension.
// Mapped: info.id / info.name, upstream.url, server.listenPath (value, strip),
// server.customDomain, server.authentication (enabled, stripAuthorizationData, the token
// security scheme: header name from components.securitySchemes, enableClientCertificate,
// and certificateAuth.enabled), server.clientCertificates (enabled, allowlist). Everything else
// set under x-tyk-api-gateway is reported.
import type { ApiSpec } from '../compiler/model.ts';
import { clientCertificates, domain, listenPath, upstreamTarget } from './api-parts.ts';
import type { ImportContext } from './context.ts';
import { skipDuplicateApi } from './duplicates.ts';
import { reportLeftovers } from './leftovers.ts';
import { FatalImportError, ptr } from './report.ts';
import { bool, isObject, isUnset, obj, str, type JsonObject } from './values.ts';

const X = 'x-tyk-api-gateway';

export function isOasApi(o: JsonObject): boolean {
  return isObject(o[X]);
}

/** Scheme kind from the OpenAPI side (apiKey = Tyk's auth token), or from the Tyk side's shape. */
function schemeKind(doc: JsonObject, name: string, tyk: JsonObject): string {
  const native = obj(obj(obj(doc.components).securitySchemes)[name]);
  if (native.type === 'apiKey') return 'token';
  if (native.type === 'http')
    return native.scheme === 'basic' ? 'basic auth' : native.bearerFormat === 'JWT' || 'source' in tyk ? 'JWT' : `http ${str(native.scheme) ?? ''}`.trim();
  if (native.type === 'oauth2') return 'OAuth 2.0';
  if (native.type === 'openIdConnect') return 'OpenID Connect';
  if (native.type === 'mutualTLS') return 'mutualTLS';
  if ('header' in tyk || 'query' in tyk || 'cookie' in tyk || 'enableClientCertificate' in tyk) return 'token';
  return 'unknown';
}

function convertAuth(ctx: ImportContext, doc: JsonObject, spec: ApiSpec, file: string, base: string): void {
  const auth = obj(obj(obj(doc[X]).server).authentication);
  if (!bool(auth.enabled)) {
    spec.use_keyless = true;
    if (!isUnset(auth.securitySchemes)) ctx.report.note(file, base, 'authentication is off: the API is keyless; its security schemes are not used');
    return;
  }
  spec.use_standard_auth = true;
  spec.auth = {};
  const schemes = obj(auth.securitySchemes);
  const natives = obj(obj(doc.components).securitySchemes);
  let token: string | undefined;
  for (const [name, raw] of Object.entries(schemes)) {
    const s = obj(raw);
    const at = ptr(base, 'securitySchemes', name);
    if (!bool(s.enabled)) continue;
    const kind = schemeKind(doc, name, s);
    if (kind !== 'token') {
      ctx.report.drop(
        file,
        at,
        `security scheme "${name}" (${kind}) not converted: only token (apiKey) authentication is supported; the API is imported with token auth, so its clients need mtlsgate keys`,
      );
      continue;
    }
    if (token !== undefined) {
      ctx.report.drop(file, at, `security scheme "${name}" not converted: mtlsgate reads one token header per API (using "${token}")`);
      continue;
    }
    token = name;
    const native = obj(natives[name]);
    const header = native.in === 'header' ? str(native.name) : bool(obj(s.header).enabled) ? str(obj(s.header).name) : undefined;
    if (header && header.toLowerCase() !== 'authorization') spec.auth.auth_header_name = header;
    if (native.in === 'query' || native.in === 'cookie')
      ctx.report.drop(file, `/components/securitySchemes/${name}/in`, `a token in the ${native.in} not converted: mtlsgate reads the token from a header`);
    for (const f of ['query', 'cookie'])
      if (bool(obj(s[f]).enabled)) ctx.report.drop(file, ptr(at, f), `${f} not converted: mtlsgate reads the token from a header`);
    if (bool(obj(s.signatureValidation).enabled))
      ctx.report.drop(file, ptr(at, 'signatureValidation'), 'signatureValidation not converted: token signatures are not supported', 'wider');
    // Tyk's old contract: enableClientCertificate counts only when certificateAuth is absent.
    if (bool(s.enableClientCertificate) && !isObject(auth.certificateAuth)) spec.auth.use_certificate = true;
  }
  if (isObject(auth.certificateAuth) && bool(auth.certificateAuth.enabled)) spec.auth.use_certificate = true;
  if (token === undefined && !spec.auth.use_certificate)
    ctx.report.note(file, ptr(base, 'securitySchemes'), 'no token security scheme is enabled: the API is imported with token auth');
  if (Object.keys(spec.auth).length === 0) delete spec.auth;
  if (bool(auth.stripAuthorizationData)) spec.strip_auth_data = true;
  reportLeftovers(
    ctx.report,
    file,
    base,
    auth,
    new Set(['enabled', 'stripAuthorizationData', 'securitySchemes', 'certificateAuth']),
    new Set(['baseIdentityProvider', 'securityProcessingMode']),
  );
}

/** `docPointer`: where the OAS document is in its file ("" or a Dashboard export's "/oas"); the report's pointers are the document's own. */
export function convertOas(ctx: ImportContext, doc: JsonObject, file: string, docPointer = ''): void {
  const x = obj(doc[X]);
  const base = `/${X}`;
  const info = obj(x.info);
  const server = obj(x.server);
  const upstream = obj(x.upstream);
  const tykId = str(info.id) || str(info.name) || str(obj(doc.info).title);
  if (!tykId) throw new FatalImportError(file, ptr(base, 'info', 'id'), 'Tyk OAS API definition has no info.id');
  const idAt = ptr(base, 'info', 'id');
  if (skipDuplicateApi(ctx, tykId, file, docPointer + (str(info.id) ? idAt : str(info.name) ? ptr(base, 'info', 'name') : '/info/title'), doc, 'oas')) return;
  const id = ctx.apiIds.add(tykId, file, idAt);
  if (id !== tykId) ctx.report.note(file, idAt, `API ${JSON.stringify(tykId)} is "${id}" in mtlsgate`);
  const name = str(info.name) || str(obj(doc.info).title);
  const lp = obj(server.listenPath);
  const spec: ApiSpec = {
    kind: 'api',
    id,
    ...(name ? { name } : {}),
    proxy: {
      listen_path: listenPath(str(lp.value), file, ptr(base, 'server', 'listenPath', 'value')),
      ...upstreamTarget(str(upstream.url), file, ptr(base, 'upstream', 'url')),
      strip_listen_path: bool(lp.strip),
    },
  };
  const cd = obj(server.customDomain);
  if (bool(cd.enabled)) {
    const d = domain(str(cd.name), file, ptr(base, 'server', 'customDomain', 'name'));
    if (d) spec.domain = d;
    reportLeftovers(ctx.report, file, ptr(base, 'server', 'customDomain'), cd, new Set(['enabled', 'name']));
  }
  convertAuth(ctx, doc, spec, file, ptr(base, 'server', 'authentication'));
  const cc = obj(server.clientCertificates);
  if (bool(cc.enabled)) {
    spec.use_mutual_tls_auth = true;
    spec.client_certificates = clientCertificates(ctx, cc.allowlist, file, ptr(base, 'server', 'clientCertificates', 'allowlist'));
  }

  const state = obj(info.state);
  if (state.active === false)
    ctx.report.note(
      file,
      ptr(base, 'info', 'state', 'active'),
      'the API is inactive in Tyk (active: false); mtlsgate serves every API it is given: leave the file out to keep it off',
    );
  if (bool(state.internal))
    ctx.report.drop(
      file,
      ptr(base, 'info', 'state', 'internal'),
      'internal not converted: internal (looping-only) APIs are not supported: the API is reachable from outside in mtlsgate',
      'wider',
    );
  reportLeftovers(ctx.report, file, ptr(base, 'info'), info, new Set(['id', 'name', 'state']), new Set(['dbId', 'orgId']));
  reportLeftovers(ctx.report, file, ptr(base, 'upstream'), upstream, new Set(['url']));
  reportLeftovers(
    ctx.report,
    file,
    ptr(base, 'server'),
    server,
    new Set(['listenPath', 'customDomain', 'authentication', 'clientCertificates']),
    new Set(['slug']),
  );
  reportLeftovers(ctx.report, file, ptr(base, 'server', 'listenPath'), lp, new Set(['value', 'strip']));
  // Middleware, one line per global setting and per operation setting.
  const middleware = obj(x.middleware);
  reportLeftovers(ctx.report, file, ptr(base, 'middleware', 'global'), obj(middleware.global), new Set());
  for (const [op, settings] of Object.entries(obj(middleware.operations)))
    reportLeftovers(ctx.report, file, ptr(base, 'middleware', 'operations', op), obj(settings), new Set());
  reportLeftovers(ctx.report, file, base, x, new Set(['info', 'upstream', 'server', 'middleware']));

  ctx.apis.set(tykId, { spec, file, pointer: base, origin: `Tyk OAS API definition ${JSON.stringify(name ?? tykId)} (x-tyk-api-gateway.info.id ${tykId})` });
}
