// Certificate generation for demos and tests (`mtlsgate certs DIR`): a CA, a server certificate
// for localhost, client certificates. Pure JS (@peculiar/x509 over WebCrypto): no openssl needed.
import { isIP } from 'node:net';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { join } from 'node:path';
import { DEMO_CERT_NAMES, DEMO_CLIENTS } from './demo-names.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export type KeyAlg = 'ec' | 'rsa';

export interface Issued {
  certPem: string;
  keyPem: string;
  /** lowercase hex SHA-256 of the certificate DER */
  fingerprint: string;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

export interface CertOptions {
  alg?: KeyAlg;
  notBefore?: Date;
  notAfter?: Date;
  /** DNS names and IPs for a server certificate. */
  dns?: string[];
  ips?: string[];
  usage?: 'server' | 'client';
}

const DAY = 86_400_000;

function algorithm(alg: KeyAlg) {
  return alg === 'rsa'
    ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 }
    : { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
}
/** The signature algorithm a CA with a key of `alg` signs with. */
export function signingAlgorithm(alg: KeyAlg) {
  return alg === 'rsa' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', hash: 'SHA-256' };
}

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

function serial(): string {
  // Positive, non-zero serial number of 16 bytes.
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0] & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

async function finish(cert: x509.X509Certificate, keys: CryptoKeyPair): Promise<Issued> {
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem: await keyPem(keys),
    fingerprint: fingerprintOf(new Uint8Array(cert.rawData)),
    cert,
    keys,
  };
}

export async function createCa(commonName: string, opts: CertOptions = {}): Promise<Issued> {
  const alg = opts.alg ?? 'ec';
  const keys = (await webcrypto.subtle.generateKey(algorithm(alg), true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const name = `CN=${commonName}, O=mtlsgate demo`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    notBefore: opts.notBefore ?? new Date(Date.now() - DAY),
    notAfter: opts.notAfter ?? new Date(Date.now() + 3650 * DAY),
    signingAlgorithm: signingAlgorithm(alg),
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return finish(cert, keys);
}

export async function issueCert(ca: Issued, commonName: string, opts: CertOptions = {}): Promise<Issued> {
  const alg = opts.alg ?? 'ec';
  const keys = (await webcrypto.subtle.generateKey(algorithm(alg), true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const usage = opts.usage ?? 'client';
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
  ];
  const names: x509.JsonGeneralName[] = [
    ...(opts.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${commonName}, O=mtlsgate demo`,
    issuer: ca.cert.subject,
    notBefore: opts.notBefore ?? new Date(Date.now() - DAY),
    notAfter: opts.notAfter ?? new Date(Date.now() + 825 * DAY),
    signingAlgorithm: signingAlgorithm(alg),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions,
  });
  return finish(cert, keys);
}

export function createServerCert(ca: Issued, opts: CertOptions = {}): Promise<Issued> {
  return issueCert(ca, 'localhost', { dns: ['localhost'], ips: ['127.0.0.1', '::1'], ...opts, usage: 'server' });
}

export { DEMO_CERT_NAMES, DEMO_CLIENTS };

export interface DemoPki {
  dir: string;
  ca: Issued;
  server: Issued;
  clients: Record<(typeof DEMO_CLIENTS)[number], Issued>;
  /** A CA nobody trusts, and a client it issued. */
  otherCa: Issued;
  stranger: Issued;
}

/**
 * One demo file, replaced whole (common/atomic-write.ts). A symbolic link at its name is refused,
 * not written through: a checkout may carry `examples/certs/ca-key.pem -> ~/.bashrc`, and `npm
 * start` writes the demo's certificates there.
 */
function writeDemoFile(path: string, text: string, mode: number): void {
  if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink())
    throw new Error(`${path} is a symbolic link: demo certificates and keys are never written through one (remove it)`);
  writeFileAtomic(path, text, { mode });
}

function writePair(dir: string, name: string, c: Issued): void {
  writeDemoFile(join(dir, `${name}.pem`), c.certPem, 0o644);
  writeDemoFile(join(dir, `${name}-key.pem`), c.keyPem, 0o600);
}

/**
 * Writes DIR/{ca,server,partner-a,alice,bob,mallory,other-ca,stranger}.pem and *-key.pem.
 * ca.pem is the demo CA; server.pem is valid for localhost, 127.0.0.1 and ::1.
 */
export async function writeDemoPki(dir: string, opts: { alg?: KeyAlg; hosts?: string[] } = {}): Promise<DemoPki> {
  mkdirSync(dir, { recursive: true });
  const ca = await createCa('mtlsgate demo CA', opts);
  // --host NAME: the server certificate names those hosts (its CN is the first) instead of localhost.
  const hosts = opts.hosts ?? [];
  const server =
    hosts.length === 0
      ? await createServerCert(ca, opts)
      : await issueCert(ca, hosts[0], { alg: opts.alg, usage: 'server', dns: hosts.filter((h) => isIP(h) === 0), ips: hosts.filter((h) => isIP(h) !== 0) });
  const clients = {} as DemoPki['clients'];
  for (const name of DEMO_CLIENTS) clients[name] = await issueCert(ca, name, opts);
  const otherCa = await createCa('untrusted CA', opts);
  const stranger = await issueCert(otherCa, 'stranger', opts);
  writePair(dir, 'ca', ca);
  writePair(dir, 'server', server);
  for (const name of DEMO_CLIENTS) writePair(dir, name, clients[name]);
  writePair(dir, 'other-ca', otherCa);
  writePair(dir, 'stranger', stranger);
  return { dir, ca, server, clients, otherCa, stranger };
}

/** True when DIR already holds a complete demo set. */
export function hasDemoPki(dir: string): boolean {
  return DEMO_CERT_NAMES.every((n) => existsSync(join(dir, `${n}.pem`)) && existsSync(join(dir, `${n}-key.pem`)));
}
