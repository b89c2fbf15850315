// What a worker reports it took, verified by the primary before it becomes a floor of the set
// (docs/security.md section 42). A floor refuses: a bundle floor every bundle signed before it,
// a CRL floor every list of that CA with a lower cRLNumber or an earlier thisUpdate, in every
// worker, in every replacement, and (--state-dir) after a restart. So the primary believes no
// number a worker states: a bundle's signing time only with the signature over it that
// --bundle-public-key verifies, a CRL's floor only as read from the CRL's own bytes, whose
// signature the CA certificate sent with it verifies. A worker (a bug, or one taken over through
// its request path) can then raise a floor only to what the bundle signer or the CA signed.
// Once per bundle or CRL taken, never per request: one Ed25519 check, and a CRL's signature
// check and its header (the floor is its thisUpdate and cRLNumber): its entries are not walked,
// so a list of 1,000,000 (the worker that took it walked them) costs the primary's event loop
// only the signature's hash over it (tens of ms), not seconds.
import { type KeyObject, X509Certificate } from 'node:crypto';
import { crlSignedBy, signedCrl, walkCrl } from '../../bundle/crl.ts';
import { verifySignedDigest } from '../../bundle/sign.ts';
import { fingerprintOf } from '../../cert/fingerprint.ts';
import { MAX_SIGNED_AHEAD_MS } from '../bundle-floor.ts';
import type { PeerTaken } from '../peer-floors.ts';
import type { CrlFloor } from '../revocation.ts';
import type { BundleRecord } from '../state-file.ts';

/** The message with every floor as verified here, or why it cannot be believed (the primary drops it). */
export function verifyTaken(m: PeerTaken, publicKey: KeyObject | undefined, now = Date.now()): PeerTaken | string {
  const out: PeerTaken = {};
  if (m.bundle !== undefined) {
    const bundle = verifiedBundle(m.bundle, publicKey);
    if (typeof bundle === 'string') return `bundle ${m.bundle.digest}: ${bundle}`;
    out.bundle = bundle;
  }
  if (m.crl !== undefined) {
    const floor = verifiedCrlFloor(m.crl, now);
    if (typeof floor === 'string') return `CRL of ${m.crl.url}: ${floor}`;
    out.crl = { ...m.crl, floor };
  }
  return out;
}

function verifiedBundle(b: BundleRecord, publicKey: KeyObject | undefined): BundleRecord | string {
  // Workers record signed bundles only with --bundle-public-key; the same key is the primary's.
  if (publicKey === undefined) return 'a signed bundle reported, but serve has no --bundle-public-key to verify it';
  if (b.signature === undefined) return 'no signature sent with it';
  let verified: ReturnType<typeof verifySignedDigest>;
  try {
    verified = verifySignedDigest(b.digest, b.signature, publicKey);
  } catch (err) {
    return (err as Error).message;
  }
  if (verified.signedAt !== b.signedAt)
    return `its signature says signed at ${verified.signedAt === null ? 'no time (v1)' : new Date(verified.signedAt).toISOString()}, the message ${new Date(b.signedAt).toISOString()}`;
  return { signedAt: verified.signedAt, digest: verified.digest, keyId: verified.keyId, signature: verified.signature };
}

function verifiedCrlFloor(c: NonNullable<PeerTaken['crl']>, now: number): CrlFloor | string {
  if (c.der === undefined || c.issuer === undefined) return 'the CRL and its CA certificate were not sent with it';
  let crl: ReturnType<typeof walkCrl>;
  let ca: X509Certificate;
  try {
    const signed = signedCrl(Buffer.from(c.der, 'base64'));
    ca = new X509Certificate(Buffer.from(c.issuer, 'base64'));
    // The signature before the entries are walked (as the fetcher: runtime/crl-fetcher.ts).
    if (!crlSignedBy(signed, ca)) return 'its signature does not verify against the CA certificate sent with it';
    crl = walkCrl(signed.der, null);
  } catch (err) {
    return (err as Error).message;
  }
  const floor: CrlFloor = { ca: fingerprintOf(ca.raw), thisUpdate: crl.thisUpdate.getTime(), number: crl.number };
  if (floor.thisUpdate > now + MAX_SIGNED_AHEAD_MS) return `its thisUpdate (${crl.thisUpdate.toISOString()}) is more than five minutes ahead`;
  // What the worker stated must be what the bytes say: a floor that differs is a bug or a forgery.
  if (floor.ca !== c.floor.ca || floor.thisUpdate !== c.floor.thisUpdate || floor.number !== c.floor.number)
    return `the floor sent (CA ${c.floor.ca.slice(0, 16)}..., thisUpdate ${new Date(c.floor.thisUpdate).toISOString()}, cRLNumber ${c.floor.number ?? 'none'}) is not the CRL's own (CA ${floor.ca.slice(0, 16)}..., ${crl.thisUpdate.toISOString()}, ${floor.number ?? 'none'})`;
  return floor;
}
