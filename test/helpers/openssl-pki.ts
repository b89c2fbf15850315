// A PKI made with the openssl CLI, as an operator would make one: a CA run by `openssl ca`
// (index.txt, serials), leaves with subject alternative names (SPIFFE URI, DNS, email),
// revocation with `openssl ca -revoke` and CRLs with `openssl ca -gencrl`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpensslLeaf {
  name: string;
  cert: string;
  key: string;
  certPem: string;
  /** DER bytes of the certificate. */
  der: Buffer;
}

export interface OpensslCa {
  dir: string;
  caCert: string;
  caPem: string;
  /** Issues a client leaf; `san` like "URI:spiffe://corp.example/x,DNS:a.example". */
  issue(name: string, subject: string, san?: string): OpensslLeaf;
  revoke(leaf: OpensslLeaf): void;
  /** A CRL (PEM) of everything revoked so far, valid for `hours` (openssl's -crlhours). */
  /** A CRL valid `hours` (the CA's default otherwise), with thisUpdate `lastUpdate` (now otherwise). */
  gencrl(hours?: number, lastUpdate?: Date): string;
  cleanup(): void;
}

function run(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createOpensslCa(name = 'Test Internal CA'): OpensslCa {
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-openssl-'));
  // The root first: its req config (ca.cnf) is then replaced by the `openssl ca` one.
  opensslRootCa(dir, name, 365);
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ ca ]',
      'default_ca = CA_default',
      '[ CA_default ]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'new_certs_dir = $dir',
      'certificate = $dir/ca.pem',
      'private_key = $dir/ca-key.pem',
      'serial = $dir/serial',
      'crlnumber = $dir/crlnumber',
      'default_md = sha256',
      'default_days = 30',
      'default_crl_days = 7',
      'policy = policy_any',
      'unique_subject = no',
      'copy_extensions = copy',
      'utf8 = yes',
      'string_mask = utf8only',
      '[ policy_any ]',
      'commonName = supplied',
      'organizationName = optional',
      '[ leaf ]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = clientAuth',
      '',
    ].join('\n'),
  );
  const caCert = join(dir, 'ca.pem');
  return {
    dir,
    caCert,
    caPem: readFileSync(caCert, 'utf8'),
    issue(leafName, subject, san) {
      const key = join(dir, `${leafName}-key.pem`);
      const csr = join(dir, `${leafName}.csr`);
      const cert = join(dir, `${leafName}.pem`);
      const req = ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-utf8', '-keyout', key, '-out', csr, '-subj', subject];
      if (san) req.push('-addext', `subjectAltName=${san}`);
      run(req, dir);
      run(['ca', '-batch', '-config', 'ca.cnf', '-extensions', 'leaf', '-notext', '-in', csr, '-out', cert], dir);
      const certPem = readFileSync(cert, 'utf8');
      const der = Buffer.from(certPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
      return { name: leafName, cert, key, certPem, der };
    },
    revoke(leaf) {
      run(['ca', '-config', 'ca.cnf', '-revoke', leaf.cert], dir);
    },
    gencrl(hours, lastUpdate) {
      const out = join(dir, `crl-${Date.now()}.pem`);
      const args = ['ca', '-config', 'ca.cnf', '-gencrl', '-out', out];
      if (hours !== undefined) args.push('-crlhours', String(hours));
      // GeneralizedTime, YYYYMMDDHHMMSSZ.
      if (lastUpdate !== undefined) args.push('-crl_lastupdate', `${lastUpdate.toISOString().replace(/[-:T]|\.\d+/g, '')}`);
      run(args, dir);
      return readFileSync(out, 'utf8');
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A certificate made by `openssl x509 -req` in `dir`: a new P-256 key (`NAME-key.pem`), `subject`,
 * signed by `issuer` (`ISSUER.pem` + `ISSUER-key.pem` in `dir`), with the extensions given as
 * openssl config lines (`basicConstraints = critical, CA:true` ...). Writes `NAME.pem`.
 */
export function opensslIssue(dir: string, name: string, issuer: string, subject: string, extensions: string, serial: number): OpensslLeaf {
  const key = join(dir, `${name}-key.pem`);
  const cert = join(dir, `${name}.pem`);
  writeFileSync(join(dir, `${name}.ext`), `[ext]\n${extensions}\n`);
  run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', `${name}.csr`, '-subj', subject], dir);
  run(
    [
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}-key.pem`, '-out', cert, '-days', '10'],
      ...['-extfile', `${name}.ext`, '-extensions', 'ext', '-set_serial', String(serial)],
    ],
    dir,
  );
  const certPem = readFileSync(cert, 'utf8');
  return { name, cert, key, certPem, der: Buffer.from(certPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64') };
}

/**
 * A self-signed certificate made by `openssl req -x509` in `dir` (`NAME.pem`, `NAME-key.pem`),
 * with exactly the extensions given as openssl config lines (none of openssl.cnf's defaults):
 * a CA with a defect, or a certificate that signs without being a CA.
 */
export function opensslSelfSigned(dir: string, name: string, subject: string, extensions: string, days = 365): OpensslLeaf {
  const key = join(dir, `${name}-key.pem`);
  const cert = join(dir, `${name}.pem`);
  const config = join(dir, `${name}.cnf`);
  writeFileSync(config, `[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\nCN = ${subject}\n[ext]\n${extensions}\n`);
  run(
    [
      'req',
      '-x509',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      String(days),
      '-config',
      config,
    ],
    dir,
  );
  const certPem = readFileSync(cert, 'utf8');
  return { name, cert, key, certPem, der: Buffer.from(certPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64') };
}

/**
 * A self-signed root CA as an operator makes one: P-256 key, basicConstraints CA:true and
 * keyUsage keyCertSign + cRLSign (both critical), written as DIR/ca.pem and DIR/ca-key.pem (and
 * the request's config, DIR/ca.cnf, which an `openssl ca` setup then replaces). Used by the
 * tests' `openssl ca` PKI and the bench's big CRL.
 */
export function opensslRootCa(dir: string, commonName: string, days: number): void {
  opensslSelfSigned(dir, 'ca', commonName, 'basicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign, cRLSign', days);
}

/** A client of `dir`: its chain file as sent (leaf first), its key file, and `openssl verify -purpose sslclient`'s verdict against `dir`/ca.pem. */
export interface OpensslClient {
  cert: string;
  key: string;
  opensslOk: boolean;
}

/** The client `name` of `dir` (NAME.pem, NAME-key.pem) sending the certificates `above` behind its leaf (writes NAME-chain.pem). */
export function opensslClient(dir: string, name: string, ...above: string[]): OpensslClient {
  const cert = join(dir, `${name}-chain.pem`);
  writeFileSync(cert, [name, ...above].map((n) => readFileSync(join(dir, `${n}.pem`), 'utf8')).join(''));
  const untrusted = above.length > 0 ? ['-untrusted', join(dir, `${above[0]}.pem`)] : [];
  const verify = spawnSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'ca.pem'), ...untrusted, join(dir, `${name}.pem`)]);
  return { cert, key: join(dir, `${name}-key.pem`), opensslOk: verify.status === 0 };
}
