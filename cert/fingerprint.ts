// A certificate's identity everywhere in mtlsgate: the SHA-256 of its DER bytes, lowercase hex
// (64 characters). The bundle indexes it, the gateway computes it once per TLS connection,
// `mtlsgate fingerprint` prints it as "sha256:<hex>", and a user may paste it back as a pin.
import { hash } from 'node:crypto';

/** Lowercase hex SHA-256 of a certificate's DER bytes. */
export function fingerprintOf(der: Uint8Array): string {
  // crypto.hash (one shot) is quicker than createHash().update().digest() for a few KiB.
  return hash('sha256', der, 'hex');
}

/** The form mtlsgate prints and accepts in config: "sha256:<64 lowercase hex>". */
export function formatPin(fingerprint: string): string {
  return `sha256:${fingerprint}`;
}

export type ParsedPin = { ok: true; fingerprint: string } | { ok: false; problem: string };

const PIN_PREFIX = /^(?:sha256:|sha-?256 fingerprint=)/i;
const COLON_HEX = /^[0-9a-f]{2}(?::[0-9a-f]{2})+$/i;
const HEX64 = /^[0-9a-f]{64}$/i;

/** The accepted forms, for messages. */
const PIN_FORMS =
  'sha256:<64 hex> (as `mtlsgate fingerprint FILE` prints it) or the output of `openssl x509 -noout -fingerprint -sha256 -in FILE` (AB:CD:… with or without its "sha256 Fingerprint=" prefix)';

/**
 * A user-supplied SHA-256 pin, in the forms users paste:
 *   sha256:3f2a…            (mtlsgate's own form; hex in either case)
 *   3F:2A:…:9C              (what `openssl x509 -fingerprint -sha256` prints)
 *   sha256 Fingerprint=3F:2A:…   SHA256 Fingerprint=3F:2A:…   (the same line with OpenSSL 3's or 1.1's prefix)
 * Returns null when the text does not look like a pin at all (so a caller may read it as a file
 * path or PEM instead), and a problem when it looks like one but is not a valid SHA-256.
 */
export function parsePin(text: string): ParsedPin | null {
  const trimmed = text.trim();
  const prefix = PIN_PREFIX.exec(trimmed)?.[0] ?? '';
  const body = trimmed.slice(prefix.length).trim();
  const colons = COLON_HEX.test(body);
  if (prefix === '' && !colons) return null;
  const hex = colons ? body.replaceAll(':', '') : body;
  if (!HEX64.test(hex)) {
    const got = colons ? `${hex.length / 2} bytes` : `${JSON.stringify(body.length > 80 ? body.slice(0, 77) + '...' : body)}`;
    return { ok: false, problem: `is not a SHA-256 fingerprint (32 bytes; got ${got}): write ${PIN_FORMS}` };
  }
  return { ok: true, fingerprint: hex.toLowerCase() };
}
