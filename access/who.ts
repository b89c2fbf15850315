// `mtlsgate who`: every identity that gets through to an API (and path) in a bundle. Each
// candidate is put to the gateway's own stages (decide) with the credentials it holds: a key's
// token (stated by token_sha256), real client certificates, or both. The bundle knows
// certificates by fingerprint only, and the stages judge a certificate by more than that
// (validity, extendedKeyUsage, path validation to a CA, subject for certificate_match,
// revocation), so certificates are read from `--certs DIR` and built into the runtime's own
// ClientIdentity; a grant whose certificate was not given is listed as not checked, never
// guessed.
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Bundle, BundleKey } from '../bundle/types.ts';
import { MAX_CERT_FILE_BYTES } from '../cert/read.ts';
import { oneLineName } from '../cert/subject.ts';
import { count } from '../common/count.ts';
import { readRegularFile } from '../common/regular-file.ts';
import type { ClientIdentity } from '../runtime/identity.ts';
import type { PreparedApi } from '../runtime/prepared-api.ts';
import { AMBIGUOUS_KEY, type Snapshot } from '../runtime/snapshot.ts';
import { decide, type Decision } from '../runtime/stages/decide.ts';
import { describeMatch, revocationOf } from './cert-rules.ts';
import { identityFromPem } from './identity.ts';
import { admittedBy } from './static-rules.ts';
import { credentialsOf, expiryInBundle, keyStagesRefusal, pinRefusedByBundle } from './who-unchecked.ts';

export interface WhoRow {
  kind: 'anyone' | 'certificate' | 'ca' | 'match' | 'key';
  /** Key id, CA subject, or "" */
  id: string;
  fingerprints: string[];
  subject: string | null;
  expires: string | null;
  /** How it gets through: "its certificate", "token", "token + its certificate", ... */
  how: string;
  policies: string[];
  /**
   * false: listed from the bundle alone, its certificate not given (--certs DIR), so the checks
   * that need the certificate itself did not run (access/who-unchecked.ts says what did).
   */
  checked: boolean;
}

export interface WhoAnswer {
  api: string;
  method: string;
  path: string;
  rows: WhoRow[];
  /** Grants not put to the stages (certificate not given) and certificates the stages refused. */
  notes: string[];
}

/** A client certificate from --certs, as the gateway would see it on a connection. */
export interface GivenCert {
  file: string;
  identity: ClientIdentity;
  subject: string;
  expires: string;
}

/** Every certificate PEM under `dir` (*.pem, *.crt; leaf first, chain after it in the same file). */
export function certsFrom(dir: string): GivenCert[] {
  const out: GivenCert[] = [];
  const seen = new Set<string>();
  // Each real directory once: a link back to a directory above (two links to ".") would
  // otherwise walk until the kernel's ELOOP ended the command.
  const dirsSeen = new Set<string>();
  const walk = (d: string) => {
    const real = realpathSync(d);
    if (dirsSeen.has(real)) return;
    dirsSeen.add(real);
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.pem') || name.endsWith('.crt')) {
        let identity: ClientIdentity;
        try {
          identity = identityFromPem(readRegularFile(p, MAX_CERT_FILE_BYTES).toString('latin1'));
        } catch {
          continue; // a private key or something else: no certificate to present
        }
        if (seen.has(identity.fingerprint)) continue;
        seen.add(identity.fingerprint);
        out.push({ file: relative(dir, p), identity, subject: oneLineName(identity.leaf.subject), expires: new Date(identity.notAfter).toISOString() });
      }
    }
  };
  walk(dir);
  return out;
}

const CERT_STAGES = new Set(['route', 'revocation', 'static-mtls']);
const short = (fp: string) => `sha256:${fp.slice(0, 16)}…`;

export function whoCanReach(
  bundle: Bundle,
  snapshot: Snapshot,
  apiId: string,
  opts: { method: string; path: string | null; now: number; certs: readonly GivenCert[] },
): WhoAnswer {
  // Own entries only: "constructor" or "toString" names no API (an inherited member is not one).
  const api = Object.hasOwn(bundle.content.apis, apiId) ? bundle.content.apis[apiId] : undefined;
  if (api === undefined) throw new Error(`no API "${apiId}" in the bundle (it has ${Object.keys(bundle.content.apis).sort().join(', ')})`);
  let path = api.listen_path;
  if (opts.path !== null)
    path = opts.path.startsWith(api.listen_path) || `${opts.path}/` === api.listen_path ? opts.path : api.listen_path + opts.path.replace(/^\//, '');
  const method = opts.method.toUpperCase();
  const host = api.domain ?? '';
  const { now, certs } = opts;
  const ask = (identity: ClientIdentity | null, tokenSha256?: string): Decision =>
    decide(snapshot, { method, host, path, ...(tokenSha256 ? { tokenSha256 } : {}) }, identity, now) as Decision;
  // Without --path the question is the whole API: a key refused only by its allowed_urls on
  // the listen path itself still reaches the API (on the paths those entries name).
  const through = (d: Decision) => d.api === apiId && (d.refusal === null || (opts.path === null && d.refusal.code === 'access.url_denied'));
  const passes = (identity: ClientIdentity | null, tokenSha256?: string) => through(ask(identity, tokenSha256));
  const byFingerprint = new Map(certs.map((c) => [c.identity.fingerprint, c]));
  const prepared = routedApi(snapshot, apiId);
  const rows: WhoRow[] = [];
  const notes: string[] = [];
  const onlyUrls = (key: BundleKey) => {
    const urls = key.access_rights[apiId]?.allowed_urls;
    return urls && opts.path === null ? `; only ${urls.map((u) => `${u.url} [${u.methods.join(',') || 'any method'}]`).join(', ')}` : '';
  };
  const revoked = (caFp: string | null) => {
    const r = revocationOf(bundle, caFp);
    return r ? `; revocation: ${r}` : '';
  };

  if (api.use_keyless && !api.use_mutual_tls_auth && passes(null))
    rows.push({
      kind: 'anyone',
      id: '',
      fingerprints: [],
      subject: null,
      expires: null,
      how: 'keyless, no client certificate needed',
      policies: [],
      checked: true,
    });
  if (api.use_mutual_tls_auth) {
    const alone = api.use_keyless ? ' (alone)' : ', with a key that gets through (below)';
    // A certificate the certificate stages (revocation, static mTLS) let through: on a keyless
    // API that is the whole answer; otherwise a key must get through too.
    const admitted = (c: GivenCert): Decision | true => {
      const d = ask(c.identity);
      if (api.use_keyless) return through(d) ? true : d;
      return d.api === apiId && (d.refusal === null || !CERT_STAGES.has(d.stage ?? '')) ? true : d;
    };
    const firstPinned = rows.length;
    for (const f of api.client_certificates) {
      const c = byFingerprint.get(f);
      const key = bundle.content.index.certs[f]?.key ?? null;
      if (c === undefined) {
        const refused = pinRefusedByBundle(bundle, f, now);
        if (refused !== null) notes.push(`pinned certificate ${short(f)}${key ? ` (key ${key})` : ''} is refused: ${refused}`);
        else
          rows.push({
            kind: 'certificate',
            id: key ?? '',
            fingerprints: [f],
            subject: null,
            expires: expiryInBundle(bundle, f),
            how: `pinned certificate${alone}; not checked: not among the certificates given (--certs DIR)`,
            policies: [],
            checked: false,
          });
        continue;
      }
      const verdict = admitted(c);
      if (verdict !== true) {
        notes.push(`pinned certificate ${short(f)} (${c.subject}, ${c.file}) is refused: ${verdict.refusal?.code}`);
        continue;
      }
      rows.push({
        kind: 'certificate',
        id: key ?? '',
        fingerprints: [f],
        subject: c.subject,
        expires: c.expires,
        how: `pinned certificate${alone}`,
        policies: [],
        checked: true,
      });
    }
    // The bundle holds pins in fingerprint order, which a renewed certificate reshuffles: an
    // auditor comparing two listings would see rows move. Listed by key, then subject instead.
    rows.splice(firstPinned, rows.length - firstPinned, ...rows.slice(firstPinned).sort(byKeyThenSubject));
    for (const f of api.client_cas) {
      const ca = bundle.content.cas[f];
      rows.push({
        kind: 'ca',
        id: ca?.subject ?? '',
        fingerprints: [f],
        subject: ca?.subject ?? null,
        expires: null,
        how: `any certificate this CA issued (path validation)${alone}${revoked(f)}`,
        policies: [],
        checked: true,
      });
    }
    for (const m of api.client_matches)
      rows.push({
        kind: 'match',
        id: '',
        fingerprints: [m.issuer],
        subject: null,
        expires: null,
        how: `a certificate ${describeMatch(bundle, m)}${alone}${revoked(m.issuer)}`,
        policies: [],
        checked: true,
      });
    // Given certificates the API admits through a CA or a subject entry (pins are above).
    for (const c of certs) {
      if (api.client_certificates.includes(c.identity.fingerprint) || prepared === undefined) continue;
      const rule = admittedBy(bundle, prepared, c.identity, now);
      if (rule === null) continue;
      const verdict = admitted(c);
      if (verdict !== true) {
        notes.push(`certificate ${short(c.identity.fingerprint)} (${c.subject}, ${c.file}) is ${rule}, but refused: ${verdict.refusal?.code}`);
        continue;
      }
      const key = snapshot.keyOfIdentity(c.identity, now);
      rows.push({
        kind: 'certificate',
        id: key === undefined || key === AMBIGUOUS_KEY ? '' : key.id,
        fingerprints: [c.identity.fingerprint],
        subject: c.subject,
        expires: c.expires,
        how: `${rule}${alone}`,
        policies: [],
        checked: true,
      });
    }
  }
  if (!api.use_keyless) {
    for (const key of Object.values(bundle.content.keys).sort((a, b) => (a.id < b.id ? -1 : 1))) {
      const got = keyGetsThrough(key, snapshot, certs, now, passes);
      if (got === null) {
        if (key.access_rights[apiId] === undefined) continue;
        const missing = uncheckedCredentials(key, byFingerprint, certs, snapshot, now);
        if (missing !== null) {
          // Listed all the same (an auditor with only the bundle gets every grant), after the
          // stages that need no certificate: the key's state and its access rights.
          const refused = keyStagesRefusal(snapshot, { method, host, path }, key, now, opts.path === null);
          if (refused !== null) notes.push(`key ${key.id} is refused whatever its certificate: ${refused.code}`);
          else
            rows.push({
              kind: 'key',
              id: key.id,
              fingerprints: key.certificates,
              subject: null,
              expires: key.expires,
              how: `${credentialsOf(bundle, key, api)}${onlyUrls(key)}; not checked: ${missing}`,
              policies: key.policies,
              checked: false,
            });
        }
        // Its own certificates that were given and refused (revoked, expired, ...): say why.
        const noted = notes.length;
        for (const c of certs) {
          const k = snapshot.keyOfIdentity(c.identity, now);
          if (k === undefined || k === AMBIGUOUS_KEY || k.id !== key.id) continue;
          const d = ask(c.identity, key.token_sha256 ?? undefined);
          if (d.refusal !== null)
            notes.push(
              `key ${key.id} with its certificate ${short(c.identity.fingerprint)} (${c.subject}, ${c.file})${key.token_sha256 ? ' and its token' : ''} is refused: ${d.refusal.code}`,
            );
        }
        // A key granted the API that is in no row and no note yet: say why it is not a row.
        if (missing === null && notes.length === noted) {
          const refused = keyStagesRefusal(snapshot, { method, host, path }, key, now, opts.path === null);
          notes.push(
            refused !== null
              ? `key ${key.id} is refused whatever its certificate: ${refused.code}`
              : `key ${key.id} gets through with none of the certificates given`,
          );
        }
        continue;
      }
      rows.push({
        kind: 'key',
        id: key.id,
        fingerprints: got.cert ? [got.cert.identity.fingerprint] : key.certificates,
        subject: got.cert?.subject ?? null,
        expires: key.expires,
        how: `${got.how}${onlyUrls(key)}`,
        policies: key.policies,
        checked: true,
      });
    }
  }
  // Where a key is needed too, a certificate the certificate stages admit reaches nothing on
  // its own: with no key row, nobody gets through, and the certificates are notes, not rows.
  if (api.use_mutual_tls_auth && !api.use_keyless && !rows.some((r) => r.kind === 'key'))
    for (const r of rows.splice(0)) {
      const what = r.kind === 'certificate' ? 'pinned certificate' : r.kind === 'ca' ? 'CA entry' : 'subject entry';
      const about = [r.kind === 'certificate' && r.id ? `key ${r.id}` : '', r.subject ?? ''].filter(Boolean).join(', ');
      notes.push(`${what} ${short(r.fingerprints[0])}${about ? ` (${about})` : ''} reaches nothing here: no key gets through (the API needs a key as well)`);
    }
  if (api.use_mutual_tls_auth || api.use_certificate) {
    const all = revocationOf(bundle, null);
    if (all) notes.push(`revocation (every API): ${all}`);
  }
  return { api: apiId, method, path, rows, notes };
}

function routedApi(snapshot: Snapshot, apiId: string): PreparedApi | undefined {
  for (const table of [snapshot.routes.anyHost, ...snapshot.routes.byHost.values()]) for (const a of table.values()) if (a.id === apiId) return a;
  return undefined;
}

/** The first way the key's own credentials get through, with the certificate it used, or null. */
function keyGetsThrough(
  key: BundleKey,
  snapshot: Snapshot,
  certs: readonly GivenCert[],
  now: number,
  passes: (identity: ClientIdentity | null, tokenSha256?: string) => boolean,
): { how: string; cert: GivenCert | null } | null {
  const token = key.token_sha256 ?? undefined;
  const identifies = (c: GivenCert) => {
    const k = snapshot.keyOfIdentity(c.identity, now);
    return k !== undefined && k !== AMBIGUOUS_KEY && k.id === key.id;
  };
  // Its own certificates: bound by fingerprint, or matched by its certificate_match.
  for (const c of certs) {
    if (!identifies(c)) continue;
    const what = key.certificates.includes(c.identity.fingerprint)
      ? 'its certificate'
      : `a certificate its certificate_match admits (${key.certificate_match ? describeMatch(snapshot.bundle, key.certificate_match) : 'subject'}: ${c.file})`;
    if (passes(c.identity)) return { how: what, cert: c };
    if (token && passes(c.identity, token)) return { how: `token + ${what}`, cert: c };
  }
  if (token && passes(null, token)) return { how: 'token', cert: null };
  // A token-only key rides on a certificate the API admits that identifies no key (one that
  // does would name that key instead: auth.cert_mismatch).
  if (token && key.certificates.length === 0 && key.certificate_match === null) {
    for (const c of certs) {
      if (snapshot.keyOfIdentity(c.identity, now) !== undefined) continue;
      if (passes(c.identity, token)) return { how: 'token + a pinned certificate', cert: c };
    }
  }
  return null;
}

/** Why a key with a right on the API could not be fully checked, or null when every credential was. */
function uncheckedCredentials(
  key: BundleKey,
  given: ReadonlyMap<string, GivenCert>,
  certs: readonly GivenCert[],
  snapshot: Snapshot,
  now: number,
): string | null {
  const missing = key.certificates.filter((f) => !given.has(f));
  if (missing.length > 0) return `its certificate ${missing.map(short).join(', ')} is not among the certificates given (--certs DIR)`;
  if (key.certificate_match !== null && !certs.some((c) => snapshot.keyOfIdentity(c.identity, now) !== undefined))
    return 'no certificate given matches its certificate_match (--certs DIR)';
  if (key.token_sha256 !== null && key.certificates.length === 0 && key.certificate_match === null && certs.length === 0)
    return 'its token alone is refused, and no certificate was given to carry it (--certs DIR)';
  return null;
}

const CSV_FIELDS = ['kind', 'id', 'fingerprints', 'subject', 'expires', 'how', 'policies', 'checked'] as const;

export function formatWho(a: WhoAnswer, format: 'text' | 'csv'): string {
  if (format === 'csv') {
    const cell = (v: string) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
    const lines = [CSV_FIELDS.join(',')];
    for (const r of a.rows)
      lines.push(
        [
          r.kind,
          r.id,
          r.fingerprints.map((f) => `sha256:${f}`).join(' '),
          r.subject ?? '',
          r.expires ?? '',
          r.how,
          r.policies.join(' '),
          r.checked ? 'yes' : 'no',
        ]
          .map(cell)
          .join(','),
      );
    return `${lines.join('\n')}\n`;
  }
  const lines = [`who can reach API "${a.api}" (${a.method} ${a.path}):`];
  if (a.rows.length === 0) lines.push('  nobody');
  for (const r of a.rows) {
    const fps = r.fingerprints.map(short).join(' ');
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
  const unchecked = a.rows.filter((r) => !r.checked).length;
  if (unchecked > 0)
    lines.push(
      `${count(unchecked, 'grant')} listed from the bundle alone (not checked): give the client certificates with --certs DIR to put them through the stages`,
    );
  if (a.notes.length > 0) lines.push('notes:', ...a.notes.map((n) => `  ${n}`));
  return `${lines.join('\n')}\n`;
}

/** Rows naming a key first, by key id; then by subject (known before unknown); then fingerprint. */
function byKeyThenSubject(a: WhoRow, b: WhoRow): number {
  const order = (r: WhoRow) => [r.id === '' ? 1 : 0, r.id, r.subject === null ? 1 : 0, r.subject ?? '', r.fingerprints[0] ?? ''] as const;
  const x = order(a);
  const y = order(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}
