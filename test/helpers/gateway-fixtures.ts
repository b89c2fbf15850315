// Fixtures for the gateway tests: demo PKI with a server certificate for the test hosts, an
// echo upstream, a gateway whose snapshot a test can swap, and curl as the client.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { createServerCert, writeDemoPki, type DemoPki, type Issued } from '../../cli/pki.ts';
import type { Bundle } from '../../bundle/types.ts';
import { fingerprintOf } from '../../cert/fingerprint.ts';
import { createGateway, type Gateway, type GatewayOptions, type RequestRecord } from '../../runtime/gateway.ts';
import { buildSnapshot, type Snapshot } from '../../runtime/snapshot.ts';

/** Hosts the test server certificate is valid for (curl --resolve points them at 127.0.0.1). */
const TEST_HOSTS = ['localhost', 'pay.example.test', 'open.example.test'];

export interface TestPki extends DemoPki {
  /** Server certificate for TEST_HOSTS. */
  testServer: Issued;
  /** Writes a PEM file in the PKI directory and returns its path. */
  file(name: string, text: string): string;
  certFile(name: string): string;
  keyFile(name: string): string;
}

export async function makePki(): Promise<{ pki: TestPki; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-gw-'));
  const demo = await writeDemoPki(dir);
  const testServer = await createServerCert(demo.ca, { dns: TEST_HOSTS });
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const pki: TestPki = {
    ...demo,
    testServer,
    file,
    certFile: (name) => join(dir, `${name}.pem`),
    keyFile: (name) => join(dir, `${name}-key.pem`),
  };
  return { pki, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface EchoUpstream {
  url: string;
  server: Server;
  /** Requests whose path contains /slow/ wait this long (ms) before answering. */
  slowMs: number;
  /** Slow requests whose connection closed before the answer (the gateway gave up on them). */
  abandoned: number;
  close(): Promise<void>;
}

/** Answers every request with JSON {method, path, headers, body}. */
export async function startEcho(): Promise<EchoUpstream> {
  const echo = { slowMs: 0, abandoned: 0 } as EchoUpstream;
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = () => {
        const body = JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'echo' });
        res.end(body);
      };
      if (req.url?.includes('/slow/')) {
        res.on('close', () => {
          if (!res.writableFinished) echo.abandoned++;
        });
        const t = setTimeout(() => {
          timers.delete(t);
          answer();
        }, echo.slowMs);
        timers.add(t);
      } else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  echo.server = server;
  echo.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  echo.close = async () => {
    for (const t of timers) clearTimeout(t);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return echo;
}

/** A loopback port nothing listens on (it was free a moment ago): a dead upstream. */
export async function deadPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface TestGateway {
  gateway: Gateway;
  port: number;
  records: RequestRecord[];
  /** Serve this bundle from the next request on. */
  use(bundle: Bundle): void;
  snapshot(): Snapshot;
  close(): Promise<void>;
}

export async function startTestGateway(pki: TestPki, bundle: Bundle, extra: Partial<GatewayOptions> = {}): Promise<TestGateway> {
  let current = buildSnapshot(bundle);
  const records: RequestRecord[] = [];
  const gateway = createGateway({
    cert: pki.testServer.certPem,
    key: pki.testServer.keyPem,
    snapshot: () => current,
    onRequest: (r) => records.push(r),
    ...extra,
  });
  const address = await gateway.listen(0, '127.0.0.1');
  return {
    gateway,
    port: address.port,
    records,
    use(next) {
      current = buildSnapshot(next);
    },
    snapshot: () => current,
    close: () => gateway.close(0),
  };
}

export interface CurlResult {
  status: number;
  body: string;
  json: { error?: string; code?: string; method?: string; path?: string; headers?: Record<string, string>; body?: string };
  headers: Record<string, string>;
  stderr: string;
}

export interface CurlOptions {
  /** Client certificate name in the PKI (cert and key files), or a path pair. */
  client?: string | { cert: string; key: string };
  host?: string;
  headers?: Record<string, string>;
  method?: string;
  data?: string;
  extra?: string[];
  /** Do not normalise the path (curl's --path-as-is). Default true. */
  pathAsIs?: boolean;
}

/** curl against the gateway; the status, body, parsed JSON body and response headers. */
export function curl(pki: TestPki, port: number, path: string, opts: CurlOptions = {}): Promise<CurlResult> {
  const host = opts.host ?? 'localhost';
  const args = ['-sS', '--max-time', '30', '--cacert', pki.certFile('ca'), '-D', '-', '--resolve', `${host}:${port}:127.0.0.1`];
  if (opts.pathAsIs !== false) args.push('--path-as-is');
  if (typeof opts.client === 'string') args.push('--cert', pki.certFile(opts.client), '--key', pki.keyFile(opts.client));
  else if (opts.client) args.push('--cert', opts.client.cert, '--key', opts.client.key);
  for (const [name, value] of Object.entries(opts.headers ?? {})) args.push('-H', `${name}: ${value}`);
  if (opts.method) args.push('-X', opts.method);
  if (opts.data !== undefined) args.push('--data-binary', opts.data);
  args.push(...(opts.extra ?? []), `https://${host}:${port}${path}`);
  return new Promise((resolve, reject) => {
    execFile('curl', args, { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl ${args.join(' ')} failed: ${stderr || err.message}`));
      // -D - prints every header block: skip the interim ones (100 Continue).
      let rest = stdout;
      while (/^HTTP\/[\d.]+ 1\d\d/.test(rest)) rest = rest.slice(rest.indexOf('\r\n\r\n') + 4);
      const split = rest.indexOf('\r\n\r\n');
      const head = rest.slice(0, split);
      const body = rest.slice(split + 4);
      const lines = head.split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      let json: CurlResult['json'] = {};
      try {
        json = JSON.parse(body);
      } catch {
        // not JSON: json stays empty
      }
      resolve({ status, body, json, headers, stderr });
    });
  });
}

/** An intermediate CA issued by `root` (cli/pki.ts issues leaves only). */
export async function createIntermediateCa(root: Issued, commonName: string): Promise<Issued> {
  const x509 = await import('@peculiar/x509');
  const { webcrypto } = await import('node:crypto');
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0' + Date.now().toString(16),
    subject: `CN=${commonName}, O=mtlsgate test`,
    issuer: root.cert.subject,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 365 * 86_400_000),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey: root.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.cert, false),
    ],
  });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as import('node:crypto').webcrypto.CryptoKey);
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem: x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n',
    fingerprint: fingerprintOf(new Uint8Array(cert.rawData)),
    cert,
    keys,
  };
}

/** A raw HTTP/1.1 client over TLS (requests written byte for byte): what it received, and whether the gateway closed it. */
export async function rawTlsClient(
  pki: TestPki,
  port: number,
): Promise<{ socket: TLSSocket; received: () => string; closed: () => boolean; whenClosed: Promise<void> }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem, ALPNProtocols: ['http/1.1'] });
  await new Promise((r) => socket.once('secureConnect', r));
  let got = '';
  let closed = false;
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => {});
  const whenClosed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.once('close', () => (closed = true));
  return { socket, received: () => got, closed: () => closed, whenClosed };
}
