// `mtlsgate who` on an API that needs a key: each key whose own credentials (its certificate,
// its token, or both) get through the stages is a row; a key granted the API that does not is
// a note saying why, or a row marked not checked when its certificate was not given
// (access/who-unchecked.ts).
import type { BundleKey } from '../bundle/types.ts';
import type { ClientIdentity } from '../runtime/identity.ts';
import { AMBIGUOUS_KEY, type Snapshot } from '../runtime/snapshot.ts';
import { describeMatch } from './cert-rules.ts';
import type { GivenCert } from './given-certs.ts';
import { shortFingerprint, type WhoRow } from './who-answer.ts';
import type { WhoQuestion } from './who-question.ts';
import { credentialsOf, keyStagesRefusal } from './who-unchecked.ts';

/** Appends a row per key that gets through (or is granted the API but not checked) to `rows`, and to `notes` why the other granted keys do not. */
export function keyRows(q: WhoQuestion, rows: WhoRow[], notes: string[]): void {
  const { bundle, snapshot, api, apiId, method, host, path, now, certs } = q;
  const onlyUrls = (key: BundleKey) => {
    const urls = key.access_rights[apiId]?.allowed_urls;
    return urls && q.wholeApi ? `; only ${urls.map((u) => `${u.url} [${u.methods.join(',') || 'any method'}]`).join(', ')}` : '';
  };
  for (const key of Object.values(bundle.content.keys).sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const got = keyGetsThrough(key, snapshot, certs, now, q.passes);
    if (got === null) {
      if (key.access_rights[apiId] === undefined) continue;
      const missing = uncheckedCredentials(key, q.byFingerprint, certs, snapshot, now);
      if (missing !== null) {
        // Listed all the same (an auditor with only the bundle gets every grant), after the
        // stages that need no certificate: the key's state and its access rights.
        const refused = keyStagesRefusal(snapshot, { method, host, path }, key, now, q.wholeApi);
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
        const d = q.ask(c.identity, key.token_sha256 ?? undefined);
        if (d.refusal !== null)
          notes.push(
            `key ${key.id} with its certificate ${shortFingerprint(c.identity.fingerprint)} (${c.subject}, ${c.file})${key.token_sha256 ? ' and its token' : ''} is refused: ${d.refusal.code}`,
          );
      }
      // A key granted the API that is in no row and no note yet: say why it is not a row.
      if (missing === null && notes.length === noted) {
        const refused = keyStagesRefusal(snapshot, { method, host, path }, key, now, q.wholeApi);
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
  if (missing.length > 0) return `its certificate ${missing.map(shortFingerprint).join(', ')} is not among the certificates given (--certs DIR)`;
  if (key.certificate_match !== null && !certs.some((c) => snapshot.keyOfIdentity(c.identity, now) !== undefined))
    return 'no certificate given matches its certificate_match (--certs DIR)';
  if (key.token_sha256 !== null && key.certificates.length === 0 && key.certificate_match === null && certs.length === 0)
    return 'its token alone is refused, and no certificate was given to carry it (--certs DIR)';
  return null;
}
