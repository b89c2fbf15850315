// The signed-in portal's OpenID Connect sign-in, attacked (docs/security.md section 52): a real
// `oidc-provider` in this process, signing with a key the test holds, so that the ID tokens it
// returns can be rewritten and signed again as a hostile provider (or a stolen provider key)
// would: another client's audience, an expired token, another issuer, another nonce. The
// sign-in runs in real Chromium; replays and planted cookies are sent with fetch.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { listen, closeServer } from '../common/listen.ts';
import { createPortal } from '../portal/server.ts';
import { SessionStore } from '../portal/session.ts';
import { portalOidc, signInAt } from './helpers/oidc-idp.ts';
import { type OidcPortal, startOidcPortal } from './helpers/oidc-portal.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('portal-oidc-attacks');
let p: OidcPortal;

before(async () => {
  p = await startOidcPortal(t.dir, { users: {}, admins: ['ada@example.com'], tamperable: true });
});

after(async () => {
  await p?.close();
  t.cleanup();
});

const SESSION = /^mtlsgate_session=([^;]+)/m;

/** The session cookie of a browser context (its value), or ''. */
async function sessionOf(context: BrowserContext): Promise<string> {
  return (await context.cookies(p.base)).find((c) => c.name === 'mtlsgate_session')?.value ?? '';
}

/** What /keys answers to a bare session cookie. */
async function keysWith(session: string): Promise<number> {
  const res = await fetch(`${p.base}/keys`, { headers: { cookie: `mtlsgate_session=${session}` }, redirect: 'manual' });
  await res.text();
  return res.status;
}

/**
 * A fresh browser at the provider's login form for the portal, then signed in as `login`; the
 * callback's answer (the provider's redirect to it rewritten by `p.idp.rewriteCallback`).
 */
async function signInExpectingCallback(login: string): Promise<{ context: BrowserContext; page: Page; status: number; text: string }> {
  const context = await p.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${p.base}/auth/login?return=/keys`);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  const callback = page.waitForResponse((r) => r.url().startsWith(`${p.base}/auth/callback`));
  await page.locator('button[type="submit"]').click();
  const answer = await callback;
  await page.waitForLoadState();
  return { context, page, status: answer.status(), text: await page.locator('body').innerText() };
}

test('a callback is answered once: replayed with its login cookie it starts no session and the provider is not asked again', async () => {
  const context = await p.browser.newContext();
  const page = await context.newPage();
  let callbackUrl = '';
  let loginCookie = '';
  page.on('request', async (request) => {
    if (!request.url().startsWith(`${p.base}/auth/callback`)) return;
    callbackUrl = request.url();
    loginCookie = (await request.allHeaders()).cookie ?? '';
  });
  await page.goto(`${p.base}/auth/login?return=/keys`);
  await page.locator('input[name="login"]').fill('cal');
  await page.locator('input[name="password"]').fill('any password');
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(`${p.base}/keys`);
  assert.match(loginCookie, /mtlsgate_login=/);
  const exchanges = p.idp.tokenRequests;
  // The attacker has the callback's address and the browser's cookies of that moment (a proxy log, a shared machine).
  const replay = await fetch(callbackUrl, { headers: { cookie: loginCookie }, redirect: 'manual' });
  const page2 = await replay.text();
  assert.equal(replay.status, 400);
  // Before: the provider was asked again (and refused the spent code): "The sign-in could not be completed: ...".
  assert.match(page2, /This sign-in attempt was already used/);
  assert.equal(p.idp.tokenRequests, exchanges, 'the provider is not asked for a used attempt');
  assert.doesNotMatch(replay.headers.get('set-cookie') ?? '', SESSION);
  assert.match(replay.headers.get('set-cookie') ?? '', /mtlsgate_login=; Path=\/; Max-Age=0/, 'the attempt cookie is cleared');
  await context.close();
});

test("a provider's refusal ends the attempt too: its cookie is cleared and the same state is not accepted again", async () => {
  const begin = await fetch(`${p.base}/auth/login?return=/keys`, { redirect: 'manual' });
  assert.equal(begin.status, 303);
  const state = new URL(begin.headers.get('location')!).searchParams.get('state') ?? '';
  const login = /^(mtlsgate_login=[^;]+)/.exec(begin.headers.get('set-cookie') ?? '')![1]!;
  const refused = await fetch(`${p.base}/auth/callback?error=access_denied&state=${state}`, { headers: { cookie: login } });
  assert.equal(refused.status, 400);
  assert.match(await refused.text(), /refused the sign-in \(access_denied\)/);
  assert.match(refused.headers.get('set-cookie') ?? '', /mtlsgate_login=; Path=\/; Max-Age=0/);
  // Before: the attempt was still open (the provider's code would have been exchanged).
  const exchanges = p.idp.tokenRequests;
  const again = await fetch(`${p.base}/auth/callback?code=anything&state=${state}`, { headers: { cookie: login } });
  assert.equal(again.status, 400);
  assert.match(await again.text(), /already used/);
  assert.equal(p.idp.tokenRequests, exchanges);
});

test('signing in ends the session the browser had: a copy of the earlier cookie is worthless afterwards', async () => {
  const { context: first } = await signInAt(p.browser, p.base, p.idp, 'dora');
  const doraSession = await sessionOf(first);
  assert.equal(await keysWith(doraSession), 200);
  await first.close();
  // The same browser (its cookie kept: a shared machine, or a cookie planted in it), someone else signs in.
  const context = await p.browser.newContext();
  await context.addCookies([{ name: 'mtlsgate_session', value: doraSession, url: p.base }]);
  const page = await context.newPage();
  await page.goto(`${p.base}/auth/login?return=/keys`);
  await page.locator('input[name="login"]').fill('emil');
  await page.locator('input[name="password"]').fill('any password');
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(`${p.base}/keys`);
  const emilSession = await sessionOf(context);
  assert.notEqual(emilSession, doraSession, 'a new session id at sign-in');
  assert.equal(await keysWith(emilSession), 200);
  // Before: 200 (dora's session lived on for 8 hours beside emil's).
  assert.equal(await keysWith(doraSession), 401);
  await context.close();
});

test('ID tokens a hostile provider signs: another audience, expired, another issuer, another nonce, no subject: no session', async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[string, (c: Record<string, unknown>) => Record<string, unknown>]> = [
    ['another client (aud)', (c) => ({ ...c, aud: 'another-client' })],
    ['another client besides (aud list, azp)', (c) => ({ ...c, aud: ['another-client', c.aud], azp: 'another-client' })],
    ['expired', (c) => ({ ...c, iat: now - 7200, exp: now - 3600 })],
    ['another issuer', (c) => ({ ...c, iss: 'https://login.evil.example' })],
    ['another nonce', (c) => ({ ...c, nonce: 'nonce-of-another-attempt' })],
    ['no subject', ({ sub: _sub, ...c }) => c],
  ];
  for (const [name, tamper] of cases) {
    p.idp.tamperIdToken = tamper;
    try {
      const { context, status, text } = await signInExpectingCallback('mallory');
      assert.equal(status, 400, name);
      assert.match(text, /The sign-in could not be completed/, name);
      assert.equal(await sessionOf(context), '', `${name}: no session`);
      await context.close();
    } finally {
      p.idp.tamperIdToken = null;
    }
  }
  // The same provider, untampered: the sign-in works (the cases above failed for their claim alone).
  const { context, status } = await signInExpectingCallback('mallory');
  assert.equal(status, 303);
  assert.notEqual(await sessionOf(context), '');
  await context.close();
});

test('the issuer mix-up: a callback naming another issuer (RFC 9207 iss), or none, is refused before the code is spent', async () => {
  for (const [name, rewrite] of [
    ['another issuer', (u: URL) => u.searchParams.set('iss', 'https://login.evil.example')],
    ['no issuer', (u: URL) => u.searchParams.delete('iss')],
  ] as const) {
    const exchanges = p.idp.tokenRequests;
    p.idp.rewriteCallback = rewrite;
    const { context, status, text } = await signInExpectingCallback('nina').finally(() => (p.idp.rewriteCallback = null));
    assert.equal(status, 400, name);
    assert.match(text, /The sign-in could not be completed/, name);
    assert.equal(await sessionOf(context), '', name);
    assert.equal(p.idp.tokenRequests, exchanges, `${name}: the code is not sent to the token endpoint`);
    await context.close();
  }
});

test('sign-out is a POST with the CSRF token of this session: a GET, a post without it, or from another site signs nobody out', async () => {
  const { context, page } = await signInAt(p.browser, p.base, p.idp, 'olga');
  const session = await sessionOf(context);
  const cookie = `mtlsgate_session=${session}`;
  assert.equal((await fetch(`${p.base}/auth/logout`, { headers: { cookie } })).status, 405);
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  assert.equal((await fetch(`${p.base}/auth/logout`, { method: 'POST', headers: { cookie, ...form }, body: 'csrf=' })).status, 403);
  const token = await page.locator('form[action="/auth/logout"] input[name="csrf"]').inputValue();
  const csrfCookie = (await context.cookies(p.base)).find((c) => c.name === 'mtlsgate_portal_csrf')!.value;
  const both = `${cookie}; mtlsgate_portal_csrf=${csrfCookie}`;
  const crossSite = await fetch(`${p.base}/auth/logout`, {
    method: 'POST',
    headers: { cookie: both, 'sec-fetch-site': 'cross-site', ...form },
    body: `csrf=${token}`,
  });
  assert.equal(crossSite.status, 403);
  assert.equal(await keysWith(session), 200, 'still signed in');
  const out = await fetch(`${p.base}/auth/logout`, { method: 'POST', headers: { cookie: both, ...form }, body: `csrf=${token}`, redirect: 'manual' });
  assert.equal(out.status, 303);
  assert.equal(await keysWith(session), 401);
  await context.close();
});

test('behind https every sign-in cookie is __Host-, Secure, HttpOnly, SameSite, with an expiry', async () => {
  const https = createPortal({
    configDir: p.config,
    bundlePath: `${t.dir}/bundle.json`,
    gatewayUrl: 'https://gw.example.test',
    oidc: portalOidc(p.idp, []),
    publicUrl: 'https://portal.example.test',
  });
  try {
    const base = `http://127.0.0.1:${(await listen(https.server, 0, '127.0.0.1')).port}`;
    const login = await fetch(`${base}/auth/login?return=/keys`, { redirect: 'manual' });
    assert.equal(login.status, 303);
    assert.equal(new URL(login.headers.get('location')!).searchParams.get('redirect_uri'), 'https://portal.example.test/auth/callback');
    assert.match(login.headers.get('set-cookie') ?? '', /^__Host-mtlsgate_login=[A-Za-z0-9_-]+; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/);
  } finally {
    https.issuer.keyCounts.close();
    await closeServer(https.server);
  }
  const session = new SessionStore(true).create({ sub: 's', email: '', name: 'n', admin: false }).setCookie;
  assert.match(session, /^__Host-mtlsgate_session=[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{43}; Path=\/; Max-Age=28800; HttpOnly; SameSite=Lax; Secure$/);
});
