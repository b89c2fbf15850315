// Bundle signatures (Ed25519). The digest alone is unkeyed: whoever can write the bundle file,
// or sits on a plain-http bundle URL, recomputes it. A signature binds the digest to a key the
// operator holds: `mtlsgate compile --sign KEYFILE` signs, `serve --bundle-public-key FILE`
// refuses anything else.
//
// What is signed is the digest and the signing time, not the bytes: the message is (v2)
//   "mtlsgate.signature/v2\n" + "sha256:<hex>" + "\n" + "2026-12-04T19:10:42.123Z"
// so the signature verifies from the header alone (the digest is then checked against the
// content as always). A sharded bundle's manifest is signed the same way: its digest covers
// every shard's digest (bundle/shards.ts), so one signature covers the set.
// The prefix separates this use of the key from any other.
//
// Why a time: a signature over the digest alone (v1, "mtlsgate.signature/v1\n" + digest) orders
// nothing, so every bundle the key ever signed verifies forever, and whoever writes the bundle
// file or answers its URL can serve an old one (a replay: docs/security.md section 30). The
// signing time orders them: a gateway refuses a bundle signed before the one it serves
// (runtime/bundle-floor.ts). A time rather than a counter because the signers (CI's
// `compile --sign`, the portal, `approve`) are separate processes that share no counter, and
// an operator can name a time (`serve --bundle-not-before`); one process signs at strictly
// increasing milliseconds, so two bundles it signs never share a time.
//
// In the file the signature sits in the header, between digest and content:
//   {"format":"mtlsgate.bundle/v2","digest":"sha256:<hex>","signature":"ed25519:<key id>:<signed at>:<base64>","content":{...}}
// (v1: "ed25519:<key id>:<base64>", still verified). The key id (first 16 hex of the SHA-256
// of the public key's DER) lets an error say which key signed. Readers that ignore signatures
// still read the bundle; the digest covers the same bytes.
import { MAX_CERT_FILE_BYTES } from '../cert/read.ts';
import { readRegularFile } from '../common/regular-file.ts';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { containsPrivateKey } from '../cert/private-key.ts';
import { errnoMessage } from '../common/errno.ts';
import { type DocumentHeader, HeaderError, readHeader, SIGNATURE, SIGNATURE_MARK } from './header.ts';
import { BUNDLE_FORMAT, type DocumentFormat, MANIFEST_FORMAT } from './types.ts';

export class SignatureError extends Error {
  override name = 'SignatureError';
}

const MESSAGE_PREFIX_V1 = 'mtlsgate.signature/v1\n';
const MESSAGE_PREFIX = 'mtlsgate.signature/v2\n';
/** A bundle, or a sharded bundle's manifest (whose digest covers every shard's). */
const SIGNED_FORMATS: readonly DocumentFormat[] = [BUNDLE_FORMAT, MANIFEST_FORMAT];

/** What a v2 signature covers: a digest ("sha256:<hex>") and the signing time, domain-separated. */
function signatureMessage(digest: string, signedAt: string): Buffer {
  return Buffer.from(`${MESSAGE_PREFIX}${digest}\n${signedAt}`, 'utf8');
}

/** What a v1 signature covered: the digest alone (verified, never written any more). */
function signatureMessageV1(digest: string): Buffer {
  return Buffer.from(MESSAGE_PREFIX_V1 + digest, 'utf8');
}

let lastSignedAt = 0;
/** Now, in ms, strictly after the last time this process signed (a portal compiles many times a second). */
function nextSigningTime(): number {
  lastSignedAt = Math.max(Date.now(), lastSignedAt + 1);
  return lastSignedAt;
}

/** First 16 hex characters of the SHA-256 of the public key (SPKI DER). */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

export function generateSigningKeys(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    keyId: keyId(publicKey),
  };
}

function ed25519(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519')
    throw new SignatureError(`${what} is a ${key.asymmetricKeyType} key; bundle signatures use Ed25519 (make a pair with \`mtlsgate keygen\`)`);
  return key;
}

export function readPrivateKey(pem: string | Buffer): KeyObject {
  try {
    return ed25519(createPrivateKey(pem), 'the signing key');
  } catch (err) {
    if (err instanceof SignatureError) throw err;
    throw new SignatureError('the signing key is not a PEM private key (make one with `mtlsgate keygen`)');
  }
}

/** `--sign KEYFILE` of compile, portal and approve: the key, or an error naming the file. */
export function readSigningKeyFile(path: string): KeyObject {
  let pem: Buffer;
  try {
    pem = readRegularFile(path, MAX_CERT_FILE_BYTES);
  } catch (err) {
    throw new SignatureError(`--sign ${path}: ${errnoMessage(err)}`);
  }
  try {
    return readPrivateKey(pem);
  } catch (err) {
    throw new SignatureError(`--sign ${path}: ${(err as Error).message}`);
  }
}

export function readPublicKey(pem: string | Buffer): KeyObject {
  // The private key would work (a public key derives from it), but it must not be spread over gateways.
  if (containsPrivateKey(pem)) throw new SignatureError('this is a private key; give the gateway the public key (NAME.pub from `mtlsgate keygen`)');
  try {
    return ed25519(createPublicKey(pem), 'the bundle public key');
  } catch (err) {
    if (err instanceof SignatureError) throw err;
    throw new SignatureError('the bundle public key is not a PEM public key (`mtlsgate keygen` writes NAME.pub)');
  }
}

/** "ed25519:<key id>:<signed at>:<base64>" over `digest` and the time (ms since the epoch). */
export function signDigest(digest: string, privateKey: KeyObject, signedAtMs: number): string {
  const signedAt = new Date(signedAtMs).toISOString();
  return `ed25519:${keyId(privateKey)}:${signedAt}:${sign(null, signatureMessage(digest, signedAt), privateKey).toString('base64')}`;
}

/** The header of a bundle or manifest (bundle/header.ts); throws SignatureError. */
function signedHeader(bytes: Buffer): DocumentHeader {
  try {
    return readHeader(bytes, SIGNED_FORMATS, 'bundle');
  } catch (err) {
    throw err instanceof HeaderError ? new SignatureError(err.message) : err;
  }
}

/**
 * The bundle with a v2 signature in its header (replacing any earlier one), signed now (or at
 * `signedAtMs`: tests that make an older bundle).
 */
export function signBundle(bytes: Buffer, privateKey: KeyObject, signedAtMs = nextSigningTime()): Buffer {
  const { digest, digestEnd, signatureEnd } = signedHeader(bytes);
  const field = Buffer.from(`${SIGNATURE_MARK}${signDigest(digest, privateKey, signedAtMs)}`, 'latin1');
  // Keep `digest` and the rest (from the closing quote before "content") byte for byte.
  return Buffer.concat([bytes.subarray(0, digestEnd), field, bytes.subarray(signatureEnd)]);
}

/** A verified signature: the digest it covers, the key, and (v2) when it was signed. */
export interface VerifiedSignature {
  digest: string;
  keyId: string;
  /** ms since the epoch; null for a v1 signature, which carries no time. */
  signedAt: number | null;
  /** The signature field itself ("ed25519:<key id>:<signed at>:<base64>"): what lets another process verify it (a cluster's primary). */
  signature: string;
}

/**
 * Checks that the header's signature is by `publicKey` over the header's digest (and, v2, its
 * signing time). The digest itself is checked against the content by loadBundle, as for any
 * bundle; both must pass. Whether the time is late enough is the caller's (runtime/bundle-floor.ts).
 * Throws SignatureError saying what is wrong.
 */
export function verifyBundleSignature(bytes: Buffer, publicKey: KeyObject): VerifiedSignature {
  const { digest, signature } = signedHeader(bytes);
  if (signature === null)
    throw new SignatureError(`bundle is not signed; --bundle-public-key expects a signature by key ${keyId(publicKey)} (\`mtlsgate compile --sign KEYFILE\`)`);
  return verifySignedDigest(digest, signature, publicKey);
}

/**
 * A signature field ("ed25519:<key id>:[<signed at>:]<base64>") checked over `digest` without
 * the bundle: a bundle's header (above), or what a cluster worker reports it took, which the
 * primary verifies before it believes the signing time (runtime/cluster/verify-taken.ts).
 * Throws SignatureError saying what is wrong.
 */
export function verifySignedDigest(digest: string, signature: string, publicKey: KeyObject): VerifiedSignature {
  const expected = keyId(publicKey);
  const m = SIGNATURE.exec(signature);
  if (m === null) throw new SignatureError('bundle signature is not of the form ed25519:<key id>:<signed at>:<base64>');
  if (m[1] !== expected) throw new SignatureError(`bundle is signed by key ${m[1]}, not by the --bundle-public-key key ${expected}`);
  const [, , signedAt, base64] = m;
  // One spelling per instant: the time read back must be the time written (no 25:00, no Feb 30).
  const signedAtMs = signedAt === undefined ? null : Date.parse(signedAt);
  if (signedAtMs !== null && (Number.isNaN(signedAtMs) || new Date(signedAtMs).toISOString() !== signedAt))
    throw new SignatureError(`bundle signature's time ${signedAt} is not a valid instant`);
  const message = signedAt === undefined ? signatureMessageV1(digest) : signatureMessage(digest, signedAt);
  if (!verify(null, message, publicKey, Buffer.from(base64, 'base64'))) {
    throw new SignatureError(`bundle signature does not verify with key ${expected}: the digest or signing time was changed after signing`);
  }
  return { digest, keyId: expected, signedAt: signedAtMs, signature };
}
