// The Host header (HTTP/2: :authority) must be host[:port] (docs/security.md section 37). The
// gateway routes on the host it reads from it and sends the header upstream as X-Forwarded-Host,
// its own header, which upstreams build absolute links from (password resets, redirects).
// Before, "pay.example.test:1@evil.example" was routed as pay.example.test and forwarded as it
// came: "https://pay.example.test:1@evil.example/reset" is a link to evil.example.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { type EchoAnswer, type EchoView, echoAnswers, http2Once } from './helpers/one-request.ts';
import { gatewayTestHooks } from './helpers/config-gateway.ts';
import { curl } from './helpers/gateway-fixtures.ts';
import { BAD_HOST, hostOf } from '../runtime/route.ts';
import { decide } from '../runtime/stages/decide.ts';

const setup = gatewayTestHooks(({ echo }) =>
  buildBundle([
    { id: 'pay', listen_path: '/', domain: 'pay.example.test', target_url: `${echo.url}/via-pay`, use_keyless: true, strip_listen_path: false },
    { id: 'open', listen_path: '/', target_url: `${echo.url}/via-open`, use_keyless: true, strip_listen_path: false },
  ]),
);

/** X-Forwarded-Host as the upstream received it, when the request was forwarded. */
const forwardedHost = (echo: EchoView) => ({ forwardedHost: echo.headers?.['x-forwarded-host'] });
type Answer = EchoAnswer<ReturnType<typeof forwardedHost>>;

/** GET / with the Host line written byte for byte, HTTP/1.1 over TLS. */
const h1 = (host: string) => echoAnswers(setup.pki, setup.gw.port, forwardedHost).h1('/', `Host: ${host}\r\n`);

/** GET / over HTTP/2 with this :authority (nghttp2 lets "@" and RFC 3986's sub-delims through). */
const h2 = (authority: string) => echoAnswers(setup.pki, setup.gw.port, forwardedHost).h2({ ':path': '/', ':authority': authority }, 'pay.example.test');

/** One HTTP/2 request with these headers (SNI pay.example.test). */
const h2Headers = (headers: Record<string, string>) => echoAnswers(setup.pki, setup.gw.port, forwardedHost).h2(headers, 'pay.example.test');

const BAD: Answer = { status: 400, code: 'request.bad_host', forwardedHost: undefined };

test('a Host with user info, a path, a list, an escape or a port that is no number: 400 request.bad_host, nothing forwarded', async () => {
  for (const host of [
    'pay.example.test:1@evil.example',
    'pay.example.test@evil.example',
    'pay.example.test/evil',
    'pay.example.test\\evil',
    'pay.example.test, evil.example',
    'pay.example.test:443#x',
    'pay.example.test?x',
    'pay%2eexample.test',
    'pay.example.test:abc',
    'pay.example.test:443:443',
    '[::1',
    '[::1]x',
    ':443',
  ])
    assert.deepEqual(await h1(host), BAD, host);
  const before = setup.gw.records.length;
  assert.deepEqual(await h2('pay.example.test:1@evil.example'), BAD);
  assert.deepEqual(await h2("pay.example.test!$&'()*+,;="), BAD);
  assert.equal(setup.gw.records.at(-1)?.code, 'request.bad_host');
  assert.equal(setup.gw.records.length, before + 2);
});

test('curl: the same Host refused over HTTP/1.1 and HTTP/2', async () => {
  for (const http of ['--http1.1', '--http2']) {
    const r = await curl(setup.pki, setup.gw.port, '/', { host: 'pay.example.test', headers: { host: 'pay.example.test:1@evil.example' }, extra: [http] });
    assert.equal(r.status, 400, `${http} ${r.body}`);
    assert.equal(JSON.parse(r.body).code, 'request.bad_host');
  }
});

test('held: names, IP literals and ports pass, X-Forwarded-Host as sent; the host routes as before', async () => {
  for (const [host, via] of [
    ['pay.example.test', 'pay'],
    ['PAY.Example.TEST:8443', 'pay'],
    ['pay.example.test.', 'pay'],
    ['pay.example.test:', 'pay'],
    ['[::1]:443', 'open'],
    ['[::FFFF:127.0.0.1]', 'open'],
    ['127.0.0.1:443', 'open'],
    ['under_score.example', 'open'],
  ]) {
    const r = await h1(host);
    assert.deepEqual(r, { status: 200, code: undefined, forwardedHost: host }, host);
    assert.match(JSON.stringify(setup.gw.records.at(-1)), new RegExp(`"api":"${via}"`), host);
  }
  assert.deepEqual(await h2('PAY.example.test:443'), { status: 200, code: undefined, forwardedHost: 'PAY.example.test:443' });
});

test('hostOf and explain (decide) agree', () => {
  assert.equal(hostOf('a.example:1@evil', ''), BAD_HOST);
  assert.equal(hostOf('A.Example:8443', ''), 'a.example');
  assert.equal(hostOf('[::1]:8443', ''), '[::1]');
  assert.equal(hostOf(undefined, 'sni.test.'), 'sni.test');
  assert.equal(decide(setup.gw.snapshot(), { method: 'GET', host: 'pay.example.test@evil', path: '/' }, null, Date.now()).refusal?.code, 'request.bad_host');
  assert.equal(decide(setup.gw.snapshot(), { method: 'GET', host: 'pay.example.test', path: '/' }, null, Date.now()).refusal, null);
});

test('HTTP/2 routes on :authority, not on the SNI: each host reaches its own API whatever name the handshake gave', async () => {
  // Issue 12: "routing on :authority". The two APIs share the listen path "/"; the upstream path
  // says which one forwarded the request (target_url .../via-pay or .../via-open).
  const via = async (authority: string, servername: string) => {
    const r = await http2Once(setup.pki, setup.gw.port, { ':path': '/x', ':authority': authority }, servername);
    assert.equal(r.status, 200, `${authority} (SNI ${servername}): ${r.body}`);
    return (JSON.parse(r.body) as { path: string }).path;
  };
  assert.equal(await via('pay.example.test', 'localhost'), '/via-pay/x');
  assert.equal(await via('PAY.example.test:8443', 'localhost'), '/via-pay/x');
  assert.equal(await via('localhost', 'pay.example.test'), '/via-open/x');
  assert.equal(await via('other.example', 'pay.example.test'), '/via-open/x');
});

// Section 40: a request naming two hosts. node:http kept the first Host line (routed, checked and
// sent as X-Forwarded-Host) while a proxy in front may have read the last; HTTP/2's :authority
// routed whatever Host said beside it.
test('two Host lines (HTTP/1.1), or :authority and a different Host (HTTP/2): 400 request.bad_host, nothing forwarded', async () => {
  const { gw } = setup;
  const before = gw.records.length;
  assert.deepEqual(await h1('pay.example.test\r\nHost: evil.example'), BAD);
  assert.deepEqual(await h1('evil.example\r\nHost: pay.example.test'), BAD);
  // RFC 9112 3.2: more than one Host line is a 400, whatever they say.
  assert.deepEqual(await h1('pay.example.test\r\nHost: pay.example.test'), BAD);
  assert.deepEqual(await h2Headers({ ':path': '/', ':authority': 'pay.example.test', host: 'evil.example' }), BAD);
  assert.equal(gw.records.length, before + 4);
  assert.ok(gw.records.slice(before).every((rec) => rec.code === 'request.bad_host'));
});

test('held: HTTP/2 with Host alone, or the same host twice, routes as before', async () => {
  const same = await h2Headers({ ':path': '/', ':authority': 'pay.example.test', host: 'pay.example.test' });
  assert.deepEqual(same, { status: 200, code: undefined, forwardedHost: 'pay.example.test' });
  assert.match(JSON.stringify(setup.gw.records.at(-1)), /"api":"pay"/);
});
