// Requests that name two of what is one (docs/security.md section 45): two `host` fields over
// HTTP/2 without `:authority`, two `Authorization` fields over HTTP/1.1 or HTTP/2, and a
// WebSocket handshake that is not a GET. HTTP/2 written frame by frame (node:http2's client
// refuses to send two copies of these fields), HTTP/1.1 byte for byte over TLS.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { buildBundle, sha256Hex } from './helpers/bundle-builder.ts';
import { gatewayTestHooks } from './helpers/config-gateway.ts';
import { rawTlsClient } from './helpers/gateway-fixtures.ts';
import { codeOf, http1Once, http2Once } from './helpers/one-request.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { rawHttp2Request } from './helpers/raw-h2.ts';

const TOKEN = 'edge-token-1';
/** Every path the upstream was asked for. */
const seen: string[] = [];

const setup = gatewayTestHooks(({ echo }) => {
  echo.server.prependListener('request', (req: IncomingMessage) => seen.push(req.url ?? ''));
  return buildBundle(
    [
      { id: 'keyed', listen_path: '/keyed/', target_url: `${echo.url}/keyed`, use_keyless: false },
      { id: 'pay', listen_path: '/', domain: 'pay.example.test', target_url: `${echo.url}/via-pay`, use_keyless: true, strip_listen_path: false },
      { id: 'open', listen_path: '/', target_url: `${echo.url}/via-open`, use_keyless: true, strip_listen_path: false },
    ],
    [{ id: 'k', token_sha256: sha256Hex(TOKEN), access_rights: { keyed: { allowed_urls: null } } }],
  );
});

/** GET `path` over HTTP/2 with these fields after the pseudo-headers (and no :authority unless given). */
const h2 = (path: string, fields: Array<[string, string]>) =>
  rawHttp2Request(setup.pki, setup.gw.port, [[':method', 'GET'], [':scheme', 'https'], [':path', path], ...fields]);

test('held: HTTP/2 with two host fields and no :authority: nghttp2 resets the stream (PROTOCOL_ERROR), nothing forwarded, as two Host lines over HTTP/1.1 are refused', async () => {
  // The lead of the last audit: node:http2 keeps the first copy of "host". nghttp2 refuses a
  // second one as it refuses a second pseudo-header, before node sees the request.
  seen.length = 0;
  for (const hosts of [
    ['pay.example.test', 'evil.example'],
    ['pay.example.test', 'pay.example.test'],
  ]) {
    const r = await h2('/x', [
      ['host', hosts[0]],
      ['host', hosts[1]],
    ]);
    assert.deepEqual(r, { status: 0, body: '', reset: 1 }, hosts.join(', '));
  }
  assert.deepEqual(seen, []);
  assert.equal(codeOf((await http1Once(setup.pki, setup.gw.port, '/x', 'Host: pay.example.test\r\nHost: evil.example\r\n')).body), 'request.bad_host');
});

test('held: HTTP/2 with one host field and no :authority routes on it', async () => {
  const r = await h2('/x', [['host', 'pay.example.test']]);
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.equal(JSON.parse(r.body).path, '/via-pay/x');
});

test('two Authorization fields: 400 auth.auth_field_repeated over HTTP/1.1 and HTTP/2, whichever holds the token (before: HTTP/2 took the first, HTTP/1.1 said 403 auth.key_not_found)', async () => {
  seen.length = 0;
  for (const [first, second] of [
    [TOKEN, 'other'],
    ['other', TOKEN],
    [`Bearer ${TOKEN}`, `Bearer ${TOKEN}x`],
  ]) {
    const overH2 = await h2('/keyed/x', [
      [':authority', 'localhost'],
      ['authorization', first],
      ['authorization', second],
    ]);
    assert.equal(overH2.status, 400, `HTTP/2 ${first}, ${second}: ${JSON.stringify(overH2)}`);
    assert.equal(codeOf(overH2.body), 'auth.auth_field_repeated');
    const overH1 = await http1Once(setup.pki, setup.gw.port, '/keyed/x', `Host: localhost\r\nAuthorization: ${first}\r\nAuthorization: ${second}\r\n`);
    assert.equal(overH1.status, 400, `HTTP/1.1 ${first}, ${second}: ${overH1.body}`);
    assert.equal(codeOf(overH1.body), 'auth.auth_field_repeated');
  }
  // One field holding a list is the same thing to a reader.
  const list = await http2Once(setup.pki, setup.gw.port, { ':path': '/keyed/x', authorization: `${TOKEN}, other` });
  assert.equal(codeOf(list.body), 'auth.auth_field_repeated');
  assert.deepEqual(seen, []);
});

test('held: one Authorization field with the token passes, a wrong one is auth.key_not_found', async () => {
  const good = await h2('/keyed/x', [
    [':authority', 'localhost'],
    ['authorization', TOKEN],
  ]);
  assert.equal(good.status, 200, JSON.stringify(good));
  const wrong = await http1Once(setup.pki, setup.gw.port, '/keyed/x', 'Host: localhost\r\nAuthorization: wrong\r\n');
  assert.equal(codeOf(wrong.body), 'auth.key_not_found');
  // Two copies of a field node:http2 joins itself (not single-valued) still pass as one list.
  const joined = await h2('/x', [
    [':authority', 'localhost'],
    ['accept', 'text/plain'],
    ['accept', 'application/json'],
  ]);
  assert.equal(JSON.parse(joined.body).headers.accept, 'text/plain, application/json');
});

const HANDSHAKE =
  'Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

test('a WebSocket handshake with another method than GET: 400 request.websocket_not_get, nothing forwarded (before: sent upstream to decide)', async () => {
  seen.length = 0;
  for (const method of ['POST', 'PUT', 'DELETE', 'HEAD']) {
    const c = await rawTlsClient(setup.pki, setup.gw.port);
    c.socket.write(`${method} /chat HTTP/1.1\r\n${HANDSHAKE}`);
    await c.whenClosed;
    assert.match(c.received(), /^HTTP\/1\.1 400 /, method);
    if (method !== 'HEAD') assert.match(c.received(), /"code":"request\.websocket_not_get"/, method);
    await waitFor('the record', () => setup.gw.records.at(-1)?.method === method);
    assert.equal(setup.gw.records.at(-1)?.code, 'request.websocket_not_get');
  }
  assert.deepEqual(seen, []);
});

test('held: HTTP/2 extended CONNECT (RFC 8441, WebSocket over HTTP/2) is refused by nghttp2: the gateway never offers it', async () => {
  const r = await h2('/chat', [
    [':authority', 'localhost'],
    [':protocol', 'websocket'],
  ]).catch((err: Error) => ({ status: 0, body: err.message, reset: null }));
  // The fields above go with :method GET; extended CONNECT proper:
  const connect = await rawHttp2Request(setup.pki, setup.gw.port, [
    [':method', 'CONNECT'],
    [':protocol', 'websocket'],
    [':scheme', 'https'],
    [':path', '/chat'],
    [':authority', 'localhost'],
  ]);
  for (const answer of [r, connect]) {
    assert.notEqual(answer.status, 200, JSON.stringify(answer));
    assert.notEqual(answer.status, 101);
  }
  assert.equal(connect.reset, 1 /* PROTOCOL_ERROR */, JSON.stringify(connect));
});
