// `mtlsgate who`: every identity that gets through to an API (and path) in a bundle. Each
// candidate is put to the gateway's own stages (decide) with the credentials it holds: a key's
// token (stated by token_sha256), real client certificates, or both. The bundle knows
// certificates by fingerprint only, and the stages judge a certificate by more than that
// (validity, extendedKeyUsage, path validation to a CA, subject for certificate_match,
// revocation), so certificates are read from `--certs DIR` and built into the runtime's own
// ClientIdentity; a grant whose certificate was not given is listed as not checked, never
// guessed.
import type { Bundle } from '../bundle/types.ts';
import type { Snapshot } from '../runtime/snapshot.ts';
import { revocationOf } from './cert-rules.ts';
import type { GivenCert } from './given-certs.ts';
import { shortFingerprint, type WhoAnswer, type WhoRow } from './who-answer.ts';
import { certificateRows } from './who-certificates.ts';
import { keyRows } from './who-keys.ts';
import { questionFor } from './who-question.ts';

export function whoCanReach(
  bundle: Bundle,
  snapshot: Snapshot,
  apiId: string,
  opts: { method: string; path: string | null; now: number; certs: readonly GivenCert[] },
): WhoAnswer {
  const q = questionFor(bundle, snapshot, apiId, opts);
  const { api } = q;
  const rows: WhoRow[] = [];
  const notes: string[] = [];
  if (api.use_keyless && !api.use_mutual_tls_auth && q.passes(null))
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
  if (api.use_mutual_tls_auth) certificateRows(q, rows, notes);
  if (!api.use_keyless) keyRows(q, rows, notes);
  // Where a key is needed too, a certificate the certificate stages admit reaches nothing on
  // its own: with no key row, nobody gets through, and the certificates are notes, not rows.
  if (api.use_mutual_tls_auth && !api.use_keyless && !rows.some((r) => r.kind === 'key'))
    for (const r of rows.splice(0)) {
      const what = r.kind === 'certificate' ? 'pinned certificate' : r.kind === 'ca' ? 'CA entry' : 'subject entry';
      const about = [r.kind === 'certificate' && r.id ? `key ${r.id}` : '', r.subject ?? ''].filter(Boolean).join(', ');
      notes.push(
        `${what} ${shortFingerprint(r.fingerprints[0])}${about ? ` (${about})` : ''} reaches nothing here: no key gets through (the API needs a key as well)`,
      );
    }
  if (api.use_mutual_tls_auth || api.use_certificate) {
    const all = revocationOf(bundle, null);
    if (all) notes.push(`revocation (every API): ${all}`);
  }
  return { api: apiId, method: q.method, path: q.path, rows, notes };
}
