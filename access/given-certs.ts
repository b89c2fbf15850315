// The client certificates `mtlsgate who --certs DIR` puts through the stages: the bundle knows
// certificates by fingerprint only, and the stages judge a certificate by more than that, so
// each is read from its PEM file into the runtime's own ClientIdentity.
import { relative } from 'node:path';
import { MAX_CERT_FILE_BYTES } from '../cert/read.ts';
import { oneLineName } from '../cert/subject.ts';
import { filesUnder } from '../common/files-under.ts';
import { readRegularFile } from '../common/regular-file.ts';
import type { ClientIdentity } from '../runtime/identity.ts';
import { identityFromPem } from './identity.ts';

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
  for (const p of filesUnder(dir, { skipHidden: false })) {
    if (!p.endsWith('.pem') && !p.endsWith('.crt')) continue;
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
  return out;
}
