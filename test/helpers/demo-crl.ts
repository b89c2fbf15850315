// CRLs for the tests, signed by a demo-PKI CA (cli/pki.ts) without openssl: the compiler's
// `kind: revocation` fixtures and the gateway's crl_urls server. Only tests need one, so it
// lives here and not in the CLI's PKI module (production code carries nothing only a test uses).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { signingAlgorithm, type Issued, type KeyAlg } from '../../cli/pki.ts';

const DAY = 86_400_000;

/** A CRL signed by `ca` revoking `revoked` (certificates or hex serials), PEM. */
export async function createCrl(ca: Issued, revoked: (Issued | string)[], opts: { thisUpdate?: Date; nextUpdate?: Date; alg?: KeyAlg } = {}): Promise<string> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subject,
    thisUpdate: opts.thisUpdate ?? new Date(Date.now() - 60_000),
    nextUpdate: opts.nextUpdate ?? new Date(Date.now() + 7 * DAY),
    signingAlgorithm: signingAlgorithm(opts.alg ?? 'ec'),
    signingKey: ca.keys.privateKey,
    entries: revoked.map((r) => ({ serialNumber: typeof r === 'string' ? r : r.cert.serialNumber, revocationDate: new Date(Date.now() - 60_000) })),
  });
  return crl.toString('pem') + '\n';
}
