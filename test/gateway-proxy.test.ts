// What reaches the upstream and what comes back: X-Forwarded-* and X-Forwarded-Client-Cert,
// strip_listen_path, strip_auth_data, hop-by-hop headers, streamed bodies; and the gateway's
// lifecycle around in-flight requests (client abort, drain on close).
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { buildBundle, sha256Hex } from './helpers/bundle-builder.ts';
import { closeGatewayTest, keylessOpenBundle, startGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

describe('gateway proxying', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;

  before(async () => {
    ({ pki, cleanup, echo, gw } = await startGatewayTest(({ pki, echo }) => {
      echo.slowMs = 600;
      const all = { allowed_urls: null };
      return buildBundle(
        [
          {
            id: 'plain',
            listen_path: '/plain/',
            target_url: echo.url,
            use_keyless: true,
            use_mutual_tls_auth: true,
            client_certificates: [pki.clients.alice.fingerprint],
          },
          {
            id: 'xfcc',
            listen_path: '/xfcc/',
            target_url: `${echo.url}/base/`,
            use_keyless: true,
            use_mutual_tls_auth: true,
            forward_client_cert: { key_id_header: null, rfc9440: false, xfcc: ['Hash', 'Subject'] },
            client_certificates: [pki.clients.alice.fingerprint],
          },
          { id: 'keep', listen_path: '/keep/', target_url: `${echo.url}/base`, strip_listen_path: false, use_keyless: true },
          { id: 'tokens', listen_path: '/tokens/', target_url: echo.url, auth_header_name: 'x-api-key' },
          { id: 'stripped', listen_path: '/stripped/', target_url: echo.url, strip_auth_data: true },
        ],
        [{ id: 'tok', token_sha256: sha256Hex('tok-token'), access_rights: { tokens: all, stripped: all } }],
      );
    }));
  });

  after(() => closeGatewayTest({ gw, echo, cleanup }));

  it('removes a client-sent X-Forwarded-Client-Cert and sets X-Forwarded-For/Proto/Host', async () => {
    const r = await curl(pki, gw.port, '/plain/a?q=1', { client: 'alice', headers: { 'x-forwarded-client-cert': 'Hash=forged;Subject="CN=admin"' } });
    assert.equal(r.status, 200, r.body);
    const headers = r.json.headers!;
    assert.equal(headers['x-forwarded-client-cert'], undefined);
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'https');
    assert.equal(headers['x-forwarded-host'], `localhost:${gw.port}`);
    assert.equal(r.json.path, '/a?q=1');
    assert.equal(r.headers['x-upstream'], 'echo', 'upstream response headers reach the client');
  });

  it('forward_client_cert: X-Forwarded-Client-Cert from the verified leaf (Envoy format), spoof replaced', async () => {
    const r = await curl(pki, gw.port, '/xfcc/b', { client: 'alice', headers: { 'x-forwarded-client-cert': 'Hash=forged' } });
    assert.equal(r.status, 200, r.body);
    // RFC 2253 lists the DN last-RDN-first; the demo certificates encode CN before O.
    assert.equal(r.json.headers!['x-forwarded-client-cert'], `Hash=${pki.clients.alice.fingerprint};Subject="O=mtlsgate demo,CN=alice"`);
    assert.equal(r.json.path, '/base/b', 'target path prefix joined with the stripped path');
  });

  it('strip_listen_path: false keeps the listen path after the target path', async () => {
    assert.equal((await curl(pki, gw.port, '/keep/c/d')).json.path, '/base/keep/c/d');
    assert.equal((await curl(pki, gw.port, '/xfcc', { client: 'alice' })).json.path, '/base/');
  });

  it('strip_auth_data drops the token header; without it the header is forwarded', async () => {
    const stripped = await curl(pki, gw.port, '/stripped/x', { headers: { authorization: 'Bearer tok-token' } });
    assert.equal(stripped.status, 200, stripped.body);
    assert.equal(stripped.json.headers!.authorization, undefined);
    const kept = await curl(pki, gw.port, '/tokens/x', { headers: { 'x-api-key': 'tok-token' } });
    assert.equal(kept.status, 200, kept.body);
    assert.equal(kept.json.headers!['x-api-key'], 'tok-token');
  });

  it('drops hop-by-hop headers and those the Connection header names', async () => {
    // HTTP/1.1: HTTP/2 has no Connection header (curl leaves it out there).
    const r = await curl(pki, gw.port, '/keep/h', {
      extra: ['--http1.1'],
      headers: { connection: 'keep-alive, x-session-hop', 'x-session-hop': '1', te: 'trailers', 'proxy-authorization': 'Basic eA==', 'x-end-to-end': 'yes' },
    });
    const headers = r.json.headers!;
    for (const name of ['x-session-hop', 'te', 'proxy-authorization']) assert.equal(headers[name], undefined, name);
    assert.equal(headers['x-end-to-end'], 'yes');
  });

  it('streams a request body to the upstream and the answer back (curl sends Expect: 100-continue)', async () => {
    const body = 'x'.repeat(3 * 1024 * 1024);
    const file = pki.file('upload.txt', body);
    const r = await curl(pki, gw.port, '/keep/upload', { method: 'POST', data: `@${file}`, headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 200);
    assert.equal(r.json.method, 'POST');
    assert.equal(r.json.body?.length, body.length);
  });

  it('a client that leaves mid-request is recorded (499) and breaks nothing', async () => {
    const req = request({ host: '127.0.0.1', servername: 'localhost', port: gw.port, path: '/keep/slow/abort', ca: pki.ca.certPem, agent: false });
    req.on('error', () => undefined);
    req.end();
    await waitFor('the request to be in flight', () => gw.gateway.inFlight() === 1, 10_000);
    req.destroy();
    await waitFor('the request record', () => gw.records.some((r) => r.path === '/keep/slow/abort'), 10_000);
    assert.equal(gw.records.find((r) => r.path === '/keep/slow/abort')?.status, 499);
    await waitFor('the upstream request to be abandoned too', () => echo.abandoned === 1, 10_000);
    assert.equal(gw.gateway.inFlight(), 0);
    assert.equal((await curl(pki, gw.port, '/keep/after')).status, 200);
  });

  it('a client that leaves halfway through its upload breaks nothing', async () => {
    const req = request({
      host: '127.0.0.1',
      servername: 'localhost',
      port: gw.port,
      method: 'POST',
      path: '/keep/upload-abort',
      ca: pki.ca.certPem,
      agent: false,
      headers: { 'content-length': String(1 << 20) },
    });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(64 * 1024, 120));
    await waitFor('the upload to be in flight', () => gw.gateway.inFlight() === 1, 10_000);
    req.destroy();
    await waitFor('the upload record', () => gw.records.some((r) => r.path === '/keep/upload-abort'), 10_000);
    assert.equal(gw.records.find((r) => r.path === '/keep/upload-abort')?.status, 499);
    assert.equal(gw.gateway.inFlight(), 0);
    assert.equal((await curl(pki, gw.port, '/keep/after-upload')).status, 200);
  });
});

describe('gateway close drains in-flight requests', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
  });

  after(() => closeGatewayTest({ echo, cleanup }));

  const bundle = () => keylessOpenBundle(echo);

  it('an in-flight slow request completes; new connections are refused', async () => {
    echo.slowMs = 800;
    const gw = await startTestGateway(pki, bundle());
    const pending = curl(pki, gw.port, '/slow/drain');
    await waitFor('the request to be in flight', () => gw.gateway.inFlight() === 1, 10_000);
    const closing = gw.gateway.close(20_000);
    const r = await pending;
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.path, '/slow/drain');
    await closing;
    await assert.rejects(curl(pki, gw.port, '/after'));
  });

  it('a request slower than the drain timeout is cut off when it expires', async () => {
    echo.slowMs = 10_000;
    const gw = await startTestGateway(pki, bundle());
    const pending = curl(pki, gw.port, '/slow/cut').then(
      (r) => r.status,
      () => 'cut' as const,
    );
    await waitFor('the request to be in flight', () => gw.gateway.inFlight() === 1, 10_000);
    await gw.gateway.close(300);
    assert.equal(await pending, 'cut');
  });
});
