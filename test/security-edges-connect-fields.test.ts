// CONNECT and fields sent twice (docs/security.md section 45b): a CONNECT gets the error table's
// 405 over HTTP/1.1 and HTTP/2, logged; a field that holds one value sent twice is 400
// request.field_repeated over both transports, and the list fields node:http2 keeps the first
// copy of reach the upstream joined, as over HTTP/1.1. HTTP/2 written frame by frame
// (node:http2's client refuses to send two copies of these fields), HTTP/1.1 byte for byte over TLS.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { gatewayTestHooks } from './helpers/config-gateway.ts';
import { rawTlsClient } from './helpers/gateway-fixtures.ts';
import { codeOf, http1Once } from './helpers/one-request.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { rawHttp2Request } from './helpers/raw-h2.ts';

/** Every request the upstream got. */
const seen: string[] = [];

const setup = gatewayTestHooks(({ echo }) => {
  echo.server.prependListener('request', (req: IncomingMessage) => seen.push(`${req.method} ${req.url}`));
  return buildBundle([{ id: 'open', listen_path: '/', target_url: `${echo.url}/via-open`, use_keyless: true, strip_listen_path: false }]);
});

const h2 = (fields: Array<[string, string]>, method = 'GET') =>
  rawHttp2Request(setup.pki, setup.gw.port, [[':method', method], [':scheme', 'https'], [':path', '/x'], [':authority', 'localhost'], ...fields]);

test("CONNECT is 405 request.connect_not_allowed over HTTP/1.1 and HTTP/2, logged, nothing forwarded (before: HTTP/1.1 closed without a byte, HTTP/2 got node's bare 405, neither logged)", async () => {
  seen.length = 0;
  const c = await rawTlsClient(setup.pki, setup.gw.port);
  c.socket.write('CONNECT internal.example:443 HTTP/1.1\r\nHost: internal.example:443\r\n\r\n');
  await Promise.race([c.whenClosed, new Promise((r) => setTimeout(r, 5_000))]);
  assert.match(c.received(), /^HTTP\/1\.1 405 /, JSON.stringify(c.received()));
  assert.match(c.received(), /"code":"request\.connect_not_allowed"/);
  assert.ok(c.closed(), 'the connection ends with the answer');
  await waitFor('the HTTP/1.1 record', () => setup.gw.records.at(-1)?.method === 'CONNECT');
  assert.equal(setup.gw.records.at(-1)?.code, 'request.connect_not_allowed');
  setup.gw.records.length = 0;
  // HTTP/2 CONNECT (RFC 9113 8.5): :method and :authority only.
  const overH2 = await rawHttp2Request(setup.pki, setup.gw.port, [
    [':method', 'CONNECT'],
    [':authority', 'internal.example:443'],
  ]);
  assert.equal(overH2.status, 405, JSON.stringify(overH2));
  assert.equal(codeOf(overH2.body), 'request.connect_not_allowed');
  await waitFor('the HTTP/2 record', () => setup.gw.records.at(-1)?.method === 'CONNECT');
  assert.equal(setup.gw.records.at(-1)?.code, 'request.connect_not_allowed');
  // curl told to tunnel through the gateway (an HTTPS proxy setting pointed at it by mistake)
  // reads the 405 and says so.
  const viaCurl = await new Promise<{ code: number | null; stderr: string; connect: string }>((resolve) => {
    const args = ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_connect}', '--proxy', `https://localhost:${setup.gw.port}`];
    args.push('--proxy-cacert', setup.pki.certFile('ca'), '--proxytunnel', 'http://internal.example/');
    execFile('curl', args, (err, stdout, stderr) => resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr, connect: stdout }));
  });
  assert.equal(viaCurl.connect, '405', JSON.stringify(viaCurl));
  assert.match(viaCurl.stderr, /CONNECT tunnel failed, response 405/);
  assert.deepEqual(seen, []);
});

test('a field that holds one value sent twice is 400 request.field_repeated over HTTP/1.1 and HTTP/2 (before: HTTP/2 forwarded the first copy, HTTP/1.1 "a, b")', async () => {
  seen.length = 0;
  for (const [name, a, b] of [
    ['content-type', 'application/json', 'text/plain'],
    ['range', 'bytes=0-9', 'bytes=100-199'],
    ['if-modified-since', 'Sat, 05 Dec 2026 07:00:00 GMT', 'Sat, 05 Dec 2026 07:00:00 GMT'],
    ['max-forwards', '1', '9'],
  ]) {
    const overH2 = await h2([
      [name, a],
      [name, b],
    ]);
    assert.equal(overH2.status, 400, `HTTP/2 ${name}: ${JSON.stringify(overH2)}`);
    assert.equal(codeOf(overH2.body), 'request.field_repeated');
    const title = name.replace(/(^|-)([a-z])/g, (_m, dash: string, ch: string) => dash + ch.toUpperCase());
    const overH1 = await http1Once(setup.pki, setup.gw.port, '/x', `Host: localhost\r\n${title}: ${a}\r\n${name}: ${b}\r\n`);
    assert.equal(overH1.status, 400, `HTTP/1.1 ${name}: ${overH1.body}`);
    assert.equal(codeOf(overH1.body), 'request.field_repeated');
  }
  assert.deepEqual(seen, []);
});

test('a list field node:http2 keeps the first copy of reaches the upstream joined over HTTP/2, as over HTTP/1.1 (before: the first copy only)', async () => {
  for (const name of ['if-none-match', 'if-match', 'content-language']) {
    const overH2 = await h2([
      [name, '"a"'],
      [name, '"b"'],
    ]);
    assert.equal(overH2.status, 200, JSON.stringify(overH2));
    const overH1 = await http1Once(setup.pki, setup.gw.port, '/x', `Host: localhost\r\n${name}: "a"\r\n${name}: "b"\r\n`);
    assert.equal(JSON.parse(overH2.body).headers[name], '"a", "b"', name);
    assert.equal(JSON.parse(overH1.body).headers[name], '"a", "b"', name);
  }
});

test('held: one copy of each passes on both transports, and fields of other names pass as sent', async () => {
  const fields: Array<[string, string]> = [
    ['content-type', 'application/json'],
    ['range', 'bytes=0-9'],
    ['if-none-match', '"a"'],
    ['grpc-timeout', '1S'],
    ['priority', 'u=1'],
  ];
  const overH2 = await h2(fields);
  assert.equal(overH2.status, 200, JSON.stringify(overH2));
  const overH1 = await http1Once(setup.pki, setup.gw.port, '/x', `Host: localhost\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}`);
  assert.equal(overH1.status, 200, overH1.body);
  for (const answer of [overH2.body, overH1.body]) assert.equal(JSON.parse(answer).headers['content-type'], 'application/json');
});

// node:http2's single-valued fields (Node 20's kSingleValueHeaders, lib/internal/http2/util.js)
// but the pseudo-headers and `content-length` and `host`, which nghttp2 refuses itself: it keeps
// the first copy of each and drops the rest, where HTTP/1.1 joins them. Section 51.
const REFUSED_WHEN_REPEATED = [
  'user-agent',
  'referer',
  'from',
  'date',
  'content-location',
  'content-range',
  'content-md5',
  'access-control-request-method',
  'dnt',
  'upgrade-insecure-requests',
  'age',
  'etag',
  'expires',
  'last-modified',
  'location',
  'retry-after',
  'access-control-allow-credentials',
  'access-control-max-age',
  'tk',
  'x-content-type-options',
];

test('every other field node:http2 keeps one copy of (user-agent, referer, date, ...) is 400 request.field_repeated over HTTP/1.1 and HTTP/2 (before: HTTP/2 forwarded the first copy, HTTP/1.1 "a, b")', async () => {
  seen.length = 0;
  const failures: string[] = [];
  for (const name of REFUSED_WHEN_REPEATED) {
    const overH2 = await h2([
      [name, 'one'],
      [name, 'two'],
    ]);
    if (overH2.status !== 400 || codeOf(overH2.body) !== 'request.field_repeated') failures.push(`HTTP/2 ${name}: ${overH2.status}`);
    const overH1 = await http1Once(setup.pki, setup.gw.port, '/x', `Host: localhost\r\n${name}: one\r\n${name.toUpperCase()}: two\r\n`);
    if (overH1.status !== 400 || codeOf(overH1.body) !== 'request.field_repeated') failures.push(`HTTP/1.1 ${name}: ${overH1.status}`);
  }
  assert.deepEqual(failures, []);
  assert.deepEqual(seen, []);
  // One copy of each passes, as sent.
  const once = REFUSED_WHEN_REPEATED.map((name): [string, string] => [name, `v-${name}`]);
  const overH2 = await h2(once);
  assert.equal(overH2.status, 200, JSON.stringify(overH2));
  const overH1 = await http1Once(setup.pki, setup.gw.port, '/x', `Host: localhost\r\n${once.map(([n, v]) => `${n}: ${v}\r\n`).join('')}`);
  assert.equal(overH1.status, 200, overH1.body);
  for (const answer of [overH2.body, overH1.body]) {
    const headers = JSON.parse(answer).headers as Record<string, string>;
    for (const name of ['user-agent', 'referer', 'date', 'etag']) assert.equal(headers[name], `v-${name}`, name);
  }
});
