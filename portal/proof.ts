// Proof of possession: the portal accepts a certificate only from someone who holds its
// private key. It hands out a one-time challenge, bound to the browser that asked for it; the
// developer signs it on their machine with `openssl dgst -sha256 -sign` and pastes the
// signature; the portal verifies it against the public key of the certificate submitted with
// it. Holding only someone else's public certificate (it is public: it is sent in every TLS
// handshake) is then not enough to register it.
import { randomBytes, verify, type KeyObject, X509Certificate } from 'node:crypto';

/** What is signed: a fixed prefix (so the signature means nothing elsewhere) and the nonce. */
export const CHALLENGE_PREFIX = 'mtlsgate-portal-proof:';
const CHALLENGE = /^mtlsgate-portal-proof:[A-Za-z0-9_-]{32}$/;

/** How long a challenge stays usable once shown. */
export const CHALLENGE_TTL_MS = 30 * 60_000;
/** Outstanding challenges kept at most (the oldest are forgotten first). */
const MAX_OUTSTANDING = 10_000;

/** The command shown to the developer; `keyFile` is the name used in the page's instructions. */
export function signCommand(challenge: string, keyFile = 'my-key.pem'): string {
  return `printf '%s' '${challenge}' | openssl dgst -sha256 -sign ${keyFile} | openssl base64 -A`;
}

interface Outstanding {
  /** The browser (or session) the challenge was shown to. */
  binding: string;
  expiresAt: number;
}

/** Challenges handed out and not yet used, each usable once, by the browser it was shown to. */
export class ChallengeStore {
  private readonly outstanding = new Map<string, Outstanding>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A fresh challenge for this binding, or the one it still holds when `current` is that. */
  challengeFor(binding: string, current?: unknown): string {
    if (typeof current === 'string' && this.isValid(binding, current)) return current;
    this.sweep();
    const challenge = CHALLENGE_PREFIX + randomBytes(24).toString('base64url');
    this.outstanding.set(challenge, { binding, expiresAt: this.now() + CHALLENGE_TTL_MS });
    return challenge;
  }

  isValid(binding: string, challenge: string): boolean {
    const found = CHALLENGE.test(challenge) ? this.outstanding.get(challenge) : undefined;
    return found !== undefined && found.binding === binding && found.expiresAt > this.now();
  }

  /** Uses the challenge up: true when it was valid for this binding. */
  consume(binding: string, challenge: string): boolean {
    if (!this.isValid(binding, challenge)) return false;
    this.outstanding.delete(challenge);
    return true;
  }

  private sweep(): void {
    const now = this.now();
    for (const [challenge, o] of this.outstanding) if (o.expiresAt <= now) this.outstanding.delete(challenge);
    // Map iteration is insertion order: the first entries are the oldest.
    while (this.outstanding.size >= MAX_OUTSTANDING) this.outstanding.delete(this.outstanding.keys().next().value!);
  }
}

export type ProofProblem = 'missing' | 'malformed' | 'unsupported_key' | 'mismatch';

/** The digest `verify` needs for this key type: sha256 for RSA and ECDSA (what openssl dgst -sha256 makes). */
function digestFor(key: KeyObject): 'sha256' | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
    case 'ec':
      return 'sha256';
    default:
      return undefined;
  }
}

/**
 * Checks that `signatureB64` is the signature of `challenge` by the private key of the
 * certificate `certPem`, as `openssl dgst -sha256 -sign KEY` makes it (RSA PKCS#1 v1.5, or
 * DER-encoded ECDSA), base64-encoded. Returns null when it is, else the problem.
 */
export function checkProof(certPem: string, challenge: string, signatureB64: string): ProofProblem | null {
  const compact = signatureB64.replace(/\s+/g, '');
  if (compact === '') return 'missing';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length > 2048) return 'malformed';
  let key: KeyObject;
  try {
    key = new X509Certificate(certPem).publicKey;
  } catch {
    return 'unsupported_key';
  }
  const digest = digestFor(key);
  if (digest === undefined) return 'unsupported_key';
  try {
    return verify(digest, Buffer.from(challenge, 'utf8'), key, Buffer.from(compact, 'base64')) ? null : 'mismatch';
  } catch {
    // A signature of the wrong shape for this key (e.g. an ECDSA blob that is not DER).
    return 'mismatch';
  }
}

export function proofMessage(problem: ProofProblem): string {
  switch (problem) {
    case 'missing':
      return 'Sign the challenge with your private key (the command above) and paste its output: the portal accepts a certificate only from whoever holds its private key.';
    case 'malformed':
      return 'The signature is not base64 text. Paste exactly what the command printed (one line ending in = or a letter).';
    case 'unsupported_key':
      return 'The certificate has a key type the portal cannot check (RSA and ECDSA keys are supported). Use an RSA or ECDSA (P-256) certificate.';
    case 'mismatch':
      return 'The signature does not match this certificate: sign the challenge shown on this page with the private key of the certificate you submitted.';
  }
}
