// What a worker reports it took, verified by the primary before it becomes a floor of the set
// (docs/security.md section 42). A floor refuses: a bundle floor every bundle signed before it,
// a CRL floor every list of that CA with a lower cRLNumber or an earlier thisUpdate, in every
// worker, in every replacement, and (--state-dir) after a restart. So the primary believes no
// number a worker states: a bundle's signing time only with the signature over it that
// --bundle-public-key verifies, a CRL's floor only as read from the CRL's own bytes, whose
// signature the CA certificate sent with it verifies. A worker (a bug, or one taken over through
// its request path) can then raise a floor only to what the bundle signer or the CA signed.
// Once per bundle or CRL taken, never per request: one Ed25519 check, and a CRL's signature
// check and its header (the floor is its thisUpdate and cRLNumber): its entries are not walked.
// A large CRL's reading and signature check (1,000,000 entries: ~170 ms together) run in the
// CRL thread (runtime/crl-worker-client.ts), not on the primary's event loop, which answers the
// workers' lease requests and /health. A large CRL comes as a file in the hand-off directory
// (crl-files.ts): the thread reads it and checks its size and digest before the signature.
import { type KeyObject, X509Certificate } from 'node:crypto';
import { crlFloorOf } from '../../bundle/crl.ts';
import { CRL_WORKER_MIN_BYTES, type CrlThread, type CrlWorkerReply, crlFloorInWorker, crlThread } from '../crl-worker-client.ts';
import { verifySignedDigest } from '../../bundle/sign.ts';
import { fingerprintOf } from '../../cert/fingerprint.ts';
import { MAX_SIGNED_AHEAD_MS } from '../bundle-floor.ts';
import type { PeerTaken } from '../peer-floors.ts';
import { handedPath, readHandedFile } from './crl-files.ts';
import type { CrlFloor } from '../revocation.ts';
import type { BundleRecord } from '../state-file.ts';

/** The message with every floor as verified here, or why it cannot be believed (the primary drops it). */
export async function verifyTaken(
  m: PeerTaken,
  publicKey: KeyObject | undefined,
  now = Date.now(),
  thread: CrlThread = crlThread,
  crlDir?: string,
): Promise<PeerTaken | string> {
  const out: PeerTaken = {};
  if (m.bundle !== undefined) {
    const bundle = verifiedBundle(m.bundle, publicKey);
    if (typeof bundle === 'string') return `bundle ${m.bundle.digest}: ${bundle}`;
    out.bundle = bundle;
  }
  if (m.crl !== undefined) {
    const floor = await verifiedCrlFloor(m.crl, now, thread, crlDir);
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

const threadVerdict = (reply: CrlWorkerReply): ReturnType<typeof crlFloorOf> =>
  reply.status === 'floor' ? reply : reply.status === 'refused' ? reply.message : `internal error: the CRL thread answered ${reply.status}`;

/** Base64 of this many characters and more (a CRL of CRL_WORKER_MIN_BYTES) is verified in the CRL thread. */
const THREAD_MIN_BASE64 = Math.ceil(CRL_WORKER_MIN_BYTES / 3) * 4;

async function verifiedCrlFloor(c: NonNullable<PeerTaken['crl']>, now: number, thread: CrlThread, crlDir: string | undefined): Promise<CrlFloor | string> {
  if ((c.der === undefined && c.file === undefined) || c.issuer === undefined) return 'the CRL and its CA certificate were not sent with it';
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(Buffer.from(c.issuer, 'base64'));
  } catch (err) {
    return (err as Error).message;
  }
  // The signature before the header (as the fetcher: runtime/crl-fetcher.ts).
  let crl: ReturnType<typeof crlFloorOf>;
  if (c.file !== undefined) {
    const file = crlDir === undefined ? null : handedPath(crlDir, c.file);
    if (file === null) return `its file ${JSON.stringify(c.file.name.slice(0, 64))} is not one in the hand-off directory`;
    crl = await crlFloorInWorker(file, ca.raw, thread).then(threadVerdict, () => {
      const bytes = readHandedFile(file);
      return typeof bytes === 'string' ? bytes : crlFloorOf(bytes, ca);
    });
  } else if (c.der === undefined) return 'the CRL was not sent with it';
  else if (c.der.length >= THREAD_MIN_BASE64) {
    const der = c.der;
    crl = await crlFloorInWorker(der, ca.raw, thread).then(
      threadVerdict,
      // The thread could not run (resources, a missing build file): verified here, slower but correct.
      () => crlFloorOf(Buffer.from(der, 'base64'), ca),
    );
  } else crl = crlFloorOf(Buffer.from(c.der, 'base64'), ca);
  if (typeof crl === 'string') return crl;
  const floor: CrlFloor = { ca: fingerprintOf(ca.raw), thisUpdate: crl.thisUpdate, number: crl.number };
  const thisUpdate = new Date(crl.thisUpdate).toISOString();
  if (floor.thisUpdate > now + MAX_SIGNED_AHEAD_MS) return `its thisUpdate (${thisUpdate}) is more than five minutes ahead`;
  // What the worker stated must be what the bytes say: a floor that differs is a bug or a forgery.
  if (floor.ca !== c.floor.ca || floor.thisUpdate !== c.floor.thisUpdate || floor.number !== c.floor.number)
    return `the floor sent (CA ${c.floor.ca.slice(0, 16)}..., thisUpdate ${new Date(c.floor.thisUpdate).toISOString()}, cRLNumber ${c.floor.number ?? 'none'}) is not the CRL's own (CA ${floor.ca.slice(0, 16)}..., ${thisUpdate}, ${floor.number ?? 'none'})`;
  return floor;
}
