// `mtlsgate who` on an API that asks for a client certificate: its pinned certificates, its CAs
// and subject entries (certificate_match), and the given certificates it admits through a CA or
// a subject entry. On a keyless API a certificate the stages let through is the whole answer;
// otherwise it must get past the certificate stages, and a key must get through too
// (access/who-keys.ts).
import type { PreparedApi } from '../runtime/prepared-api.ts';
import { AMBIGUOUS_KEY, type Snapshot } from '../runtime/snapshot.ts';
import type { Decision } from '../runtime/stages/decide.ts';
import { describeMatch, revocationOf } from './cert-rules.ts';
import type { GivenCert } from './given-certs.ts';
import { admittedBy } from './static-rules.ts';
import { shortFingerprint, type WhoRow } from './who-answer.ts';
import type { WhoQuestion } from './who-question.ts';
import { expiryInBundle, pinRefusedByBundle } from './who-unchecked.ts';

/** The stages that judge the certificate (the rest judge the key). */
const CERT_STAGES = new Set(['route', 'revocation', 'static-mtls']);

/** Appends the API's certificate rows to `rows`, and to `notes` the certificates refused. */
export function certificateRows(q: WhoQuestion, rows: WhoRow[], notes: string[]): void {
  const { bundle, snapshot, api, apiId, now, certs } = q;
  const alone = api.use_keyless ? ' (alone)' : ', with a key that gets through (below)';
  const revoked = (caFp: string | null) => {
    const r = revocationOf(bundle, caFp);
    return r ? `; revocation: ${r}` : '';
  };
  // A certificate the certificate stages (revocation, static mTLS) let through: on a keyless
  // API that is the whole answer; otherwise a key must get through too.
  const admitted = (c: GivenCert): Decision | true => {
    const d = q.ask(c.identity);
    if (api.use_keyless) return q.through(d) ? true : d;
    return d.api === apiId && (d.refusal === null || !CERT_STAGES.has(d.stage ?? '')) ? true : d;
  };
  const firstPinned = rows.length;
  for (const f of api.client_certificates) {
    const c = q.byFingerprint.get(f);
    const key = bundle.content.index.certs[f]?.key ?? null;
    if (c === undefined) {
      const refused = pinRefusedByBundle(bundle, f, now);
      if (refused !== null) notes.push(`pinned certificate ${shortFingerprint(f)}${key ? ` (key ${key})` : ''} is refused: ${refused}`);
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
      notes.push(`pinned certificate ${shortFingerprint(f)} (${c.subject}, ${c.file}) is refused: ${verdict.refusal?.code}`);
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
  const prepared = routedApi(snapshot, apiId);
  for (const c of certs) {
    if (api.client_certificates.includes(c.identity.fingerprint) || prepared === undefined) continue;
    const rule = admittedBy(bundle, prepared, c.identity, now);
    if (rule === null) continue;
    const verdict = admitted(c);
    if (verdict !== true) {
      notes.push(`certificate ${shortFingerprint(c.identity.fingerprint)} (${c.subject}, ${c.file}) is ${rule}, but refused: ${verdict.refusal?.code}`);
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

function routedApi(snapshot: Snapshot, apiId: string): PreparedApi | undefined {
  for (const table of [snapshot.routes.anyHost, ...snapshot.routes.byHost.values()]) for (const a of table.values()) if (a.id === apiId) return a;
  return undefined;
}

/** Rows naming a key first, by key id; then by subject (known before unknown); then fingerprint. */
function byKeyThenSubject(a: WhoRow, b: WhoRow): number {
  const order = (r: WhoRow) => [r.id === '' ? 1 : 0, r.id, r.subject === null ? 1 : 0, r.subject ?? '', r.fingerprints[0] ?? ''] as const;
  const x = order(a);
  const y = order(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}
