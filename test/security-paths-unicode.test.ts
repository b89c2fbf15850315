// Percent-encoded Unicode that a backend reads as ASCII (docs/security.md section 37): a reader
// that folds compatibility forms (NFKC) sees "/" in U+FF0F, "." in U+FF0E, a space in U+00A0 and
// "a" in U+FF41; one that converts to a Windows code page with "best fit" sees "/" in U+2215 and
// "\" in U+00A5 (code page 932). Before, each was forwarded as sent: "/x/%EF%BC%8E%EF%BC%8E/admin/x"
// reached the keyless "/" API, and is "/admin/x" to such a backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { type EchoAnswer, type EchoView, echoAnswers } from './helpers/one-request.ts';
import { gatewayTestHooks, openAndAdminApis } from './helpers/config-gateway.ts';
import { BAD_PATH, routeRequest, type RouteTables } from '../runtime/route.ts';
import { decide } from '../runtime/stages/decide.ts';

const setup = gatewayTestHooks(({ echo }) => buildBundle(openAndAdminApis(echo)));

/** The path the upstream received, when the request was forwarded. */
const upstreamPath = (echo: EchoView) => ({ upstream: echo.path });
type Answer = EchoAnswer<ReturnType<typeof upstreamPath>>;

/** GET with the target written byte for byte over TLS, HTTP/1.1. */
const h1 = (target: string) => echoAnswers(setup.pki, setup.gw.port, upstreamPath).h1(target, 'Host: localhost\r\n');
const h2get = (path: string) => echoAnswers(setup.pki, setup.gw.port, upstreamPath).h2({ ':path': path });

const REFUSED: Answer = { status: 400, code: 'request.bad_path', upstream: undefined };

async function refusedBothWays(path: string): Promise<void> {
  assert.deepEqual(await h1(path), REFUSED, `HTTP/1.1 ${path}`);
  assert.deepEqual(await h2get(path), REFUSED, `HTTP/2 ${path}`);
}

test('look-alikes of "/", "\\", "." and space, percent-encoded, are refused anywhere in the path (HTTP/1.1 and HTTP/2)', async () => {
  for (const path of [
    '/x/%EF%BC%8E%EF%BC%8E/admin/x', // U+FF0E fullwidth full stop: "/x/../admin/x"
    '/x/%EF%BC%8F..%EF%BC%8Fadmin/x', // U+FF0F fullwidth solidus
    '/x/%EF%BC%8F/../admin/x', // "/x///../admin/x" to a folding reader: checked before ".." is resolved
    '/x/%E2%80%A5/admin/x', // U+2025 two dot leader: ".."
    '/x/%E2%88%95/admin', // U+2215 division slash: "/" by best fit
    '/x/%E2%81%84/admin', // U+2044 fraction slash
    '/x/%EF%BC%BC/admin', // U+FF3C fullwidth reverse solidus
    '/x/%C2%A5/admin', // U+00A5 yen sign: "\" in code page 932
    '/admin%C2%A0/x', // U+00A0 no-break space: .NET trims it like a space
    '/x/%EF%BC%85%32%46', // U+FF05 fullwidth percent: "%2F" to a reader that decodes again
    '/x/a%EF%BC%9Bb', // U+FF1B fullwidth semicolon: a path parameter
  ])
    await refusedBothWays(path);
});

test('C1 controls and the Unicode line separators are controls: refused', async () => {
  for (const path of ['/x/%C2%85', '/x/%C2%80', '/x/%C2%9F', '/x/%E2%80%A8', '/x/%E2%80%A9']) await refusedBothWays(path);
});

test('letters and digits in compatibility form: refused when the folded path names a more specific API', async () => {
  await refusedBothWays('/%EF%BD%81dmin/x'); // U+FF41 fullwidth "a"
  await refusedBothWays('/%EF%BC%A1%EF%BC%A4%EF%BC%AD%EF%BC%A9%EF%BC%AE/x'); // "ＡＤＭＩＮ": NFKC then case
  await refusedBothWays('/adm%E2%85%B0n/x'); // U+2170 small roman numeral one: "i"
  // Under the API it names either way: forwarded as sent.
  assert.deepEqual(await h1('/admin/%EF%BD%81'), { status: 200, code: undefined, upstream: '/via-admin/admin/%EF%BD%81' });
  assert.deepEqual(await h2get('/x/%EF%BD%81dmin'), { status: 200, code: undefined, upstream: '/via-open/x/%EF%BD%81dmin' });
});

test('held: UTF-8 without a compatibility form in ASCII passes as sent', async () => {
  for (const path of ['/x/caf%C3%A9', '/x/%E6%97%A5%E6%9C%AC%E8%AA%9E', '/x/%F0%9F%98%80', '/admin/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82']) {
    const want = { status: 200, code: undefined, upstream: `${path.startsWith('/admin/') ? '/via-admin' : '/via-open'}${path}` };
    assert.deepEqual(await h1(path), want, path);
    assert.deepEqual(await h2get(path), want, path);
  }
});

test('explain (decide) refuses the same targets; more look-alikes, wherever they stand', () => {
  for (const path of ['/x/%EF%BC%8E%EF%BC%8E/admin/x', '/%EF%BD%81dmin/x', '/x/%C2%85']) {
    assert.equal(decide(setup.gw.snapshot(), { method: 'GET', host: 'localhost', path }, null, Date.now()).refusal?.code, 'request.bad_path', path);
  }
  const tables: RouteTables<string> = {
    byHost: new Map(),
    anyHost: new Map([
      ['/', 'open'],
      ['/admin/', 'admin'],
    ]),
  };
  for (const lookalike of ['%EF%BC%8F', '%EF%BC%8E', '%E2%80%A4', '%EF%B9%A8', '%E2%88%96', '%E2%A7%B5', '%E2%82%A9', '%E3%80%80', '%E2%80%82', '%C2%B4']) {
    for (const path of [`/${lookalike}`, `/x/a${lookalike}b`, `/admin/${lookalike}/x`]) assert.equal(routeRequest(tables, 'h', path), BAD_PATH, path);
  }
  assert.deepEqual(routeRequest(tables, 'h', '/x/%C2%B2'), { api: 'open', path: '/x/%C2%B2' }); // "²" folds to "2": no other API
});

// Section 40: Windows' best fit maps letters too, not only separators: a letter with a diacritic
// the code page lacks becomes its base letter ("ā" is "a" in code page 1252), and so do dotless
// i and the letters with a stroke, none of which NFKC folds. "/%C4%81dmin/x" reached the keyless
// "/" API, and is "/admin/x" to IIS or a Win32 "A" file API.
test('letters Windows best fit maps to ASCII (diacritics, dotless i, strokes): refused when they name a more specific API', async () => {
  await refusedBothWays('/%C4%81dmin/x'); // U+0101 a with macron
  await refusedBothWays('/adm%C4%B1n/x'); // U+0131 dotless i
  await refusedBothWays('/%C3%A1dmin/x'); // U+00E1 a with acute ("a" in code page 1251)
  await refusedBothWays('/a%C4%8Fmin/x'); // U+010F d with caron
  assert.equal(
    routeRequest(
      {
        byHost: new Map(),
        anyHost: new Map([
          ['/', 'open'],
          ['/legal/', 'legal'],
        ]),
      },
      'h',
      '/%C5%82egal/x',
    ),
    BAD_PATH,
  ); // U+0142 l with stroke
  assert.equal(decide(setup.gw.snapshot(), { method: 'GET', host: 'localhost', path: '/adm%C4%B1n/x' }, null, Date.now()).refusal?.code, 'request.bad_path');
  // Under the API it names either way, or naming no other API: forwarded as sent.
  assert.deepEqual(await h1('/admin/%C4%81'), { status: 200, code: undefined, upstream: '/via-admin/admin/%C4%81' });
  assert.deepEqual(await h2get('/x/%C4%81dmin'), { status: 200, code: undefined, upstream: '/via-open/x/%C4%81dmin' });
});
