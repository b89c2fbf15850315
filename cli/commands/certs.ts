// `mtlsgate certs DIR`: the demo PKI (a CA, a localhost server certificate, client
// certificates, and an untrusted CA with its client) that the examples and `npm start` use.
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { UsageError, type Command } from '../command.ts';
import { DEMO_CERT_NAMES, writeDemoPki, type Issued, type KeyAlg } from '../pki.ts';
import { refuseStdout } from '../io.ts';
import { FORMAT_OPTIONS, parseFormat, Reporter } from '../report.ts';
import { parseCommandLine } from '../flags.ts';

const usage = `usage: mtlsgate certs DIR [--host NAME]... [--alg ec|rsa] [--force] [--format text|json|github]

Writes a demo PKI into DIR, each as <name>.pem (certificate) and <name>-key.pem (private key,
mode 0600):
  ca          the demo CA that issued everything below except stranger
  server      server certificate for localhost, 127.0.0.1 and ::1, or for the --host names
              (for serve --tls-cert/--tls-key)
  partner-a, alice, bob, mallory   client certificates (the examples pin or bind some of them)
  other-ca    a CA nobody trusts
  stranger    a client certificate issued by other-ca
No openssl needed. These are for demos and tests: keep the -key.pem files out of version control.
Exit status: 0 written, 2 usage or I/O (a file it would overwrite without --force: exists).

Options:
  --host NAME    a DNS name or IP address the server certificate names (repeatable; its SANs,
                 and the subject CN is the first); default localhost, 127.0.0.1, ::1
  --alg ec|rsa   key algorithm: ec (P-256, default) or rsa (2048 bits)
  --force        overwrite files that already exist (refused otherwise)
  --format text|json|github
                 json: the envelope of docs/cli-conventions.md with "dir", "alg" and
                 "certificates": {name, file, key_file, fingerprint, role, hosts?} per
                 certificate, role one of ca, server, client, untrusted_ca,
                 untrusted_client (file paths only: no key material in any format)`;

const DEFAULT_HOSTS = ['localhost', '127.0.0.1', '::1'];

type Role = 'ca' | 'server' | 'client' | 'untrusted_ca' | 'untrusted_client';

/** Each file's role: a word for the JSON `role`, and the words the text listing shows. */
const ROLES: Record<(typeof DEMO_CERT_NAMES)[number], [Role, string]> = {
  ca: ['ca', 'demo CA'],
  server: ['server', `server: ${DEFAULT_HOSTS.join(', ')}`],
  'partner-a': ['client', 'client'],
  alice: ['client', 'client'],
  bob: ['client', 'client'],
  mallory: ['client', 'client'],
  'other-ca': ['untrusted_ca', 'untrusted CA'],
  stranger: ['untrusted_client', 'client of the untrusted CA'],
};

// A label as host names have them (letters, digits, inner hyphens, at most 63); a wildcard
// only as the whole leftmost label of a name with two more labels, as CAs issue them. Anything
// else would make a certificate no TLS client matches, so it is refused before a file is written.
const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

function isHostName(name: string): boolean {
  const labels = name.split('.');
  if (name.length > 253) return false;
  if (labels[0] === '*') return labels.length >= 3 && labels.slice(1).every((l) => LABEL.test(l));
  return labels.every((l) => LABEL.test(l));
}

export const command: Command = {
  name: 'certs',
  summary: 'demo CA, server and client certificates (no openssl needed)',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, {
      alg: { type: 'string', default: 'ec' },
      force: { type: 'boolean', default: false },
      host: { type: 'string', multiple: true },
      ...FORMAT_OPTIONS,
    });
    const format = parseFormat(values);
    if (positionals.length !== 1) throw new UsageError(`expected one directory (got ${positionals.length} arguments)`);
    if (values.alg !== 'ec' && values.alg !== 'rsa') throw new UsageError(`--alg must be ec or rsa, not ${JSON.stringify(values.alg)}`);
    for (const host of values.host ?? []) {
      if (isIP(host) === 0 && !isHostName(host)) throw new UsageError(`--host ${JSON.stringify(host)} is not a DNS name or an IP address`);
    }
    const dir = positionals[0];
    refuseStdout(dir, 'a directory of certificates and keys', 'a directory: mtlsgate certs pki');
    const report = new Reporter('certs', format);
    const files = DEMO_CERT_NAMES.flatMap((n) => [join(dir, `${n}.pem`), join(dir, `${n}-key.pem`)]);
    const existing = files.filter((f) => existsSync(f));
    if (existing.length > 0 && !values.force) {
      if (format === 'text') {
        console.error(`mtlsgate certs: refusing to overwrite ${existing.length} existing file(s) in ${dir}:`);
        for (const f of existing) console.error(`  ${f}`);
        console.error('Pass --force to replace them (every certificate pinned by fingerprint changes).');
      } else
        report.error(
          'exists',
          `refusing to overwrite ${existing.length} existing file(s) in ${dir} (${existing.join(', ')}); pass --force to replace them (every certificate pinned by fingerprint changes)`,
        );
      report.finish({ dir, alg: values.alg, certificates: [], existing });
      return 2;
    }
    let pki;
    try {
      pki = await writeDemoPki(dir, { alg: values.alg as KeyAlg, hosts: values.host });
    } catch (err) {
      report.error('io', `cannot write ${dir}: ${(err as Error).message}`);
      report.finish({ dir, alg: values.alg, certificates: [] });
      return 2;
    }
    const byName: Record<(typeof DEMO_CERT_NAMES)[number], Issued> = {
      ca: pki.ca,
      server: pki.server,
      ...pki.clients,
      'other-ca': pki.otherCa,
      stranger: pki.stranger,
    };
    const certificates = DEMO_CERT_NAMES.map((name) => ({
      name,
      file: join(dir, `${name}.pem`),
      key_file: join(dir, `${name}-key.pem`),
      fingerprint: `sha256:${byName[name].fingerprint}`,
      role: ROLES[name][0],
      ...(name === 'server' ? { hosts: values.host ?? DEFAULT_HOSTS } : {}),
    }));
    if (format === 'json') {
      report.finish({ dir, alg: values.alg, certificates });
      return 0;
    }
    console.log(`wrote ${files.length} files to ${dir} (${values.alg === 'rsa' ? 'RSA 2048' : 'EC P-256'}), each <name>.pem with its <name>-key.pem:`);
    const width = Math.max(...DEMO_CERT_NAMES.map((n) => n.length));
    for (const c of certificates) {
      console.log(
        `  ${`${c.name}.pem`.padEnd(width + 4)}  ${c.fingerprint}  ${c.name === 'server' && values.host ? `server: ${values.host.join(', ')}` : ROLES[c.name][1]}`,
      );
    }
    console.log('The *-key.pem files are private keys: keep them out of version control.');
    return 0;
  },
};
