// runtime/cluster/verify-taken.ts rule by rule: what a worker reports it took becomes a floor
// of the set only with evidence the primary verifies itself (docs/security.md section 42).
// The cluster test is test/workers-forged-floors.test.ts.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { after, test } from 'node:test';
import { parseCrl } from '../bundle/crl.ts';
import { generateSigningKeys, keyId, signDigest } from '../bundle/sign.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { verifyTaken } from '../runtime/cluster/verify-taken.ts';
import { CrlThread } from '../runtime/crl-worker-client.ts';
import { bigCrl } from './helpers/big-crl.ts';
import { createOpensslCa } from './helpers/openssl-pki.ts';
import { join } from 'node:path';

const keys = generateSigningKeys();
const privateKey = createPrivateKey(keys.privatePem);
const publicKey = createPublicKey(keys.publicPem);
const other = createPrivateKey(generateSigningKeys().privatePem);
const digest = `sha256:${randomBytes(32).toString('hex')}`;
const now = Date.parse('2026-12-05T04:00:00.000Z');

test('a bundle record is believed only with a signature over its digest and time by the --bundle-public-key key', async () => {
  const signedAt = now - 1_000;
  const record = { signedAt, digest, keyId: keyId(publicKey), signature: signDigest(digest, privateKey, signedAt) };
  assert.deepEqual(await verifyTaken({ bundle: record }, publicKey, now), { bundle: record });
  const refused = async (bundle: typeof record, key = publicKey) => verifyTaken({ bundle }, key, now);
  assert.match(String(await verifyTaken({ bundle: record }, undefined, now)), /serve has no --bundle-public-key/);
  assert.match(String(await refused({ ...record, signature: undefined as unknown as string })), /no signature sent with it/);
  // The time is what a floor is made of: moved, the signature no longer covers it.
  assert.match(String(await refused({ ...record, signedAt: signedAt + 240_000 })), /signature says signed at .*, the message/);
  assert.match(String(await refused({ ...record, signature: signDigest(digest, privateKey, signedAt + 240_000) })), /signature says signed at/);
  assert.match(String(await refused({ ...record, digest: `sha256:${'0'.repeat(64)}` })), /does not verify with key/);
  assert.match(String(await refused({ ...record, signature: signDigest(digest, other, signedAt) })), /signed by key .*, not by the --bundle-public-key key/);
  assert.match(String(await refused({ ...record, signature: 'ed25519:nonsense' })), /not of the form/);
});

const ca = createOpensslCa('Verify Taken CA');
const stranger = createOpensslCa('Stranger CA');
after(() => {
  ca.cleanup();
  stranger.cleanup();
});

test('a CRL record is believed only as its own bytes say, signed by the CA certificate sent with it', async () => {
  const pem = ca.gencrl();
  const crl = parseCrl(Buffer.from(pem));
  const caCert = new X509Certificate(ca.caPem);
  const floor = { ca: fingerprintOf(caCert.raw), thisUpdate: crl.thisUpdate.getTime(), number: crl.number };
  const record = { url: 'http://crl.example/ca.crl', floor, der: Buffer.from(pem).toString('base64'), issuer: caCert.raw.toString('base64') };
  const at = crl.thisUpdate.getTime() + 60_000;
  assert.deepEqual(await verifyTaken({ crl: record }, undefined, at), { crl: record });
  const refused = async (c: Partial<typeof record>) => String(await verifyTaken({ crl: { ...record, ...c } }, undefined, at));
  assert.match(await refused({ issuer: undefined }), /the CRL and its CA certificate were not sent with it/);
  assert.match(await refused({ der: undefined }), /were not sent with it/);
  assert.match(await refused({ floor: { ...floor, number: 'ffffffff' } }), /the floor sent .*cRLNumber ffffffff\) is not the CRL's own/);
  assert.match(await refused({ floor: { ...floor, thisUpdate: floor.thisUpdate + 1_000 } }), /is not the CRL's own/);
  // Another CA's certificate: the signature does not verify (a worker cannot name the real CA's fingerprint with a CRL it signed itself).
  assert.match(
    await refused({ issuer: new X509Certificate(stranger.caPem).raw.toString('base64') }),
    /does not verify against the CA certificate sent with it/,
  );
  assert.match(await refused({ der: Buffer.from(stranger.gencrl()).toString('base64') }), /does not verify against the CA certificate/);
  assert.match(await refused({ der: Buffer.from('not a crl').toString('base64') }), /neither a DER CRL nor PEM/);
  // A CRL the CA signed with a thisUpdate more than five minutes ahead of the primary's clock.
  assert.match(String(await verifyTaken({ crl: record }, undefined, crl.thisUpdate.getTime() - 6 * 60_000)), /more than five minutes ahead/);
});

test('a large CRL record is verified in the CRL thread (decoding and signature off the primary event loop), with the same verdicts', async () => {
  // 100,000 entries: ~3.9 MB, above CRL_WORKER_MIN_BYTES. Before, the primary decoded the
  // base64 and hashed the whole list for the signature on its own thread (1,000,000: ~170 ms).
  const der = bigCrl(ca.caCert, join(ca.dir, 'ca-key.pem'), 100_000);
  const caCert = new X509Certificate(ca.caPem);
  const header = parseCrl(der);
  const floor = { ca: fingerprintOf(caCert.raw), thisUpdate: header.thisUpdate.getTime(), number: header.number };
  const record = { url: 'http://crl.example/big.crl', floor, der: der.toString('base64'), issuer: caCert.raw.toString('base64') };
  const thread = new CrlThread(60_000);
  try {
    const at = header.thisUpdate.getTime() + 60_000;
    assert.deepEqual(await verifyTaken({ crl: record }, undefined, at, thread), { crl: record });
    assert.equal(thread.started, 1, 'verified in the CRL thread');
    const forged = Buffer.from(der);
    forged[forged.length - 10] ^= 1;
    assert.match(
      String(await verifyTaken({ crl: { ...record, der: forged.toString('base64') } }, undefined, at, thread)),
      /does not verify against the CA certificate sent with it/,
    );
    assert.match(String(await verifyTaken({ crl: { ...record, floor: { ...floor, number: 'ff' } } }, undefined, at, thread)), /is not the CRL's own/);
    assert.equal(thread.started, 1, 'one thread for every record');
  } finally {
    await thread.stop();
  }
});
