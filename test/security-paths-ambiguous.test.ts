// Issue 10 item 1, the classes the first fix left open (docs/security.md section 35): a
// fragment ("#") in the target, trailing spaces on a segment (Windows and IIS drop them as they
// drop trailing dots), encoded control characters (a C backend stops at NUL, CR/LF reach
// logs), and percent-encoded bytes that are not UTF-8 (an old decoder reads "%C0%AE" as ".").
// Before: each reached the keyless "/" API with 200 and was forwarded as sent.
import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session } from 'node:http2';
import { after, test } from 'node:test';
import { buildBundle, sha256Hex } from './helpers/bundle-builder.ts';
import { gatewayTestHooks, openAndAdminApis } from './helpers/config-gateway.ts';
import { type EchoView, echoAnswers } from './helpers/one-request.ts';
import { BAD_PATH, isPlainPath, routeRequest, type RouteTables } from '../runtime/route.ts';
import { decide } from '../runtime/stages/decide.ts';

const TOKEN = 'public-only-token';
const setup = gatewayTestHooks(({ echo }) =>
  buildBundle(
    // As in security-paths.test.ts, and an API behind a key.
    [...openAndAdminApis(echo), { id: 'users', listen_path: '/users/', target_url: `${echo.url}/u` }],
    // Unanchored at the end on purpose: were the query string matched too, "/private?/public" would pass.
    [{ id: 'k', token_sha256: sha256Hex(TOKEN), access_rights: { users: { allowed_urls: [{ url: '^/public', methods: [] }] } } }],
  ),
);
/** The HTTP/2 requests' one session, opened by the first. */
let h2: ClientHttp2Session | undefined;
function session(): ClientHttp2Session {
  if (!h2) {
    h2 = connect(`https://localhost:${setup.gw.port}`, { ca: setup.pki.ca.certPem });
    h2.on('error', () => {});
  }
  return h2;
}
after(() => h2?.close());

/** The path the upstream received (without the API's base), when the request was forwarded. */
const upstreamPath = (echo: EchoView) => ({ upstream: echo.path?.replace(/^\/(via-open|via-admin|u)(?=\/)/, '$1 ') });

/** GET with the target written byte for byte (latin1) over TLS, HTTP/1.1. */
const h1 = (target: string, headers = '') => echoAnswers(setup.pki, setup.gw.port, upstreamPath).h1(target, `Host: localhost\r\n${headers}`);

/** GET with `:path` as given, HTTP/2, all on one session. */
const h2get = (path: string) => echoAnswers(setup.pki, setup.gw.port, upstreamPath, session()).h2({ ':path': path });

const REFUSED = { status: 400, code: 'request.bad_path', upstream: undefined };

async function expectRefused(paths: string[]): Promise<void> {
  for (const p of paths) {
    assert.deepEqual(await h1(p), REFUSED, `HTTP/1.1 ${p}`);
    assert.deepEqual(await h2get(p), REFUSED, `HTTP/2 ${p}`);
  }
}

async function expectForwarded(cases: Record<string, string>): Promise<void> {
  for (const [p, want] of Object.entries(cases)) {
    assert.deepEqual(await h1(p), { status: 200, code: undefined, upstream: want }, `HTTP/1.1 ${p}`);
    assert.deepEqual(await h2get(p), { status: 200, code: undefined, upstream: want }, `HTTP/2 ${p}`);
  }
}

test("the audit's paths get 400 request.bad_path over raw TLS (HTTP/1.1) and HTTP/2: /admin#/x, /admin%20/x, /admin%00/x", async () => {
  await expectRefused(['/admin#/x', '/admin%20/x', '/admin%00/x', '/profile#/me']);
});

test('a "#" anywhere in the target is refused, in the query string too (a URL parser reads the rest as a fragment)', async () => {
  await expectRefused(['/x#', '/x/y#z', '/admin/#', '/x?a=1#/admin', '/x?#', '/%23x#']);
  // An encoded "#" is data, as RFC 3986 means it: forwarded as sent.
  await expectForwarded({ '/x/%23y': 'via-open /x/%23y', '/x?a=%23': 'via-open /x?a=%23' });
});

test('trailing spaces on a segment count as trailing dots: refused when the path without them names another API', async () => {
  await expectRefused(['/admin%20/x', '/admin%20./x', '/admin.%20/x', '/admin%20%20', '/%61dmin%20/x']);
  // Under the API the path names either way, they pass as sent; a space inside a segment is no trailing space.
  await expectForwarded({
    '/x/name%20/y': 'via-open /x/name%20/y',
    '/admin/a%20/b': 'via-admin /admin/a%20/b',
    '/x/a%20b': 'via-open /x/a%20b',
  });
});

test('a segment of only dots and spaces is refused: trimmed, it is "", "." or ".." depending on the reader', async () => {
  await expectRefused(['/x/..%20/admin/x', '/x/.%20./admin', '/x/%20/y', '/x/.../admin/x', '/%20.%20/admin']);
});

test('encoded control characters (%00-%1F, %7F) are refused anywhere in the path', async () => {
  const paths = ['/admin%09/x', '/x/%0D%0Ay', '/x/%0a', '/x/a%00b', '/x/%7F', '/x/%1f', '/admin/%00'];
  await expectRefused(paths);
  for (let byte = 0; byte < 0x20; byte++) assert.equal(routeRequest(TABLES, 'h', `/x/${hex(byte)}y`), BAD_PATH, hex(byte));
});

test('percent-encoded bytes must be UTF-8: overlong forms of "." and "/", surrogates, stray and missing continuation bytes are refused', async () => {
  await expectRefused([
    '/x/%C0%AE%C0%AE/admin/x', // overlong "..": IIS 4/5 read it so
    '/adm%C0%AEin/x',
    '/x%C0%AFadmin/x', // overlong "/"
    '/x/%E0%80%AE',
    '/x/%F0%80%80%AE',
    '/x/%C1%9C', // overlong "\"
    '/x/%ED%A0%80', // a surrogate
    '/x/%F4%90%80%80', // above U+10FFFF
    '/x/%AE', // a continuation byte alone
    '/x/%C3', // a lead byte alone
    '/x/%C3/%A9', // its continuation after a "/"
    '/x/%E2%82', // cut short
    '/x/%E9t%E9', // Latin-1 "été"
  ]);
  // UTF-8 passes, its escapes as sent (upper-case hex).
  await expectForwarded({
    '/x/%C3%A9t%C3%A9': 'via-open /x/%C3%A9t%C3%A9',
    '/x/%e2%82%ac': 'via-open /x/%E2%82%AC',
    '/x/%F0%9F%94%91': 'via-open /x/%F0%9F%94%91',
  });
});

test('raw bytes beyond ASCII in :path (HTTP/2 carries them; HTTP/1.1 parsing refuses them) are refused, not forwarded', async () => {
  // "\xC0\xAE": the overlong "." as raw bytes. Before: forwarded as they came.
  for (const p of ['/adm\xC0\xAEin/x', '/x/\xC0\xAE\xC0\xAE/admin/x', '/x/\xE2\x82\xAC', '/x/\xE9'])
    assert.deepEqual(await h2get(p), REFUSED, JSON.stringify(p));
});

test('the query string: routing and allowed_urls see the path only; encoded controls in it are data and pass (held before)', async () => {
  // The key may reach /users/public... only: its allowed_urls match the path after the listen path, never the query.
  assert.deepEqual((await h1('/users/private?/public', `Authorization: ${TOKEN}\r\n`)).code, 'access.url_denied');
  assert.deepEqual(await h1('/users/public?x=/private', `Authorization: ${TOKEN}\r\n`), { status: 200, code: undefined, upstream: 'u /public?x=/private' });
  // A query naming another API does not route: the path does.
  await expectForwarded({ '/x?/admin/x': 'via-open /x?/admin/x', '/x?a=%00&q=line%0Aend': 'via-open /x?a=%00&q=line%0Aend' });
});

test('explain (decide) refuses the same targets the gateway refuses', () => {
  const snapshot = setup.gw.snapshot();
  for (const path of ['/admin#/x', '/x?a#b', '/admin%20/x', '/admin%00/x', '/x/%C0%AE%C0%AE/admin/x', '/x/.%20/y']) {
    assert.equal(decide(snapshot, { method: 'GET', host: 'localhost', path }, null, Date.now()).refusal?.code, 'request.bad_path', path);
  }
});

const TABLES: RouteTables<string> = {
  byHost: new Map(),
  anyHost: new Map([
    ['/', 'open'],
    ['/admin/', 'admin'],
  ]),
};
const hex = (byte: number) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;

test('the fast path takes no target with "#", a control, a space or a byte beyond ASCII', () => {
  for (const p of ['/x#', '/x/\u0000', '/x/\t', '/x y', '/x\u007f', '/x/\u00e9', '/x/\u20ac']) {
    assert.equal(isPlainPath(p), false, JSON.stringify(p));
    assert.equal(routeRequest(TABLES, 'h', p), BAD_PATH, JSON.stringify(p));
  }
  assert.equal(isPlainPath('/payments/v2/charges/ch_123/refunds'), true);
});
