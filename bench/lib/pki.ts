// The one certificate set every contender is configured from, per key algorithm: a CA, a server
// certificate for 127.0.0.1/localhost, two pinned ("listed") clients, one client of the same CA
// that is NOT listed, and a client of another CA. Cached in bench/.work/pki-<alg>/ between runs.
import { createHash, X509Certificate } from 'node:crypto';
import { fingerprintOf } from '../../cert/fingerprint.ts';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, createServerCert, issueCert, type Issued, type KeyAlg } from '../../cli/pki.ts';

export const LISTED_CLIENTS = ['listed-1', 'listed-2'] as const;
const NAMES = ['ca', 'server', ...LISTED_CLIENTS, 'unlisted', 'other-ca', 'stranger'] as const;
type Name = (typeof NAMES)[number];

export interface PkiFile {
  cert: string;
  key: string;
  /** cert + key in one file (ab -E wants that). */
  combined: string;
  sha256: string;
  /** NGINX's $ssl_client_fingerprint is SHA-1 (lowercase hex, no colons). */
  sha1: string;
}

export interface BenchPki {
  alg: KeyAlg;
  dir: string;
  files: Record<Name, PkiFile>;
  /** The pinned clients' certificates concatenated (Caddy/HAProxy read one PEM file). */
  listedBundle: string;
}

function describe(dir: string, name: Name): PkiFile {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  const der = new X509Certificate(readFileSync(cert)).raw;
  return {
    cert,
    key,
    combined: join(dir, `${name}-combined.pem`),
    sha256: fingerprintOf(der),
    sha1: createHash('sha1').update(der).digest('hex'),
  };
}

export async function benchPki(workDir: string, alg: KeyAlg): Promise<BenchPki> {
  const dir = join(workDir, `pki-${alg}`);
  mkdirSync(dir, { recursive: true });
  if (!NAMES.every((n) => existsSync(join(dir, `${n}-combined.pem`)))) {
    const ca = await createCa(`mtlsgate bench CA (${alg})`, { alg });
    const otherCa = await createCa(`bench untrusted CA (${alg})`, { alg });
    const issued: Record<Name, Issued> = {
      ca,
      server: await createServerCert(ca, { alg }),
      'listed-1': await issueCert(ca, 'listed-1', { alg }),
      'listed-2': await issueCert(ca, 'listed-2', { alg }),
      unlisted: await issueCert(ca, 'unlisted', { alg }),
      'other-ca': otherCa,
      stranger: await issueCert(otherCa, 'stranger', { alg }),
    };
    for (const n of NAMES) {
      writeFileSync(join(dir, `${n}.pem`), issued[n].certPem);
      writeFileSync(join(dir, `${n}-key.pem`), issued[n].keyPem, { mode: 0o600 });
      writeFileSync(join(dir, `${n}-combined.pem`), issued[n].certPem + issued[n].keyPem, { mode: 0o600 });
    }
  }
  const files = Object.fromEntries(NAMES.map((n) => [n, describe(dir, n)])) as Record<Name, PkiFile>;
  const listedBundle = join(dir, 'listed-bundle.pem');
  writeFileSync(listedBundle, LISTED_CLIENTS.map((n) => readFileSync(files[n].cert, 'utf8')).join(''));
  return { alg, dir, files, listedBundle };
}
