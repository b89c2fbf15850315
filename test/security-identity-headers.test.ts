// Identity headers attacked: what a client writes into the headers the gateway reads (XFCC from a
// proxy that appends, as Envoy's APPEND_FORWARD does) or that an upstream trusts (the key id
// header, X-Original-URL), with curl as the client.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CertHeaderReader, certHeaderSpec, parseCertHeader, xfccElements } from '../runtime/client-cert-header.ts';
import { TrustedProxies } from '../runtime/trusted-proxies.ts';
import { buildBundle, pinnedStaticApi } from './helpers/bundle-builder.ts';
import { curlPlain } from './helpers/curl-plain.ts';
import { closeGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

let pki: TestPki;
let cleanup: () => void;
let echo: EchoUpstream;

before(async () => {
  ({ pki, cleanup, echo } = await startPkiAndEcho());
});
after(() => closeGatewayTest({ echo, cleanup }));

/** The element Envoy appends for the connection's own client (bob, the attacker). */
const envoyElement = () => `By=spiffe://lb.test;Hash=${pki.clients.bob.fingerprint};Cert="${encodeURIComponent(pki.clients.bob.certPem)}";Subject="CN=bob"`;
/** What the attacker sends in front: an unbalanced quote and the victim's PEM without its END line. */
const injected = () => `Cert="${encodeURIComponent(pki.clients['partner-a'].certPem.replace(/-----END CERTIFICATE-----\n?$/, ''))}`;

describe('XFCC appended to a client-sent value (Envoy APPEND_FORWARD)', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    const bundle = buildBundle([pinnedStaticApi(echo.url, [pki.clients['partner-a'].fingerprint])]);
    gw = await startTestGateway(pki, bundle, { certHeader: new CertHeaderReader(certHeaderSpec('xfcc'), new TrustedProxies(['127.0.0.1'])) });
    url = `http://127.0.0.1:${(await gw.gateway.listenPlain(0, '127.0.0.1')).port}/static/x`;
  });
  after(() => gw.close());

  it('an unbalanced quote in the client’s part cannot make the victim’s certificate the last element', async () => {
    // The lenient reading took partner-a's certificate here: the attacker, holding only its public
    // certificate, was partner-a.
    const r = await curlPlain(url, { 'X-Forwarded-Client-Cert': `${injected()},${envoyElement()}` });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.equal(r.json.code, 'mtls.cert_header_invalid');
    assert.equal(gw.records.at(-1)?.cert, null);
  });

  it('a well-formed client part before the proxy’s element: the proxy’s element decides', async () => {
    const victim = `By=x;Hash=1;Cert="${encodeURIComponent(pki.clients['partner-a'].certPem)}";Subject="CN=a,O=b;c=\\"d\\""`;
    const r = await curlPlain(url, { 'X-Forwarded-Client-Cert': `${victim},${envoyElement()}` });
    assert.equal(r.json.code, 'mtls.cert_not_allowed');
    assert.equal(gw.records.at(-1)?.cert, pki.clients.bob.fingerprint);
  });

  it('the XFCC grammar is strict: what is not key=value pairs of tokens or quoted strings is no certificate', () => {
    assert.deepEqual(xfccElements('By=a;Hash=b,Subject="x,y;z=\\"q\\"";URI=u'), [
      [
        ['By', 'a'],
        ['Hash', 'b'],
      ],
      [
        ['Subject', 'x,y;z="q"'],
        ['URI', 'u'],
      ],
    ]);
    for (const bad of ['Cert="abc', 'Cert="a"b', 'Cert=a"b"', 'Cert="a\\', 'Hash=1,', 'Hash', '=x', 'Ha sh=1', 'Cert="a";;Hash=1']) {
      assert.equal(xfccElements(bad), null, bad);
    }
    const pem = pki.clients['partner-a'].certPem;
    assert.equal(parseCertHeader('xfcc', `Cert="${encodeURIComponent(pem)}";Cert="${encodeURIComponent(pem)}"`, undefined), null, 'two Cert in one element');
  });
});

describe('RFC 9440 Client-Cert with bytes after the certificate', () => {
  it('is no certificate (node:crypto would ignore the rest)', async () => {
    const bundle = buildBundle([pinnedStaticApi(echo.url, [pki.clients['partner-a'].fingerprint])]);
    const gw = await startTestGateway(pki, bundle, { certHeader: new CertHeaderReader(certHeaderSpec('client-cert'), new TrustedProxies(['127.0.0.1'])) });
    try {
      const url = `http://127.0.0.1:${(await gw.gateway.listenPlain(0, '127.0.0.1')).port}/static/x`;
      const der = new X509Certificate(pki.clients['partner-a'].certPem).raw;
      const exact = await curlPlain(url, { 'Client-Cert': `:${der.toString('base64')}:` });
      assert.equal(exact.status, 200);
      const padded = await curlPlain(url, { 'Client-Cert': `:${Buffer.concat([der, Buffer.from('anything at all')]).toString('base64')}:` });
      assert.equal(padded.json.code, 'mtls.cert_header_invalid');
    } finally {
      await gw.close();
    }
  });
});

describe('headers an upstream may trust, sent by the client', () => {
  let gw: TestGateway;
  before(async () => {
    // Two APIs on one upstream: it trusts x-key-id, which the gateway sets on /partner/ only.
    gw = await startTestGateway(
      pki,
      buildBundle(
        [
          { id: 'open', listen_path: '/open/', target_url: `${echo.url}/open`, use_keyless: true },
          {
            id: 'partner',
            listen_path: '/partner/',
            target_url: `${echo.url}/partner`,
            use_certificate: true,
            forward_client_cert: { key_id_header: 'x-key-id', rfc9440: false, xfcc: [] },
          },
        ],
        [{ id: 'partner-a', certificates: [pki.clients['partner-a'].fingerprint], access_rights: { partner: { allowed_urls: null } } }],
      ),
    );
  });
  after(() => gw.close());

  it('the key id header of any API is removed from every request, HTTP/1.1 and HTTP/2', async () => {
    for (const extra of [[], ['--http2']]) {
      const open = await curl(pki, gw.port, '/open/x', { headers: { 'X-Key-Id': 'partner-a' }, extra });
      assert.equal(open.status, 200);
      assert.equal(open.json.headers?.['x-key-id'], undefined, `a client named itself partner-a to the shared upstream (${extra})`);
      const partner = await curl(pki, gw.port, '/partner/x', { client: 'partner-a', headers: { 'X-Key-Id': 'admin' }, extra });
      assert.equal(partner.json.headers?.['x-key-id'], 'partner-a');
    }
  });

  it('held: a Connection header naming the gateway’s own identity headers does not remove them (they are set after the client’s are filtered)', async () => {
    const r = await curl(pki, gw.port, '/partner/x', { client: 'partner-a', headers: { Connection: 'x-key-id, x-forwarded-for, x-forwarded-proto' } });
    assert.equal(r.json.headers?.['x-key-id'], 'partner-a');
    assert.equal(r.json.headers?.['x-forwarded-proto'], 'https');
    assert.equal(r.json.headers?.['x-forwarded-for'], '127.0.0.1');
  });

  it('X-Original-URL and X-Rewrite-URL never reach the upstream (frameworks that route by them would see another path)', async () => {
    const r = await curl(pki, gw.port, '/open/x', { headers: { 'X-Original-URL': '/partner/admin', 'X-Rewrite-URL': '/partner/admin' } });
    assert.equal(r.status, 200);
    assert.equal(r.json.path, '/open/x');
    assert.equal(r.json.headers?.['x-original-url'], undefined);
    assert.equal(r.json.headers?.['x-rewrite-url'], undefined);
  });
});
