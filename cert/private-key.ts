// "Does this contain a private key?": one definition of the rule for the whole project. The
// compiler warns about a key next to a certificate (and never copies it), the bundle verifier
// refuses a bundle holding one, the portal refuses a submission holding one, and
// `mtlsgate fingerprint` says a file is a key rather than a certificate.
import { createPrivateKey } from 'node:crypto';

// PEM armour (BEGIN or END line: a paste may have lost its first line) of every private key
// flavour: PKCS#8 (also ENCRYPTED), PKCS#1 RSA, SEC1 EC, DSA, OpenSSH, PGP (PRIVATE KEY BLOCK)
// and SSH2's "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----"; and PuTTY's .ppk header.
// Case-insensitive: a pasted key may have been retyped. Prose that mentions a private key
// ("# no private key here") is not armour and does not match.
const PRIVATE_KEY_TEXT = /-{4,5} ?(?:BEGIN|END) [A-Z0-9 ]*PRIVATE[ -]KEY|PuTTY-User-Key-File-/i;
// Every match of PRIVATE_KEY_TEXT holds one of these words, and a text without them is settled
// ~5 times faster (the compiler asks for each of 1,000,000 certificate files).
const MAY_HOLD_KEY = /private|putty/i;
const holdsKeyText = (text: string) => MAY_HOLD_KEY.test(text) && PRIVATE_KEY_TEXT.test(text);

/** True when binary input parses as a DER private key (PKCS#8, PKCS#1 or SEC1). */
function isDerPrivateKey(bytes: Uint8Array): boolean {
  // Every DER private key is a SEQUENCE; anything else is rejected without asking OpenSSL.
  if (bytes.length < 2 || bytes[0] !== 0x30) return false;
  const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      createPrivateKey({ key, format: 'der', type });
      return true;
    } catch {
      // not this encoding
    }
  }
  return false;
}

/**
 * True when `input` holds private key material: a PEM (or PuTTY, OpenSSH, SSH2) private key
 * anywhere in it, or, for bytes with no PEM armour, a DER-encoded private key.
 */
export function containsPrivateKey(input: string | Uint8Array): boolean {
  if (typeof input === 'string') return holdsKeyText(input);
  const text = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
  if (holdsKeyText(text)) return true;
  return !text.includes('-----BEGIN') && isDerPrivateKey(input);
}
