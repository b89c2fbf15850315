// `mtlsgate fingerprint FILE...`: the sha256:<hex> of every certificate in PEM (or DER) files,
// the form `client_certificates` accepts and the gateway's errors and logs print. Partial
// results: a file without a certificate (a private key, say) is warned about and skipped, the
// others are still printed, and the exit status says something was skipped.
import { X509Certificate } from 'node:crypto';
import { fingerprintOf, formatPin } from '../../cert/fingerprint.ts';
import { containsPrivateKey } from '../../cert/private-key.ts';
import { certificateDers, MAX_CERT_FILE_BYTES } from '../../cert/read.ts';
import { oneLineName } from '../../cert/subject.ts';
import { UsageError, type Command } from '../command.ts';
import { errnoMessage } from '../../common/errno.ts';
import { visibleText } from '../../common/visible-text.ts';
import { describePath, readInput, STDIO } from '../io.ts';
import { FORMAT_OPTIONS, parseFormat, Reporter } from '../report.ts';
import { parseCommandLine } from '../flags.ts';

const usage = `usage: mtlsgate fingerprint FILE|-... [--format text|json|github]

Prints "sha256:<hex>  <subject>" for every certificate in each PEM file (a DER file holding
one certificate works too; "-" reads standard input). The fingerprint is the SHA-256 of the
certificate's DER bytes, lowercase hex: the value an API's client_certificates accepts as
"sha256:<hex>" and the one the gateway logs and names in "Certificate with SHA256 <hex> not
allowed". A file without a certificate (a private key) is warned about and skipped; the other
files are still printed.

Options:
  --format text|json|github   json: the envelope of docs/cli-conventions.md with
                              "certificates", a list of {file, fingerprint, subject,
                              issuer, ca, not_after}

Exit status: 0 every file held certificates, 1 some file held none (skipped), 2 a file
cannot be read, or bad usage.`;

export interface CertificateInfo {
  file: string;
  fingerprint: string;
  subject: string;
  issuer: string;
  ca: boolean;
  not_after: string;
}

/** A file that was read but holds no certificate (a private key, a CSR, text). */
class NoCertificateError extends Error {
  override name = 'NoCertificateError';
}

function describe(file: string, cert: X509Certificate): CertificateInfo {
  return {
    file,
    fingerprint: formatPin(fingerprintOf(cert.raw)),
    subject: oneLineName(cert.subject),
    issuer: oneLineName(cert.issuer),
    ca: cert.ca,
    not_after: new Date(cert.validTo).toISOString(),
  };
}

/** Every certificate in one file's bytes; throws NoCertificateError saying what it holds instead. */
function certificatesInBytes(file: string, bytes: Buffer): CertificateInfo[] {
  const text = bytes.toString('latin1');
  const blocks = certificateDers(text);
  if (blocks.length === 0) {
    // Not PEM: perhaps one DER certificate.
    try {
      return [describe(file, new X509Certificate(bytes))];
    } catch {
      const holds = containsPrivateKey(bytes) ? ' (it holds a private key, which has no fingerprint here)' : '';
      throw new NoCertificateError(`${file} holds no certificate${holds}: expected a PEM "-----BEGIN CERTIFICATE-----" block or a DER certificate`);
    }
  }
  return blocks.map((der, i) => {
    try {
      return describe(file, new X509Certificate(der));
    } catch (err) {
      throw new NoCertificateError(`${file}: certificate #${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

/** Every certificate in one file ("-": standard input). */
function certificatesIn(file: string): CertificateInfo[] {
  let bytes: Buffer;
  try {
    bytes = readInput(file, MAX_CERT_FILE_BYTES);
  } catch (err) {
    throw new Error(`cannot read ${describePath(file, 'in')}: ${errnoMessage(err)}`);
  }
  return certificatesInBytes(file === STDIO ? 'standard input' : file, bytes);
}

export const command: Command = {
  name: 'fingerprint',
  summary: 'sha256:<hex> of each certificate in PEM files (- = stdin)',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, FORMAT_OPTIONS);
    const format = parseFormat(values);
    if (positionals.length === 0) throw new UsageError('expected a PEM file (or - for standard input)');
    const report = new Reporter('fingerprint', format);
    const found: CertificateInfo[] = [];
    let unreadable = false;
    const showFile = positionals.length > 1;
    for (const file of positionals) {
      let certs: CertificateInfo[];
      try {
        certs = certificatesIn(file);
      } catch (err) {
        if (err instanceof NoCertificateError) report.warning('not_a_certificate', `skipped ${err.message}`, { file });
        else {
          unreadable = true;
          report.error('io', (err as Error).message, { file });
        }
        continue;
      }
      found.push(...certs);
      // A subject is text from the certificate: "CN=evil\u202egpj.exe" must not show as "CN=evilexe.jpg".
      if (format !== 'json')
        for (const c of certs) console.log(visibleText(`${c.fingerprint}  ${c.subject}${c.ca ? '  [CA]' : ''}${showFile ? `  (${c.file})` : ''}`));
    }
    const code = unreadable ? 2 : report.warnings.length > 0 ? 1 : 0;
    report.finish({ certificates: found }, code === 0);
    return code;
  },
};
