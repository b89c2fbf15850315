// Checks what a developer submitted as "my public certificate" before anything is written:
// exactly one parseable leaf certificate, valid now, bound to no key and pinned by no API
// anywhere in the config, and no private key anywhere in the input. (That the submitter holds
// its private key is proof.ts's part.) Every refusal carries a message written for the developer.
import { X509Certificate } from 'node:crypto';
import { MAX_KEY_BITS } from '../cert/der.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { containsPrivateKey } from '../cert/private-key.ts';
import { certificateDers, notExactlyOneCertificate } from '../cert/read.ts';
import { subjectLine } from '../cert/subject.ts';

/** The key and APIs using a certificate in the compiled config (portal/compile.ts `Compiled.certificate`). */
export type CertificateLookup = (fingerprint: string) => { key: string | null; apis: readonly string[] } | undefined;

/** The largest certificate input the portal reads (a PEM leaf is 1-3 KiB). */
export const MAX_CERT_BYTES = 16 * 1024;

export const PRIVATE_KEY_REFUSAL = 'Paste only the public certificate; a private key never leaves your machine. Nothing you sent was stored.';

export type CertProblem =
  | 'missing'
  | 'too_large'
  | 'private_key'
  | 'no_certificate'
  | 'several'
  | 'unparseable'
  | 'ca'
  | 'key_size'
  | 'expired'
  | 'not_yet_valid'
  | 'bound'
  | 'pinned';

export interface ValidCertificate {
  ok: true;
  /** Normalised PEM of the one certificate (re-encoded from its DER, so no stray text). */
  pem: string;
  /** Lowercase hex SHA-256 of the DER. */
  fingerprint: string;
  subject: string;
  notAfter: Date;
}

export interface RefusedCertificate {
  ok: false;
  problem: CertProblem;
  message: string;
}

function refuse(problem: CertProblem, message: string): RefusedCertificate {
  return { ok: false, problem, message };
}

/**
 * Validates the submitted bytes (pasted text or an uploaded PEM/DER file) against the current
 * compiled config. Never returns or echoes any part of the input on a private-key refusal.
 */
export function validateCertificate(input: Buffer, used: CertificateLookup, now: Date = new Date()): ValidCertificate | RefusedCertificate {
  if (input.length > MAX_CERT_BYTES) {
    return refuse(
      'too_large',
      `The certificate input is larger than ${MAX_CERT_BYTES / 1024} KiB. A client certificate is 1-3 KiB: paste only your own certificate.`,
    );
  }
  const text = input.toString('latin1');
  if (text.trim() === '') return refuse('missing', 'Paste your public certificate (PEM, starting with -----BEGIN CERTIFICATE-----) or choose its file.');
  if (containsPrivateKey(input)) {
    return refuse('private_key', PRIVATE_KEY_REFUSAL);
  }
  const blocks = certificateDers(text);
  let cert: X509Certificate;
  if (blocks.length === 0) {
    // No PEM block: an uploaded DER certificate is fine, anything else is not a certificate.
    try {
      cert = new X509Certificate(input);
    } catch {
      return refuse(
        'no_certificate',
        'No certificate found. Expected a PEM block from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE----- (or a DER certificate file).',
      );
    }
  } else if (blocks.length > 1) {
    return refuse(
      'several',
      `Found ${blocks.length} certificates; submit exactly one. If you pasted a chain, keep only your own certificate (the first block), not its CA.`,
    );
  } else {
    try {
      cert = new X509Certificate(blocks[0]!);
    } catch {
      return refuse(
        'unparseable',
        'The certificate block could not be parsed: it may be truncated or altered. Copy it again from your .pem file, BEGIN and END lines included.',
      );
    }
  }
  // One certificate exactly: bytes after it (a private key appended to the DER, say) are refused, not dropped.
  const inexact = notExactlyOneCertificate(blocks.length === 0 ? input : blocks[0]!, cert.raw);
  if (inexact?.extraBytes && containsPrivateKey(inexact.extraBytes)) return refuse('private_key', PRIVATE_KEY_REFUSAL);
  if (inexact) {
    return refuse(
      'unparseable',
      `The certificate ${inexact.problem.replace(/ \(.*\)$/, '')}. Submit the certificate alone: openssl x509 -in cert.pem -out only-cert.pem writes it.`,
    );
  }
  if (cert.ca) {
    return refuse('ca', 'This is a CA certificate (basicConstraints CA:TRUE). Submit the client certificate your CA issued to you, not the CA itself.');
  }
  // The compiler refuses it (E_CERT_KEY_SIZE): the gateway would verify a signature of this key on every connection.
  const bits = cert.publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits > MAX_KEY_BITS) {
    return refuse(
      'key_size',
      `This certificate's RSA key has ${bits} bits; the gateway accepts at most ${MAX_KEY_BITS}. Make a new key pair of 2,048 or 3,072 bits (or an EC key) and a certificate for it, and submit that.`,
    );
  }
  const notAfter = new Date(cert.validTo);
  const notBefore = new Date(cert.validFrom);
  if (notAfter.getTime() <= now.getTime()) {
    return refuse('expired', `This certificate expired on ${notAfter.toISOString().slice(0, 10)}. Issue a new one and submit that.`);
  }
  if (notBefore.getTime() > now.getTime()) {
    return refuse('not_yet_valid', `This certificate is not valid before ${notBefore.toISOString()}. Check the clock of the machine that issued it.`);
  }
  const fingerprint = fingerprintOf(cert.raw);
  const indexed = used(fingerprint);
  const bound = indexed?.key;
  if (bound) {
    return refuse(
      'bound',
      'This certificate is already bound to a key. A certificate identifies one key: generate a new key pair and certificate for a new request.',
    );
  }
  if (indexed && indexed.apis.length > 0) {
    return refuse(
      'pinned',
      "This certificate is already pinned by an API in the gateway's configuration. A certificate in use cannot be registered again: generate a new key pair and certificate.",
    );
  }
  return { ok: true, pem: cert.toString().trim() + '\n', fingerprint, subject: subjectLine(cert), notAfter };
}
