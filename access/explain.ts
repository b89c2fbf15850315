// `mtlsgate explain`: the gateway's decision for one request and each stage's verdict, in
// order. The verdicts are the stages' own (runtime/stages, run one by one on the context
// `decide` builds); the details beside them (which pin or CA, which key, which allowed_urls
// entry, which limits) are read from the bundle and the context the stages filled in.
import type { Bundle } from '../bundle/types.ts';
import { ERROR_TABLE, errorStatus, type Refusal } from '../runtime/errors.ts';
import type { ClientIdentity } from '../runtime/identity.ts';
import type { Snapshot } from '../runtime/snapshot.ts';
import type { RequestContext } from '../runtime/stages/context.ts';
import { contextFor } from '../runtime/stages/decide.ts';
import { STAGES } from '../runtime/stages/index.ts';
import { describe, type RequestSpec } from './request.ts';
import { tokenHeader } from './run.ts';

export type StageOutcome = 'pass' | 'refuse' | 'skip' | 'not reached';

export interface StageReport {
  stage: string;
  outcome: StageOutcome;
  /** The refusal's code, when this stage refused. */
  code: string | null;
  detail: string;
}

export interface Explanation {
  method: string;
  url: string;
  status: number;
  code: string | null;
  message: string | null;
  api: string | null;
  key: string | null;
  stages: StageReport[];
}

const messageOf = (r: Refusal) => r.message ?? ERROR_TABLE.find((row) => row.code === r.code)?.message ?? '';
const fp = (hex: string) => `sha256:${hex}`;

function routeDetail(ctx: RequestContext, passed: boolean, bundle: Bundle): string {
  if (!passed) return `no API answers on host ${ctx.host || '(any)'} and path ${ctx.rawPath}`;
  const api = bundle.content.apis[ctx.api!.id];
  return `API "${api.id}" (listen_path ${api.listen_path}, domain ${api.domain ?? 'any'}); path ${ctx.path}`;
}

function staticDetail(ctx: RequestContext, bundle: Bundle, identity: ClientIdentity | null, passed: boolean): string {
  const api = ctx.api!;
  if (!api.def.use_mutual_tls_auth) return 'the API does not use static mTLS';
  const pins = api.def.client_certificates.length;
  const cas = api.def.client_cas.map((f) => `"${bundle.content.cas[f]?.subject ?? fp(f)}"`);
  if (identity === null) return `no client certificate (the API pins ${pins} and trusts ${cas.length} CA${cas.length === 1 ? '' : 's'})`;
  const who = `certificate ${fp(identity.fingerprint)} (${identity.leaf.subject.split('\n').join(', ')}, expires ${new Date(identity.notAfter).toISOString()})`;
  if (api.pinned.has(identity.fingerprint)) return `${who}: pinned on the API${passed ? '' : ', but expired'}`;
  const ca = api.cas.find((c) => identity.issuedBy(c, ctx.now));
  if (ca !== undefined)
    return `${who}: issued by the API's CA "${bundle.content.cas[ca.fingerprint]?.subject ?? fp(ca.fingerprint)}"${passed ? '' : ', but expired'}`;
  return `${who}: not among the API's ${pins} pinned certificates, and none of its CAs (${cas.join(', ') || 'none'}) issued it`;
}

function authDetail(ctx: RequestContext, spec: RequestSpec, identity: ClientIdentity | null, header: string | null): string {
  const api = ctx.api!;
  if (api.def.use_keyless) return 'keyless API: no key';
  const by =
    spec.asKey !== null
      ? `the token of key "${spec.asKey}" (as_key: its token_sha256)`
      : spec.token !== null
        ? `the token in ${header}`
        : identity !== null && api.def.use_certificate
          ? `certificate ${fp(identity.fingerprint)} (dynamic mTLS)`
          : 'no token';
  if (ctx.key === null) return `credential: ${by}`;
  return `key "${ctx.key.id}", identified by ${by}${ctx.key.def.certificates.length > 0 ? `; bound to ${ctx.key.def.certificates.map(fp).join(', ')}` : ''}`;
}

function keyStateDetail(ctx: RequestContext): string {
  const key = ctx.key;
  if (key === null) return 'no key';
  const exp = key.def.expires === null ? 'never expires' : `expires ${key.def.expires}`;
  return `${exp}; ${key.def.is_inactive ? 'inactive' : 'active'} (decided at ${new Date(ctx.now).toISOString()})`;
}

function accessDetail(ctx: RequestContext, passed: boolean): string {
  const key = ctx.key;
  if (key === null) return 'no key: keyless API';
  const api = ctx.api!;
  const from = key.def.policies.length > 0 ? ` (rights merged from policies ${key.def.policies.join(', ')} and the key)` : '';
  const urls = key.rights.get(api.id);
  if (urls === undefined) return `key "${key.id}" has no access right on API "${api.id}"${from}`;
  if (urls === null) return `access right on API "${api.id}": the whole API${from}`;
  const rest = ctx.path.length > api.restStart ? ctx.path.slice(api.restStart) : '/';
  const entries = key.def.access_rights[api.id]?.allowed_urls ?? [];
  const methods = (m: string[]) => (m.length === 0 ? 'any method' : m.join(','));
  if (!passed)
    return `${ctx.method} ${rest} matches none of the ${entries.length} allowed_urls entries: ${entries.map((e) => `${e.url} [${methods(e.methods)}]`).join('; ')}${from}`;
  const i = urls.findIndex((u) => (u.methods === null || u.methods.has(ctx.method)) && u.pattern.test(rest));
  const e = entries[i];
  return `allowed_urls entry ${e ? `${e.url} [${methods(e.methods)}]` : `#${i + 1}`} matches ${ctx.method} ${rest}${from}`;
}

function limitsDetail(ctx: RequestContext): string {
  const key = ctx.key;
  if (key === null) return 'no key: no limits';
  const { rate, quota } = key.def;
  if (rate === null && quota === null) return `key "${key.id}" has no rate limit or quota`;
  const parts = [rate ? `rate ${rate.rate} per ${rate.per} s` : 'no rate limit', quota ? `quota ${quota.max} per ${quota.renewal} s` : 'no quota'];
  return `${parts.join(', ')} (explain counts nothing: whether this request is within them depends on the live counters)`;
}

export function explainRequest(
  bundle: Bundle,
  snapshot: Snapshot,
  spec: RequestSpec,
  identity: ClientIdentity | null,
  now: number,
): Explanation | { problem: string } {
  const header = tokenHeader(bundle, snapshot, spec, identity, now);
  const req = describe(bundle, spec, header);
  if ('problem' in req) return req;
  const ctx = contextFor(snapshot, req, identity, now);
  const stages: StageReport[] = [];
  let refused: Refusal | null = null;
  for (const stage of STAGES) {
    if (refused !== null) {
      stages.push({ stage: stage.name, outcome: 'not reached', code: null, detail: '' });
      continue;
    }
    const verdict = stage.run(ctx);
    if (verdict instanceof Promise) throw new Error('a stage answered asynchronously without a limiter');
    const passed = verdict === null;
    if (!passed) refused = verdict;
    let detail: string;
    let skipped = false;
    switch (stage.name) {
      case 'route':
        detail = routeDetail(ctx, passed, bundle);
        break;
      case 'static-mtls':
        detail = staticDetail(ctx, bundle, identity, passed);
        skipped = !ctx.api!.def.use_mutual_tls_auth;
        break;
      case 'authenticate':
        detail = authDetail(ctx, spec, identity, header);
        skipped = ctx.api!.def.use_keyless;
        break;
      case 'key-state':
        detail = keyStateDetail(ctx);
        skipped = ctx.key === null;
        break;
      case 'access':
        detail = accessDetail(ctx, passed);
        skipped = ctx.key === null;
        break;
      case 'limits':
        detail = limitsDetail(ctx);
        skipped = ctx.key === null;
        break;
      default:
        detail = '';
    }
    if (!passed) detail = `${JSON.stringify(messageOf(verdict))}${detail ? `; ${detail}` : ''}`;
    stages.push({ stage: stage.name, outcome: passed ? (skipped ? 'skip' : 'pass') : 'refuse', code: verdict?.code ?? null, detail });
  }
  return {
    method: ctx.method,
    url: spec.url,
    status: refused === null ? 200 : errorStatus(refused.code),
    code: refused?.code ?? null,
    message: refused === null ? null : messageOf(refused),
    api: ctx.api?.id ?? null,
    key: ctx.key?.id ?? null,
    stages,
  };
}

export function formatExplanation(e: Explanation, bundle: Bundle): string {
  const answer =
    e.code === null
      ? `${e.status}: every stage let it through; the gateway proxies it to ${bundle.content.apis[e.api!].target_url}`
      : `${e.status} ${e.code}: ${JSON.stringify(e.message)}`;
  const width = Math.max(...e.stages.map((s) => s.stage.length));
  const lines = [`${e.method} ${e.url} -> ${answer}`];
  for (const s of e.stages) lines.push(`  ${s.stage.padEnd(width)}  ${s.outcome.padEnd(11)}${s.code ? ` ${s.code}:` : ''} ${s.detail}`.trimEnd());
  return `${lines.join('\n')}\n`;
}
