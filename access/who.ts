// `mtlsgate who`: every identity that gets through to an API (and path) in a bundle. Each
// candidate is put to the gateway's own stages (decide) with the credentials it holds: a key's
// certificate, its token (stated by token_sha256), both, or its token behind one of the API's
// pinned certificates. Certificates are known to the bundle by fingerprint only; `--certs DIR`
// adds subject and expiry from the PEM files there.
import { createHash, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle, BundleKey } from '../bundle/types.ts';
import type { StageIdentity } from '../runtime/stages/context.ts';
import type { Snapshot } from '../runtime/snapshot.ts';
import { decide } from '../runtime/stages/decide.ts';

export interface WhoRow {
  kind: 'anyone' | 'certificate' | 'ca' | 'key';
  /** Key id, CA subject, or "" */
  id: string;
  fingerprints: string[];
  subject: string | null;
  expires: string | null;
  /** How it gets through: "certificate", "token", "token + its certificate", ... */
  how: string;
  policies: string[];
}

export interface WhoAnswer {
  api: string;
  method: string;
  path: string;
  rows: WhoRow[];
}

export interface CertFacts {
  subject: string;
  notAfter: string;
}

/** fingerprint -> subject and expiry, from every *.pem under `dir` (leaf = first block). */
export function certFactsFrom(dir: string): Map<string, CertFacts> {
  const out = new Map<string, CertFacts>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.pem') || name.endsWith('.crt')) {
        for (const m of readFileSync(p, 'latin1').matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)) {
          try {
            const x = new X509Certificate(m[0]);
            out.set(createHash('sha256').update(x.raw).digest('hex'), {
              subject: x.subject.split('\n').join(', '),
              notAfter: new Date(x.validTo).toISOString(),
            });
          } catch {
            // not a certificate we can read: it simply adds no facts
          }
        }
      }
    }
  };
  walk(dir);
  return out;
}

/** A client that presents the certificate with this fingerprint (valid at any `now`). */
function presenting(fingerprint: string, issuedByAny = false): StageIdentity {
  return { fingerprint, expired: () => false, issuedBy: () => issuedByAny };
}

export function whoCanReach(
  bundle: Bundle,
  snapshot: Snapshot,
  apiId: string,
  opts: { method: string; path: string | null; now: number; facts: Map<string, CertFacts> },
): WhoAnswer {
  const api = bundle.content.apis[apiId];
  if (api === undefined) throw new Error(`no API "${apiId}" in the bundle (it has ${Object.keys(bundle.content.apis).sort().join(', ')})`);
  let path = api.listen_path;
  if (opts.path !== null)
    path = opts.path.startsWith(api.listen_path) || `${opts.path}/` === api.listen_path ? opts.path : api.listen_path + opts.path.replace(/^\//, '');
  const method = opts.method.toUpperCase();
  const host = api.domain ?? '';
  // Without --path the question is the whole API: a key refused only by its allowed_urls on
  // the listen path itself still reaches the API (on the paths those entries name).
  const passes = (identity: StageIdentity | null, tokenSha256?: string) => {
    const d = decide(snapshot, { method, host, path, ...(tokenSha256 ? { tokenSha256 } : {}) }, identity, opts.now);
    return d.api === apiId && (d.refusal === null || (opts.path === null && d.refusal.code === 'access.url_denied'));
  };
  const fact = (f: string) => opts.facts.get(f) ?? null;
  const rows: WhoRow[] = [];

  if (api.use_keyless && !api.use_mutual_tls_auth && passes(null))
    rows.push({ kind: 'anyone', id: '', fingerprints: [], subject: null, expires: null, how: 'keyless, no client certificate needed', policies: [] });
  if (api.use_mutual_tls_auth) {
    const how = api.use_keyless ? 'pinned certificate (alone)' : 'pinned certificate, with a key that gets through (below)';
    for (const f of api.client_certificates) {
      if (api.use_keyless && !passes(presenting(f))) continue;
      const key = bundle.content.index.certs[f]?.key ?? null;
      rows.push({
        kind: 'certificate',
        id: key ?? '',
        fingerprints: [f],
        subject: fact(f)?.subject ?? null,
        expires: fact(f)?.notAfter ?? null,
        how,
        policies: [],
      });
    }
    for (const f of api.client_cas) {
      const ca = bundle.content.cas[f];
      rows.push({
        kind: 'ca',
        id: ca?.subject ?? '',
        fingerprints: [f],
        subject: ca?.subject ?? null,
        expires: null,
        how: api.use_keyless ? 'any certificate this CA issued (alone)' : 'any certificate this CA issued, with a key that gets through (below)',
        policies: [],
      });
    }
  }
  if (!api.use_keyless) {
    // A token-only key rides on a pinned certificate that identifies no other key (one that
    // does would name that key instead: auth.cert_mismatch).
    const unboundPins = api.client_certificates.filter((f) => (bundle.content.index.certs[f]?.key ?? null) === null);
    for (const key of Object.values(bundle.content.keys).sort((a, b) => (a.id < b.id ? -1 : 1))) {
      const how = keyGetsThrough(key, unboundPins, api.client_cas.length > 0, passes);
      if (how === null) continue;
      const f = key.certificates;
      const urls = key.access_rights[apiId]?.allowed_urls;
      rows.push({
        kind: 'key',
        id: key.id,
        fingerprints: f,
        subject: f.length > 0 ? (fact(f[0])?.subject ?? null) : null,
        expires: key.expires,
        how: urls && opts.path === null ? `${how}; only ${urls.map((u) => `${u.url} [${u.methods.join(',') || 'any method'}]`).join(', ')}` : how,
        policies: key.policies,
      });
    }
  }
  return { api: apiId, method, path, rows };
}

/** The first way the key's own credentials get through, or null. */
function keyGetsThrough(
  key: BundleKey,
  unboundPins: readonly string[],
  trustsCa: boolean,
  passes: (identity: StageIdentity | null, tokenSha256?: string) => boolean,
): string | null {
  const cert = key.certificates[0];
  const token = key.token_sha256 ?? undefined;
  if (cert !== undefined && passes(presenting(cert))) return 'its certificate';
  if (cert !== undefined && token && passes(presenting(cert), token)) return 'token + its certificate';
  if (token && passes(null, token)) return 'token';
  if (token && cert === undefined && unboundPins.some((p) => passes(presenting(p), token))) return 'token + a pinned certificate';
  if (token && cert === undefined && trustsCa && passes(presenting('0'.repeat(64), true), token)) return "token + a certificate the API's CA issued";
  return null;
}

const CSV_FIELDS = ['kind', 'id', 'fingerprints', 'subject', 'expires', 'how', 'policies'] as const;

export function formatWho(a: WhoAnswer, format: 'text' | 'json' | 'csv'): string {
  if (format === 'json') return `${JSON.stringify(a, null, 2)}\n`;
  if (format === 'csv') {
    const cell = (v: string) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
    const lines = [CSV_FIELDS.join(',')];
    for (const r of a.rows)
      lines.push(
        [r.kind, r.id, r.fingerprints.map((f) => `sha256:${f}`).join(' '), r.subject ?? '', r.expires ?? '', r.how, r.policies.join(' ')].map(cell).join(','),
      );
    return `${lines.join('\n')}\n`;
  }
  const lines = [`who can reach API "${a.api}" (${a.method} ${a.path}):`];
  if (a.rows.length === 0) lines.push('  nobody');
  for (const r of a.rows) {
    const fps = r.fingerprints.map((f) => `sha256:${f.slice(0, 16)}…`).join(' ');
    const bits = [
      r.kind.padEnd(11),
      (r.kind === 'ca' ? '' : r.id || '-').padEnd(14),
      r.how,
      fps,
      r.subject ? `subject "${r.subject}"` : '',
      r.expires ? `expires ${r.expires}` : '',
      r.policies.length ? `policies ${r.policies.join(', ')}` : '',
    ];
    lines.push(`  ${bits.filter(Boolean).join('  ')}`.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}
