// The portal's CSRF token belongs to the signed-in session (portal/csrf.ts, docs/security.md
// section 47): in real Chromium, with a real OpenID provider (`oidc-provider`), a token taken
// from a page before a sign-out is refused once someone else has signed in in that browser,
// even sent with the CSRF cookie it was made for; the fresh page's token works. Sign-in also
// replaces the CSRF cookie.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { CSRF_COOKIE } from '../portal/csrf.ts';
import { type OidcPortal, startOidcPortal } from './helpers/oidc-portal.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('portal-csrf-session');
let stack: OidcPortal;
let base: string;

before(async () => {
  stack = await startOidcPortal(t.dir, { users: {}, admins: [] });
  base = stack.base;
});

after(async () => {
  await stack?.close();
  t.cleanup();
});

/** Signs `login` in on `page` (its context keeps the cookies), through the provider's form; lands on /keys. */
async function signIn(page: Page, login: string): Promise<void> {
  await page.goto(`${base}/keys`);
  await page.locator('#sign-in').click();
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(`${base}/keys`);
  assert.equal(await page.locator('#signed-in-as').innerText(), `${login}@example.com`);
}

/** The browser's cookies as a Cookie header, and the CSRF cookie's value. */
async function cookiesOf(context: BrowserContext): Promise<{ header: string; csrf: string | undefined; session: string | undefined }> {
  const all = await context.cookies(base);
  return {
    header: all.map((c) => `${c.name}=${c.value}`).join('; '),
    csrf: all.find((c) => c.name === CSRF_COOKIE)?.value,
    session: all.find((c) => c.name === 'mtlsgate_session')?.value,
  };
}

/** POST /auth/logout with `token` and the cookies `cookie`: the status (303 signed out, 403 refused). */
async function signOutWith(cookie: string, token: string): Promise<number> {
  const res = await fetch(`${base}/auth/logout`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: token }).toString(),
  });
  const page = await res.text();
  // A refusal says what may have happened and what to do.
  if (res.status === 403) assert.match(page, /This page is out of date .*Reload the page and use its Sign out button\./);
  return res.status;
}

test("a CSRF token from before a sign-out is refused in the next account's session, even with the cookie it was made for; the new page's token works", async () => {
  const context = await stack.browser.newContext();
  try {
    const page = await context.newPage();
    await signIn(page, 'ada');
    const adaToken = await page.locator('form.signout input[name="csrf"]').inputValue();
    const ada = await cookiesOf(context);
    assert.ok(ada.csrf && ada.session);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${base}/signed-out`);

    // Another person at the same browser: the provider's own session (its cookies, on the same
    // host) ends too, so the provider asks who signs in; the portal's cookies stay as they are.
    await context.clearCookies({ name: /^(?!mtlsgate_)/ });
    await signIn(page, 'bob');
    const bob = await cookiesOf(context);
    assert.ok(bob.session && bob.session !== ada.session);
    assert.notEqual(bob.csrf, ada.csrf, 'sign-in replaced the CSRF cookie');
    // Ada's page's token with Bob's session: with the CSRF cookie the browser holds now, and with
    // the one it held when the token was made (a cookie that outlived the sign-in).
    const bobSession = `mtlsgate_session=${bob.session}`;
    assert.equal(await signOutWith(bob.header, adaToken), 403);
    assert.equal(await signOutWith(`${bobSession}; ${CSRF_COOKIE}=${ada.csrf}`, adaToken), 403);
    await page.reload();
    assert.equal(await page.locator('#signed-in-as').innerText(), 'bob@example.com', 'Bob is still signed in');
    // The token of the page Bob sees now is his: the button works.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${base}/signed-out`);
    assert.equal((await fetch(`${base}/keys`, { headers: { cookie: bob.header } })).status, 401, "Bob's session has ended");
  } finally {
    await context.close();
  }
});
