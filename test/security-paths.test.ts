// Issue 10 item 1: the path is normalised before routing, and the same normalised path is
// forwarded; what stays ambiguous is refused (400 request.bad_path). Before: `/%61dmin/x`,
// `//admin/x`, `/admin;x/y`, `/x/..;/admin/x`, `/ADMIN/x` and `/admin./x` went to the keyless
// `/` API unchanged and reached `/admin` on backends that decode, merge slashes, drop `;`
// parameters or ignore case.
// Item 2 (runtime side): allowed_urls run in RE2 (linear time: the ReDoS path answers), and
// method-override headers never reach an upstream when the key's allowed_urls restrict methods.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { posix } from 'node:path';
import fc from 'fast-check';
import { RE2JS } from 're2js';
import { checkAllowedUrl } from '../bundle/checks.ts';
import { re2Problem } from '../compiler/url-pattern.ts';
import { normalisePath } from '../common/path-normalise.ts';
import { isPlainPath, routeRequest, type RouteTables } from '../runtime/route.ts';
import { buildBundle, sha256Hex } from './helpers/bundle-builder.ts';
import { closeGatewayTest, openAndAdminApis, startGatewayTest } from './helpers/config-gateway.ts';
import { curl, rawTlsClient, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

let pki: TestPki;
let cleanup: () => void;
let echo: EchoUpstream;
let gw: TestGateway;
const TOKEN = 'method-restricted-token';

before(async () => {
  ({ pki, cleanup, echo, gw } = await startGatewayTest(({ echo }) =>
    buildBundle(
      [
        // The open API and the one it must never reach (the upstream receives the whole
        // normalised path), and an API behind a key.
        ...openAndAdminApis(echo),
        { id: 'users', listen_path: '/users/', target_url: `${echo.url}/u` },
      ],
      [
        {
          id: 'k',
          token_sha256: sha256Hex(TOKEN),
          access_rights: { users: { allowed_urls: [{ url: '^/([a-z0-9]+)+/profile$', methods: ['GET'] }] } },
        },
      ],
    ),
  ));
});
after(() => closeGatewayTest({ gw, echo, cleanup }));

const agent = new Agent({ keepAlive: true, maxSockets: 4 });
after(() => agent.destroy());

/** One request with the path sent byte for byte; the status and the echoed upstream path. */
function get(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; code?: string; upstreamPath?: string; headers?: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: gw.port, path, method: 'GET', headers: { host: 'localhost', ...headers }, ca: pki.ca.certPem, servername: 'localhost', agent },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          const json = JSON.parse(body) as { code?: string; path?: string; headers?: Record<string, string> };
          resolve({ status: res.statusCode!, code: json.code, upstreamPath: json.path, headers: json.headers });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test("the report's paths: refused, or routed to the API the backend would see", async () => {
  const expect: Record<string, string> = {
    '/%61dmin/x': 'via-admin /admin/x', // decoded before routing: it is the admin API
    '//admin/x': 'via-admin /admin/x', // slashes merged
    '/admin;x/y': '400',
    '/x/..;/admin/x': '400',
    '/ADMIN/x': '400', // the case-folded path names a more specific API
    '/admin./x': '400',
    '/admin%2fx': '400',
    '/admin%5Cx': '400',
    '/x/%2e%2e/admin/x': '400', // ".." out of the API the path before it names
    '/x/./y//z': 'via-open /x/y/z',
    '/x/%7Euser/%41': 'via-open /x/~user/A',
    '/x/100%25': 'via-open /x/100%25',
    '/x/%zz': '400',
  };
  for (const [path, want] of Object.entries(expect)) {
    const r = await get(path);
    if (want === '400') {
      assert.deepEqual([r.status, r.code], [400, 'request.bad_path'], path);
    } else {
      assert.equal(r.status, 200, path);
      const [base, rest] = want.split(' ');
      assert.equal(r.upstreamPath, `/${base}${rest}`, path);
    }
  }
});

const SEGMENTS = [
  'admin',
  'ADMIN',
  'Admin',
  '%61dmin',
  '%41DMIN',
  'admin.',
  'admin..',
  '.',
  '..',
  '',
  'x',
  '%2e',
  '%2E%2e',
  '..;',
  'a;b',
  '%2f',
  '%5c',
  '%2Fadmin',
  '~u',
  '%7e',
  '%25',
  'b',
  'adm%69n',
  '%2e%2e%2fadmin',
  // Section 35: a fragment, trailing spaces, controls, overlong UTF-8.
  'admin#',
  '#',
  'admin%20',
  'admin%20.',
  '%20',
  '..%20',
  'admin%09',
  'admin%00',
  '%0d%0a',
  '%C0%AE',
  '%C0%AE%C0%AE',
  'x%C0%AFadmin',
];

/**
 * How a lenient backend might read a path: no fragment, overlong UTF-8 decoded ("%C0%AE" is
 * "."), cut at NUL, case-folded, ";params" dropped, trailing spaces trimmed, dot segments
 * resolved, slashes merged, trailing dots and spaces dropped.
 */
function lenient(path: string): string {
  let p = path
    .split('#')[0]
    .replace(/%C0%AE/gi, '.')
    .replace(/%C0%AF/gi, '/');
  try {
    p = decodeURIComponent(p);
  } catch {
    // left encoded
  }
  p = p
    .split('\0')[0]
    .toLowerCase()
    .replace(/\\/g, '/')
    .replace(/;[^/]*/g, '')
    .replace(/\s+(?=\/|$)/g, '');
  return posix
    .normalize(p)
    .replace(/[.\s]+(?=\/|$)/g, '')
    .replace(/\/+/g, '/');
}

test('property: the API chosen is the one whose listen_path is a segment prefix of the path the upstream receives', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 6 }), async (segments) => {
      const path = '/' + segments.join('/');
      const r = await get(path);
      if (r.status === 400) {
        assert.equal(r.code, 'request.bad_path');
        return;
      }
      assert.equal(r.status, 200, path);
      const m = /^\/(via-open|via-admin)(\/.*)$/.exec(r.upstreamPath!);
      assert.ok(m, `${path} -> ${r.upstreamPath}`);
      const forwarded = m[2];
      const isAdminPrefix = (p: string) => p === '/admin' || p.startsWith('/admin/');
      if (m[1] === 'via-admin') assert.ok(isAdminPrefix(forwarded), `${path}: admin chose, upstream got ${forwarded}`);
      else {
        assert.ok(!isAdminPrefix(forwarded), `${path}: open chose, upstream got ${forwarded}`);
        // Nor does any lenient reading of what the upstream got reach /admin.
        assert.ok(!isAdminPrefix(lenient(forwarded)), `${path}: open chose, a lenient upstream reads ${lenient(forwarded)}`);
      }
    }),
    { numRuns: 300 },
  );
});

// What the fast path costs is measured by bench/path-normalise.ts, not asserted here: a test
// asserts behaviour, and a wall-clock bound only says how loaded the machine was.
test('the fast path: an already-normal path is routed as it came; one that needs normalising reaches the same API and path', () => {
  const tables: RouteTables<string> = {
    byHost: new Map(),
    anyHost: new Map([
      ['/', 'open'],
      ['/admin/', 'admin'],
      ['/payments/v2/', 'p'],
    ]),
  };
  const plain = '/payments/v2/charges/ch_123/refunds';
  const odd = '/payments/v2/./charges//%63h_123/refunds';
  assert.ok(isPlainPath(plain));
  assert.ok(!isPlainPath(odd));
  assert.deepEqual(routeRequest(tables, 'h', plain), { api: 'p', path: plain });
  assert.deepEqual(routeRequest(tables, 'h', odd), { api: 'p', path: plain });
});

test('property: the fast path skips only work that would change nothing (a plain path normalises to itself)', () => {
  // Slashes and dots are what normalising changes; '%', '\\', ';' and capitals are never plain.
  const unit = fc.constantFrom('a', 'z', '0', '-', '_', '~', '.', '/');
  fc.assert(
    fc.property(fc.string({ unit, maxLength: 24 }), (rest) => {
      const path = `/${rest}`;
      if (!isPlainPath(path)) return;
      assert.deepEqual(normalisePath(path), { path, firstDot: -1, before: '/' }, path);
    }),
    { numRuns: 2_000 },
  );
});

test('allowed_urls run in RE2: the ReDoS path of the report answers, for everyone', async () => {
  // The engine, not the clock, is the proof: RE2 runs in time linear in the path whatever the
  // pattern, and refuses what only a backtracking engine can run (a backreference).
  assert.match(JSON.stringify(checkAllowedUrl('^/(a+)\\1/profile$')), /cannot run in RE2 \(linear time\)/);
  assert.ok(re2Problem('^/(a+)\\1/profile$'), 'the compiler refuses a backreference too');
  const matcher = gw.snapshot().key('k')?.rights.get('users')?.[0].pattern;
  assert.ok(matcher instanceof RE2JS, `the runtime matcher is RE2 (${matcher?.constructor.name})`);
  // A backtracking engine needs seconds for 29 characters before the "!" and doubles with each
  // one more: these would never finish, so the test's own completion is the bound.
  assert.equal(matcher.test(`/${'a'.repeat(100_000)}!/profile`), false);
  const evil = `/users/${'a'.repeat(8_000)}!/profile`; // within the 16 KB header limits
  const r = await curl(pki, gw.port, evil, { headers: { authorization: TOKEN } });
  assert.equal(r.json.code, 'access.url_denied');
  const ok = await curl(pki, gw.port, '/users/abc/profile', { headers: { authorization: TOKEN } });
  assert.equal(ok.status, 200);
});

test("method-override headers never reach the upstream when the key's allowed_urls restrict methods", async () => {
  const r = await curl(pki, gw.port, '/users/abc/profile', {
    headers: { authorization: TOKEN, 'X-HTTP-Method-Override': 'DELETE', 'X-HTTP-Method': 'DELETE', 'X-Method-Override': 'DELETE' },
  });
  assert.equal(r.status, 200);
  const sent = Object.keys(r.json.headers ?? {});
  assert.deepEqual(
    sent.filter((h) => /method/i.test(h)),
    [],
  );
  // Where methods are not restricted (the open API), they pass as sent.
  const open = await get('/x', { 'X-HTTP-Method-Override': 'PATCH' });
  assert.equal(open.headers?.['x-http-method-override'], 'PATCH');
});

test('method-override headers never reach the upstream of a WebSocket upgrade either, when methods are restricted', async () => {
  // The upgrade goes through runtime/websocket.ts, which builds its own upstream request.
  const c = await rawTlsClient(pki, gw.port);
  c.socket.write(
    'GET /users/abc/profile HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
      `Authorization: ${TOKEN}\r\nX-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\nX-Method-Override: DELETE\r\n\r\n`,
  );
  // The echo upstream answers the upgrade with a plain 200 naming the headers it received; the connection then ends.
  await c.whenClosed;
  const got = c.received();
  assert.match(got, /^HTTP\/1\.1 200 /);
  const json = JSON.parse(got.slice(got.indexOf('{'), got.lastIndexOf('}') + 1)) as { path: string; headers: Record<string, string> };
  assert.equal(json.path, '/u/abc/profile');
  assert.equal(json.headers.upgrade, 'websocket');
  assert.deepEqual(
    Object.keys(json.headers).filter((h) => /method/i.test(h)),
    [],
  );
});
