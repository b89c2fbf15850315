// `mtlsgate explain`: the gateway's decision for one request and each stage's verdict, in
// order. The verdicts are the stages' own (runtime/stages, run one by one on the context
// `decide` builds); the details beside them (which pin or CA, which key, which allowed_urls
// entry, which limits) are read from the bundle and the context the stages filled in.
import type { Bundle } from '../bundle/types.ts';
import { ERROR_TABLE, errorStatus, type Refusal } from '../runtime/errors.ts';
import type { ClientIdentity } from '../runtime/identity.ts';
import type { Snapshot } from '../runtime/snapshot.ts';
import type { RequestContext } from '../runtime/stages/context.ts';
import { contextFor, decide, type Decision } from '../runtime/stages/decide.ts';
import { STAGES } from '../runtime/stages/index.ts';
import { describe, type RequestSpec } from './request.ts';
import { tokenHeader } from './run.ts';
import { describeMatch, revocationOf } from './cert-rules.ts';
import { admittedBy } from './static-rules.ts';
import { oneLineName } from '../cert/subject.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { count } from '../common/count.ts';

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

const CERT_PROBLEMS: Record<string, string> = {
  'mtls.cert_expired': 'but it has expired',
  'mtls.cert_not_yet_valid': 'but it is not valid yet (notBefore)',
  'mtls.cert_not_client': 'but its extendedKeyUsage does not allow client authentication',
  'mtls.cert_key_too_large': 'but its key has more than 8,192 bits',
};

function certificateLine(identity: ClientIdentity): string {
  return `certificate ${fp(identity.fingerprint)} (${oneLineName(identity.leaf.subject)}, expires ${new Date(identity.notAfter).toISOString()})`;
}

function revocationDetail(ctx: RequestContext, bundle: Bundle, identity: ClientIdentity | null, verdict: Refusal | null): string {
  if (identity === null) return 'no client certificate';
  if (ctx.snapshot.revocation.empty) return 'the bundle revokes nothing';
  const r = bundle.content.revocation;
  if (verdict?.code === 'mtls.cert_revoked') {
    if (r.denied.includes(identity.fingerprint)) return `${certificateLine(identity)} is on the deny list`;
    const deniedCa = ctx.snapshot.revocation.deniedAbove(identity);
    if (deniedCa !== null) {
      const sent = identity.certificatesAbove().find((c) => fingerprintOf(c.raw) === deniedCa);
      const name = bundle.content.cas[deniedCa]?.subject ?? r.crl_issuers?.[deniedCa]?.subject ?? (sent && oneLineName(sent.subject));
      return `${certificateLine(identity)} was issued under CA ${fp(deniedCa)}${name === undefined ? '' : ` ("${name}")`}, which is on the deny list`;
    }
    const ca = ctx.snapshot.revocationCas().find((c) => r.crls[c.fingerprint]?.serials.includes(identity.serial()) && identity.signedBy(c));
    if (ca !== undefined)
      return `serial ${identity.serial()} is on the CRL of CA "${bundle.content.cas[ca.fingerprint]?.subject ?? r.crl_issuers?.[ca.fingerprint]?.subject}" (revocation ${r.crls[ca.fingerprint].sources.join(', ')})`;
    return `serial ${identity.serial()} is on a CRL the gateway fetched`;
  }
  if (verdict?.code === 'mtls.revocation_unknown') return 'a CRL for its CA is stale and --crl-stale is closed';
  const signer = ctx.snapshot.revocationCas().find((c) => identity.signedBy(c));
  return `not revoked (${revocationOf(bundle, signer?.fingerprint ?? null)})`;
}

function staticDetail(ctx: RequestContext, bundle: Bundle, identity: ClientIdentity | null, verdict: Refusal | null): string {
  const api = ctx.api!;
  if (!api.def.use_mutual_tls_auth) return 'the API does not use static mTLS';
  const pins = api.def.client_certificates.length;
  const cas = api.def.client_cas.map((f) => `"${bundle.content.cas[f]?.subject ?? fp(f)}"`);
  const entries = api.def.client_matches.length;
  const lists = `the API pins ${pins}, trusts ${count(cas.length, 'CA')} and has ${count(entries, 'subject entry', 'subject entries')}`;
  if (identity === null) return `no client certificate (${lists})`;
  const who = certificateLine(identity);
  const rule = admittedBy(bundle, api, identity, ctx.now);
  if (rule === null) {
    const subjects =
      entries > 0 ? `, nor do its ${entries} subject entries (${api.def.client_matches.map((m) => describeMatch(bundle, m)).join('; ')}) admit it` : '';
    return `${who}: not among the API's ${pins} pinned certificates, and none of its CAs (${cas.join(', ') || 'none'}) issued it${subjects}`;
  }
  const problem = verdict === null ? '' : `, ${CERT_PROBLEMS[verdict.code] ?? verdict.code}`;
  return `${who}: ${rule}${problem}`;
}

function authDetail(ctx: RequestContext, spec: RequestSpec, identity: ClientIdentity | null, header: string | null): string {
  const api = ctx.api!;
  if (api.def.use_keyless) return 'keyless API: no key';
  const byCert = (): string => {
    const key = ctx.key;
    const base = `certificate ${fp(identity!.fingerprint)}`;
    if (key === null || key.def.certificates.includes(identity!.fingerprint)) return `${base} (dynamic mTLS)`;
    if (key.def.certificate_match !== null)
      return `${base} (dynamic mTLS; its certificate_match: ${describeMatch(ctx.snapshot.bundle, key.def.certificate_match)})`;
    return `${base} (dynamic mTLS)`;
  };
  const by =
    spec.asKey !== null
      ? `the token of key "${spec.asKey}" (as_key: its token_sha256)`
      : spec.token !== null
        ? `the token in ${header}`
        : identity !== null && api.def.use_certificate
          ? byCert()
          : 'no token';
  if (ctx.key === null) return `credential: ${by}`;
  const bound = ctx.key.def.certificates.length > 0 ? `; bound to ${ctx.key.def.certificates.map(fp).join(', ')}` : '';
  const matched =
    ctx.key.def.certificate_match !== null && !by.includes('certificate_match')
      ? `; identified by subject: ${describeMatch(ctx.snapshot.bundle, ctx.key.def.certificate_match)}`
      : '';
  return `key "${ctx.key.id}", identified by ${by}${bound}${matched}`;
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
      case 'revocation':
        detail = revocationDetail(ctx, bundle, identity, passed ? null : verdict);
        skipped = identity === null || ctx.snapshot.revocation.empty;
        break;
      case 'static-mtls':
        detail = staticDetail(ctx, bundle, identity, passed ? null : verdict);
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
  // The loop above runs the stages one by one to show each verdict; the gateway's own runner
  // (decide) must come to the same answer, or explain would be explaining something else.
  const runtime = decide(snapshot, req, identity, now) as Decision;
  if ((runtime.refusal?.code ?? null) !== (refused?.code ?? null) || runtime.key !== (ctx.key?.id ?? null))
    throw new Error(`internal error: explain's stage-by-stage answer differs from the gateway's (${runtime.refusal?.code ?? 'let through'}); please report it`);
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
