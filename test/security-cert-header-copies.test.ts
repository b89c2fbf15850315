// --client-cert-header from a trusted proxy that appends its header to the client's instead of
// replacing it (docs/security.md section 37): node:http and node:http2 join the copies with
// ", ", and the PEM reader took the first block, the client's, for the leaf. Mallory, whose
// own certificate the proxy checked, sent partner-a's public certificate in front of the
// proxy's header and was partner-a. Real curl over --listen-plain and node:http2 over TLS, both
// from loopback, the trusted proxy.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Bundle } from '../bundle/types.ts';
import { CertHeaderReader, certHeaderSpec } from '../runtime/client-cert-header.ts';
import { TrustedProxies } from '../runtime/trusted-proxies.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { codeOf, http2Once } from './helpers/one-request.ts';
import { closeGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { createIntermediateCa, type EchoUpstream, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { issueCert, type Issued } from '../cli/pki.ts';

let pki: TestPki;
let cleanup: () => void;
let echo: EchoUpstream;
let bundle: Bundle;
let chained: Issued;
let intermediate: Issued;

before(async () => {
  ({ pki, cleanup, echo } = await startPkiAndEcho());
  intermediate = await createIntermediateCa(pki.ca, 'Copies Intermediate');
  chained = await issueCert(intermediate, 'chained-copies');
  bundle = buildBundle([
    {
      id: 'partner',
      listen_path: '/partner/',
      target_url: echo.url,
      use_keyless: true,
      use_mutual_tls_auth: true,
      client_certificates: [pki.clients['partner-a'].fingerprint],
    },
    { id: 'ca', listen_path: '/ca/', target_url: echo.url, use_keyless: true, use_mutual_tls_auth: true, client_ca_pems: [pki.ca.certPem] },
  ]);
});
after(() => closeGatewayTest({ echo, cleanup }));

const pem = (c: Issued) => encodeURIComponent(c.certPem);
/** An Envoy XFCC element carrying the certificate. */
const xfcc = (c: Issued) => `Hash=x;Cert="${pem(c)}"`;

interface Answer {
  status: number;
  code?: string;
}

/** Plain-HTTP curl (the trusted proxy, on loopback) with each [name, value] as its own header line. */
function curlPlain(url: string, headers: Array<[string, string]>): Promise<Answer> {
  const args = ['-sS', '--max-time', '30', '-w', '\n%{http_code}'];
  for (const [name, value] of headers) args.push('-H', `${name}: ${value}`);
  args.push(url);
  return new Promise((resolve, reject) =>
    execFile('curl', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl ${url} failed: ${stderr || err.message}`));
      const nl = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(nl + 1)), code: codeOf(stdout.slice(0, nl)) });
    }),
  );
}

/** node:http2 over TLS to the gateway (the trusted proxy re-encrypting), `value` an array for several copies. */
async function h2(gw: TestGateway, path: string, name: string, value: string | string[]): Promise<Answer> {
  const r = await http2Once(pki, gw.port, { ':path': path, [name]: value });
  return { status: r.status, code: codeOf(r.body) };
}

async function gatewayReading(header: string) {
  const gw = await startTestGateway(pki, bundle, { certHeader: new CertHeaderReader(certHeaderSpec(header), new TrustedProxies(['127.0.0.1/32', '::1'])) });
  const plain = await gw.gateway.listenPlain(0, '127.0.0.1');
  return { gw, base: `http://127.0.0.1:${plain.port}` };
}

describe('a PEM certificate header (x-amzn-mtls-clientcert) sent twice', () => {
  let gw: TestGateway;
  let base: string;
  before(async () => ({ gw, base } = await gatewayReading('x-amzn-mtls-clientcert')));
  after(() => gw.close());

  it('one copy: the pinned certificate is admitted, another refused (as before)', async () => {
    assert.equal((await curlPlain(`${base}/partner/x`, [['X-Amzn-Mtls-Clientcert', pem(pki.clients['partner-a'])]])).status, 200);
    assert.equal((await curlPlain(`${base}/partner/x`, [['X-Amzn-Mtls-Clientcert', pem(pki.clients.mallory)]])).code, 'mtls.cert_not_allowed');
  });

  it("the client's copy in front of the proxy's: 400 mtls.cert_header_invalid, not the client's certificate (HTTP/1.1 and HTTP/2)", async () => {
    const twice: Array<[string, string]> = [
      ['X-Amzn-Mtls-Clientcert', pem(pki.clients['partner-a'])],
      ['X-Amzn-Mtls-Clientcert', pem(pki.clients.mallory)],
    ];
    const plain = await curlPlain(`${base}/partner/x`, twice);
    assert.deepEqual(plain, { status: 400, code: 'mtls.cert_header_invalid' });
    const overH2 = await h2(gw, '/partner/x', 'x-amzn-mtls-clientcert', [pem(pki.clients['partner-a']), pem(pki.clients.mallory)]);
    assert.deepEqual(overH2, { status: 400, code: 'mtls.cert_header_invalid' });
    assert.notEqual(gw.records.at(-1)?.cert, pki.clients['partner-a'].fingerprint);
  });

  it('text around or between the PEM blocks is no certificate; a leaf with its chain (ALB) still is', async () => {
    const a = pki.clients['partner-a'].certPem;
    for (const value of [`x${a}`, `${a},`, `${a}\n-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n`]) {
      const r = await curlPlain(`${base}/partner/x`, [['X-Amzn-Mtls-Clientcert', encodeURIComponent(value)]]);
      assert.deepEqual(r, { status: 400, code: 'mtls.cert_header_invalid' }, JSON.stringify(value.slice(0, 40)));
    }
    const withChain = encodeURIComponent(chained.certPem + intermediate.certPem);
    assert.equal((await curlPlain(`${base}/ca/x`, [['X-Amzn-Mtls-Clientcert', withChain]])).status, 200);
  });
});

describe('held: the other formats with several copies', () => {
  it("XFCC: the copies are elements and the last, the nearest proxy's, decides (Envoy's semantics)", async () => {
    const { gw, base } = await gatewayReading('xfcc');
    try {
      const proxyLast = await curlPlain(`${base}/partner/x`, [
        ['X-Forwarded-Client-Cert', xfcc(pki.clients['partner-a'])],
        ['X-Forwarded-Client-Cert', xfcc(pki.clients.mallory)],
      ]);
      assert.equal(proxyLast.code, 'mtls.cert_not_allowed');
    } finally {
      await gw.close();
    }
  });

  it('RFC 9440 Client-Cert twice: refused', async () => {
    const { gw, base } = await gatewayReading('client-cert');
    try {
      const der = (c: Issued) => `:${Buffer.from(c.certPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').toString('base64')}:`;
      const r = await curlPlain(`${base}/partner/x`, [
        ['Client-Cert', der(pki.clients['partner-a'])],
        ['Client-Cert', der(pki.clients.mallory)],
      ]);
      assert.deepEqual(r, { status: 400, code: 'mtls.cert_header_invalid' });
    } finally {
      await gw.close();
    }
  });
});
