// `mtlsgate fingerprint FILE...`: the sha256:<hex> of every certificate in PEM (or DER) files,
// the form `client_certificates` accepts and the gateway's errors and logs print.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fingerprintOf, formatPin } from '../../cert/fingerprint.ts';
import { containsPrivateKey } from '../../cert/private-key.ts';
import { certificateDers } from '../../cert/read.ts';
import { oneLineName } from '../../cert/subject.ts';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.ts';
import { errnoMessage } from '../../common/errno.ts';

const usage = `usage: mtlsgate fingerprint FILE... [--json]

Prints "sha256:<hex>  <subject>" for every certificate in each PEM file (a DER file holding
one certificate works too). The fingerprint is the SHA-256 of the certificate's DER bytes,
lowercase hex: the value an API's client_certificates accepts as "sha256:<hex>" and the one
the gateway logs and names in "Certificate with SHA256 <hex> not allowed". (The config also
accepts the line \`openssl x509 -noout -fingerprint -sha256 -in FILE\` prints, AB:CD:...)

Options:
  --json   one JSON array of {file, fingerprint, subject, issuer, ca, not_after}

Exit status: 0, or 2 when a file cannot be read or holds no certificate.`;

export interface CertificateInfo {
  file: string;
  fingerprint: string;
  subject: string;
  issuer: string;
  ca: boolean;
  not_after: string;
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

/** Every certificate in one file; throws with a message that says what the file holds instead. */
export function certificatesIn(file: string): CertificateInfo[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${errnoMessage(err)}`);
  }
  const text = bytes.toString('latin1');
  const blocks = certificateDers(text);
  if (blocks.length === 0) {
    // Not PEM: perhaps one DER certificate.
    try {
      return [describe(file, new X509Certificate(bytes))];
    } catch {
      const holds = containsPrivateKey(bytes) ? ' (it holds a private key, which has no fingerprint here)' : '';
      throw new Error(`${file} holds no certificate${holds}: expected a PEM "-----BEGIN CERTIFICATE-----" block or a DER certificate`);
    }
  }
  return blocks.map((der, i) => {
    try {
      return describe(file, new X509Certificate(der));
    } catch (err) {
      throw new Error(`${file}: certificate #${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

export const command: Command = {
  name: 'fingerprint',
  summary: 'sha256:<hex> of each certificate in a PEM file',
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean', default: false } } });
    if (positionals.length === 0) throw new UsageError('expected a PEM file');
    const found: CertificateInfo[] = [];
    try {
      for (const file of positionals) found.push(...certificatesIn(file));
    } catch (err) {
      console.error(`mtlsgate fingerprint: ${(err as Error).message}`);
      return 2;
    }
    if (values.json) {
      console.log(JSON.stringify(found, null, 2));
    } else {
      const showFile = positionals.length > 1;
      for (const c of found) console.log(`${c.fingerprint}  ${c.subject}${c.ca ? '  [CA]' : ''}${showFile ? `  (${c.file})` : ''}`);
    }
    return 0;
  },
};
