// Which of an API's static-mTLS entries admits a certificate: a pin, a CA (path validation) or
// a {issuer, san_..., subject_cn} entry, tested with the same calls the static-mtls stage makes
// (identity.issuedBy, match-index `matches`). Only for naming the entry beside the stage's own
// verdict: whether the request passes is always the stage's answer.
import type { Bundle } from '../bundle/types.ts';
import type { ClientIdentity } from '../runtime/identity.ts';
import { matches } from '../runtime/match-index.ts';
import type { PreparedApi } from '../runtime/prepared-api.ts';
import { describeMatch } from './cert-rules.ts';

export function admittedBy(bundle: Bundle, api: PreparedApi, identity: ClientIdentity, now: number): string | null {
  if (api.pinned.has(identity.fingerprint)) return 'pinned on the API';
  const ca = api.cas.find((c) => identity.issuedBy(c, now));
  if (ca !== undefined) return `issued by the API's CA "${bundle.content.cas[ca.fingerprint]?.subject ?? `sha256:${ca.fingerprint}`}" (path validation)`;
  const i = api.matches.findIndex((rule) => matches(rule, identity, now));
  if (i >= 0) return `admitted by the API's client_certificates entry: ${describeMatch(bundle, api.def.client_matches[i])}`;
  return null;
}
