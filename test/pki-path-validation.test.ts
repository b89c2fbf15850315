// Issue 10 item 6: client certificate paths validated as RFC 5280 says, through the real
// gateway with curl. Each case was admitted before: a leaf not yet valid (pinned, and under a
// CA entry), a chain through an intermediate whose pathLenConstraint forbids it, an
// intermediate without keyCertSign, a leaf whose extendedKeyUsage lacks clientAuth (the
// gateway's own server certificate among them).
import assert from 'node:assert/strict';
import { createHash, webcrypto } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { issueCert, type Issued } from '../cli/pki.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { closeGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

const DAY = 86_400_000;

/** An intermediate CA under `parent` with the given pathLen and key usage. */
async function intermediate(parent: Issued, name: string, pathLen: number | undefined, keyCertSign: boolean): Promise<Issued> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const usage = keyCertSign ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature : x509.KeyUsageFlags.digitalSignature;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `01${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`,
    subject: `CN=${name}, O=mtlsgate test`,
    issuer: parent.cert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey: parent.keys.privateKey,
    extensions: [new x509.BasicConstraintsExtension(true, pathLen, true), new x509.KeyUsagesExtension(usage, true)],
  });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as webcrypto.CryptoKey);
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem: x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n',
    fingerprint: createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex'),
    cert,
    keys,
  };
}

describe('RFC 5280 path validation of client certificates', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  const chains: Record<string, { cert: string; key: string }> = {};

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    const future = await issueCert(pki.ca, 'future', { notBefore: new Date(Date.now() + 10 * DAY), notAfter: new Date(Date.now() + 100 * DAY) });
    const server = await issueCert(pki.ca, 'some-server', { usage: 'server' });
    // root -> i0 (pathLen 0) -> i1 -> leaf: i0 may not have an intermediate below it.
    const i0 = await intermediate(pki.ca, 'pathlen zero', 0, true);
    const i1 = await intermediate(i0, 'below pathlen zero', undefined, true);
    const deep = await issueCert(i1, 'too-deep');
    // root -> i0 (pathLen 0) -> leaf: allowed.
    const ok = await issueCert(i0, 'one-below');
    // root -> noSign (no keyCertSign) -> leaf.
    const noSign = await intermediate(pki.ca, 'no keyCertSign', undefined, false);
    const unsigned = await issueCert(noSign, 'under-nosign');
    const write = (name: string, leaf: Issued, ...above: Issued[]) =>
      (chains[name] = { cert: pki.file(`${name}.pem`, leaf.certPem + above.map((c) => c.certPem).join('')), key: pki.file(`${name}-key.pem`, leaf.keyPem) });
    write('future', future);
    write('server-eku', server);
    write('too-deep', deep, i1, i0);
    write('one-below', ok, i0);
    write('under-nosign', unsigned, noSign);
    gw = await startTestGateway(
      pki,
      buildBundle(
        [
          {
            id: 'pinned',
            listen_path: '/pinned/',
            target_url: echo.url,
            use_keyless: true,
            use_mutual_tls_auth: true,
            client_certificates: [future.fingerprint, server.fingerprint, pki.testServer.fingerprint],
          },
          { id: 'ca', listen_path: '/ca/', target_url: echo.url, use_keyless: true, use_mutual_tls_auth: true, client_ca_pems: [pki.ca.certPem] },
        ],
        [],
      ),
    );
  });

  after(() => closeGatewayTest({ gw, echo, cleanup }));

  it('a leaf whose notBefore is in the future gets its own code, pinned or under a CA', async () => {
    for (const path of ['/pinned/x', '/ca/x']) {
      const r = await curl(pki, gw.port, path, { client: chains.future });
      assert.deepEqual([r.status, r.json.code], [403, 'mtls.cert_not_yet_valid'], path);
    }
  });

  it("a server certificate (EKU serverAuth only) is not a client certificate, the gateway's own included", async () => {
    const own = { cert: pki.file('own.pem', pki.testServer.certPem), key: pki.file('own-key.pem', pki.testServer.keyPem) };
    for (const [path, who] of [
      ['/pinned/x', chains['server-eku']],
      ['/ca/x', chains['server-eku']],
      ['/pinned/x', own],
    ] as const) {
      const r = await curl(pki, gw.port, path, { client: who });
      assert.deepEqual([r.status, r.json.code], [403, 'mtls.cert_not_client'], path);
    }
  });

  it('pathLenConstraint: one intermediate below a pathLen 0 CA passes, two are refused', async () => {
    assert.equal((await curl(pki, gw.port, '/ca/x', { client: chains['one-below'] })).status, 200);
    const deep = await curl(pki, gw.port, '/ca/x', { client: chains['too-deep'] });
    assert.deepEqual([deep.status, deep.json.code], [403, 'mtls.cert_not_allowed']);
  });

  it('an intermediate without keyCertSign cannot issue', async () => {
    const r = await curl(pki, gw.port, '/ca/x', { client: chains['under-nosign'] });
    assert.deepEqual([r.status, r.json.code], [403, 'mtls.cert_not_allowed']);
  });
});
