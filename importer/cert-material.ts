// Certificates the import holds as PEM, by SHA-256 fingerprint: what the generated mTLS access
// tests (importer/mtls-tests.ts) present. Tyk names a certificate by id (org id + the SHA-256 of
// its DER), and its API returns only a certificate's metadata, never its PEM; so an id alone
// leaves the import nothing to send. Material comes from `--certs DIR` (every *.pem, *.crt, *.cer
// below it, any file name: each is matched to the ids by its fingerprint) and from certificate
// files a definition names by path and the import copies (importer/cert-files.ts).
import { X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { certificateDers, derToPem, MAX_CERT_FILE_BYTES } from '../cert/read.ts';
import { errnoMessage } from '../common/errno.ts';
import { filesUnder } from '../common/files-under.ts';
import { readRegularFile } from '../common/regular-file.ts';
import type { CertCopies } from './cert-files.ts';
import { FatalImportError } from './report.ts';

interface Held {
  /** Where it came from: a --certs file (absolute), or the certs/ copy of a definition's file. */
  source: string;
  /** Its path under OUT once written (certs/NAME), or undefined until a test needs it. */
  outPath?: string;
  /** The certificate blocks only (leaf first, then its chain), never a private key. */
  pem: string;
}

const CERT_FILE = /\.(pem|crt|cer)$/i;

export class CertMaterial {
  private readonly byFingerprint = new Map<string, Held>();
  /** The --certs directory, when one was given (the report names it). */
  readonly dir: string | undefined;

  constructor(dir?: string) {
    this.dir = dir;
    if (dir === undefined) return;
    let files: string[];
    try {
      files = filesUnder(resolve(dir), { skipHidden: true });
    } catch (err) {
      throw new FatalImportError(dir, '', `--certs: cannot read: ${errnoMessage(err)}`);
    }
    for (const file of files) {
      if (!CERT_FILE.test(file)) continue;
      let ders: Buffer[];
      try {
        ders = certificateDers(readRegularFile(file, MAX_CERT_FILE_BYTES).toString('latin1'));
      } catch {
        continue; // unreadable or not a regular file: it names no certificate
      }
      if (ders.length === 0) continue; // a private key or other PEM: nothing to present
      const fp = fingerprintOf(ders[0]);
      if (!this.byFingerprint.has(fp)) this.byFingerprint.set(fp, { source: file, pem: ders.map(derToPem).join('') });
    }
  }

  /** A certificate file the import copied to OUT/certs/NAME (cert-files.ts): material under that name. */
  addCopied(outPath: string, pem: string): void {
    const ders = certificateDers(pem);
    if (ders.length === 0) return;
    const fp = fingerprintOf(ders[0]);
    if (!this.byFingerprint.has(fp)) this.byFingerprint.set(fp, { source: outPath, outPath, pem });
  }

  has(fingerprint: string): boolean {
    return this.byFingerprint.has(fingerprint);
  }

  /** The fingerprint of the certificate copied to OUT as `outPath` (certs/NAME), if it is held. */
  fingerprintAt(outPath: string): string | undefined {
    for (const [fp, held] of this.byFingerprint) if (held.outPath === outPath) return fp;
    return undefined;
  }

  /**
   * When a test presenting the certificate may be decided: `keyAt` (a key's last good instant),
   * moved before the certificate's notAfter when that comes first; now when there is no key
   * expiry. Or why no instant will do (expired, not valid yet, unreadable).
   */
  instant(fingerprint: string, keyAt?: number): { at?: number } | { why: string } {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(this.byFingerprint.get(fingerprint)!.pem);
    } catch {
      return { why: 'node cannot read it as a certificate' };
    }
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    if (keyAt === undefined) {
      const now = Date.now();
      if (now < from) return { why: `it is not valid before ${new Date(from).toISOString()}` };
      if (now > to) return { why: `it expired on ${new Date(to).toISOString()} (Tyk refuses it too)` };
      return {};
    }
    const at = Math.min(keyAt, to - 3_600_000);
    if (at < from) return { why: `the key expires before the certificate is valid (${new Date(from).toISOString()})` };
    return { at };
  }

  /** Every fingerprint held, in the order found. */
  fingerprints(): string[] {
    return [...this.byFingerprint.keys()];
  }

  /** The path under OUT of the certificate (copied into certs/ the first time a test needs it). */
  outPath(fingerprint: string, copies: CertCopies): string {
    const held = this.byFingerprint.get(fingerprint)!;
    if (held.outPath === undefined) {
      const entry = copies.name(held.source);
      // A file a definition also names but that could not be read there: the --certs copy fills it.
      if (entry.text === null) copies.set(held.source, held.pem);
      held.outPath = `certs/${entry.name}`;
    }
    return held.outPath;
  }
}
