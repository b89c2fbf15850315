// The signed-in portal in real Chromium: a real OpenID provider in this process
// (oidc-provider, its login form), `mtlsgate portal --oidc-issuer ...` and `mtlsgate serve`
// as child processes, and real curl as the API client through the gateway. Developers sign
// in, prove possession of their certificates with the openssl command the page shows, see
// and change only their own keys; an admin approves; a renewal keeps both certificates until
// the old one is removed; signing out ends the session.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { DemoPki } from '../cli/pki.ts';
import { bindIdp, portalOidcFlags, signInAt, startIdpForPortal, writePortalClientSecret, type TestIdp } from './helpers/oidc-idp.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { curlWith, freshClient, runSignCommand, snapshotDir, spawnPortal, startUpstream, writePortalConfig } from './helpers/portal-fixtures.ts';
import { ARTIFACTS, closeLaunched, launchChromium } from './helpers/chromium.ts';
import { spawnDemoGateway } from './helpers/demo-gateway.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

const t = tempDir('portal-oidc');
let pki: DemoPki;
let config: string;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let idp: TestIdp;
let portal: Awaited<ReturnType<typeof spawnPortal>>;
let gateway: ReturnType<typeof spawnDemoGateway>;
let gatewayBase: string;
let browser: Browser;
let launching: Promise<Browser> | undefined;
type Client = Awaited<ReturnType<typeof freshClient>>;

before(async () => {
  launching = launchChromium(); // awaited last: it starts while the rest is set up
  pki = await demoPki(t.dir);
  upstream = await startUpstream();
  config = writePortalConfig(t.dir, upstream.url, pki);
  const bundle = join(t.dir, 'bundle.json');
  idp = await bindIdp({ ada: { email: 'ada@example.com', name: 'Ada Admin' }, gus: { email: 'gus@example.com', groups: ['platform-admins'] } });
  const secretFile = writePortalClientSecret(t.dir);
  portal = await spawnPortal([
    '--config',
    config,
    '--bundle',
    bundle,
    '--listen',
    '127.0.0.1:0',
    ...portalOidcFlags(idp, secretFile),
    '--admins',
    'ada@example.com',
    '--admin-group',
    'platform-admins',
  ]);
  startIdpForPortal(idp, portal.url);
  gateway = spawnDemoGateway(bundle, pki);
  gatewayBase = `https://${String((await gateway.serving()).listen)}`;
  browser = await launching;
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await closeLaunched(launching);
  portal?.kill();
  gateway?.kill();
  await idp?.close();
  await upstream?.close();
  t.cleanup();
});

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `portal-oidc-${name}.png`), fullPage: true });

/** A browser of its own (cookies and all) signed in at the provider as `login`. */
function signIn(login: string, screenshots = false): Promise<{ context: BrowserContext; page: Page }> {
  return signInAt(browser, portal.url, idp, login, screenshots ? shot : undefined);
}

/** Requests a key for `plan` in the browser, signing the page's challenge with real openssl; returns its id. */
async function requestKey(page: Page, plan: RegExp, client: Client, screenshot?: string): Promise<string> {
  await page.goto(`${portal.url}/`);
  await page.getByRole('radio', { name: plan }).check();
  await page.getByLabel('Your public certificate').fill(client.certPem);
  const signature = await runSignCommand(await page.locator('#sign-command').innerText(), client.keyFile);
  await page.getByLabel('Prove the certificate is yours').fill(signature);
  if (screenshot) await shot(page, screenshot);
  await page.getByRole('button', { name: 'Request key' }).click();
  await page.waitForURL(/\/keys\/portal-[0-9a-f]{8}\?done=issued$/);
  return (await page.locator('#key-id').innerText()).trim();
}

/** curl through the gateway with this client's certificate until it gets `status` (the gateway reloads by file watch). */
async function gatewaySays(client: Client, status: number, path = '/profile/me'): Promise<{ status: number; code: string | null }> {
  return waitFor(
    `curl with ${client.certFile} -> ${status}`,
    async () => {
      const r = await curlWith(`${gatewayBase}${path}`, pki, client.certFile, client.keyFile);
      return r.status === status ? r : null;
    },
    20_000,
    100,
  );
}

const keyFile = (keyId: string) => join(config, 'keys', 'portal', `${keyId}.yaml`);
let danaKey = '';
let dana: Client;
let danaPage: Page;

test('a developer signs in, requests a key with proof of possession and sees only their own; curl gets 200', async () => {
  dana = await freshClient(pki, t.dir, 'dana');
  const signedIn = await signIn('dana', true);
  danaPage = signedIn.page;
  // No loopback notice on a signed-in portal; the header names the user.
  assert.equal(await danaPage.locator('#mode-notice').count(), 0);
  assert.equal(await danaPage.locator('#signed-in-as').innerText(), 'dana@example.com');
  danaKey = await requestKey(danaPage, /^Profile API Instant/, dana, 'request-form');
  assert.match(await danaPage.locator('#notice').innerText(), /Your key is issued/);
  assert.equal(await danaPage.locator('#key-status .badge').getAttribute('data-status'), 'active');
  assert.equal((await danaPage.locator('#certificates .fingerprint').innerText()).trim(), `sha256:${dana.fingerprint}`);
  await shot(danaPage, 'key');
  const yaml = readFileSync(keyFile(danaKey), 'utf8');
  assert.match(yaml, /^owner: dana$/m);
  assert.match(yaml, /# portal-developer: "dana@example\.com"/);

  assert.equal((await gatewaySays(dana, 200)).status, 200);

  // My keys: this key only (alice's hand-written key and nobody else's).
  await danaPage.goto(`${portal.url}/keys`);
  assert.deepEqual(await danaPage.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key'))), [danaKey]);
  await shot(danaPage, 'my-keys');
});

test("a second developer can neither see nor change the first one's keys, with crafted URLs and form posts", async () => {
  const erin = await freshClient(pki, t.dir, 'erin', 'rsa');
  const { context, page } = await signIn('erin');
  const erinKey = await requestKey(page, /^Profile API Instant/, erin);
  await page.goto(`${portal.url}/keys`);
  assert.deepEqual(await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key'))), [erinKey]);
  const before = snapshotDir(config);

  // Crafted URLs: dana's key page answers as a key that does not exist.
  for (const path of [`/keys/${danaKey}`, `/requests/${danaKey}`, `/keys/${danaKey}%2F..`, '/keys/..%2F..%2Fapis%2Fapis', '/admin']) {
    const res = await page.goto(`${portal.url}${path}`);
    assert.ok(res!.status() === 404 || (path === '/admin' && res!.status() === 403), `${path}: ${res!.status()}`);
    assert.doesNotMatch(await page.content(), new RegExp(dana.fingerprint), path);
  }
  await shot(page, 'not-yours');

  // Crafted form posts from erin's own page, with erin's valid CSRF token, aimed at dana's key.
  await page.goto(`${portal.url}/keys/${erinKey}`);
  const csrf = await page.locator('form[action="/auth/logout"] input[name="csrf"]').inputValue();
  const challenge = await page.locator('input[name="challenge"]').inputValue();
  const signature = await runSignCommand(await page.locator('#sign-command').innerText(), erin.keyFile);
  const crafted: Array<[string, Record<string, string>]> = [
    [`/keys/${danaKey}/switch-off`, { csrf }],
    [`/keys/${danaKey}/remove-certificate`, { csrf, fingerprint: dana.fingerprint }],
    [`/keys/${danaKey}/renew`, { csrf, certificate: erin.certPem, challenge, signature }],
    [`/admin/keys/${danaKey}/approve`, { csrf }],
    [`/admin/keys/${danaKey}/deny`, { csrf }],
  ];
  for (const [action, fields] of crafted) {
    // From erin's page each time: the previous submission's navigation has then settled, so
    // the evaluate below never runs in a document that is being replaced.
    await page.goto(`${portal.url}/keys/${erinKey}`);
    // A real form submission by the browser (same origin, so Sec-Fetch-Site and CSRF pass).
    const answer = page.waitForResponse((r) => r.url() === `${portal.url}${action}`);
    await page.evaluate(
      ({ action, fields }) => {
        const form = document.createElement('form');
        form.method = 'post';
        form.action = action;
        for (const [name, value] of Object.entries(fields)) {
          const input = document.createElement('input');
          input.type = 'hidden';
          input.name = name;
          input.value = value;
          form.append(input);
        }
        document.body.append(form);
        // After evaluate returns: the submission navigates away from this document.
        setTimeout(() => form.submit(), 0);
      },
      { action, fields },
    );
    const status = (await answer).status();
    // The response came; wait until the browser has committed the document it navigated to.
    await page.waitForURL(`${portal.url}${action}`);
    assert.ok(status === 404 || (action.startsWith('/admin') && status === 403), `${action}: ${status}`);
    // And the same through the context's request API (cookies of erin's session).
    const direct = await context.request.post(`${portal.url}${action}`, { form: fields, headers: { accept: 'application/json' }, maxRedirects: 0 });
    assert.ok(direct.status() === 404 || (action.startsWith('/admin') && direct.status() === 403), `${action} (request API): ${direct.status()}`);
  }
  assert.deepEqual(snapshotDir(config), before, 'nothing in the config directory changed');
  assert.equal((await gatewaySays(dana, 200)).status, 200);
  await context.close();
});

test('an admin approves a pending key in the browser: curl with its certificate turns from 403 to 200; another is denied', async () => {
  const frank = await freshClient(pki, t.dir, 'frank');
  const frank2 = await freshClient(pki, t.dir, 'frank-2');
  const { context, page } = await signIn('frank');
  const denied = await requestKey(page, /^Profile API \(reviewed\)/, frank2);
  const pending = await requestKey(page, /^Profile API \(reviewed\)/, frank);
  assert.equal(await page.locator('#key-status .badge').getAttribute('data-status'), 'pending');
  const refused = await gatewaySays(frank, 403);
  assert.equal(refused.code, 'key.inactive');

  const admin = await signIn('ada');
  await admin.page.goto(`${portal.url}/admin`);
  const row = admin.page.locator(`#pending tr[data-key="${pending}"]`);
  await row.waitFor();
  assert.equal(await admin.page.locator('#plans tbody tr').count(), 2);
  // Recent keys: every developer's portal keys, newest first, each with its status.
  const recent = admin.page.locator('section[aria-labelledby="recent-title"]');
  const recentKeys = await recent.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')));
  assert.deepEqual(recentKeys.slice(0, 2), [pending, denied], 'newest first');
  assert.ok(recentKeys.includes(danaKey), "another developer's key is listed too");
  assert.equal(await recent.locator(`tr[data-key="${pending}"] .badge`).getAttribute('data-status'), 'pending');
  await shot(admin.page, 'admin');
  await row.getByRole('button', { name: `Approve ${pending}` }).click();
  await admin.page.waitForURL(`${portal.url}/admin?done=approved`);
  assert.match(await admin.page.locator('#notice').innerText(), /Approved/);
  assert.equal(await admin.page.locator(`#pending tr[data-key="${pending}"]`).count(), 0);

  assert.equal((await gatewaySays(frank, 200)).status, 200);
  const yaml = readFileSync(keyFile(pending), 'utf8');
  assert.match(yaml, /^is_inactive: false$/m);
  assert.match(yaml, /# portal-approved: \S+ by "ada@example\.com"/);
  const logged = portal
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'portal key approved' && l.key === pending);
  assert.equal(logged?.admin, 'ada');
  await page.reload();
  assert.equal(await page.locator('#key-status .badge').getAttribute('data-status'), 'active');

  // A member of the admin group (the `groups` claim) denies the other one: its file is removed.
  const groupAdmin = await signIn('gus');
  await groupAdmin.page.goto(`${portal.url}/admin`);
  await groupAdmin.page.getByRole('button', { name: `Deny ${denied}` }).click();
  await groupAdmin.page.waitForURL(`${portal.url}/admin?done=denied`);
  assert.equal(existsSync(keyFile(denied)), false);
  assert.equal((await gatewaySays(frank2, 401)).code, 'auth.cert_not_found');
  await page.goto(`${portal.url}/keys`);
  assert.deepEqual(await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key'))), [pending]);
  await context.close();
  await admin.context.close();
  await groupAdmin.context.close();
});

test('a renewal lets the new certificate in, the old one until it is removed, then the old one is refused', async () => {
  const renewed = await freshClient(pki, t.dir, 'dana-2027');
  await danaPage.goto(`${portal.url}/keys/${danaKey}`);
  await danaPage.getByLabel('New public certificate').fill(renewed.certPem);
  const signature = await runSignCommand(await danaPage.locator('#sign-command').innerText(), renewed.keyFile);
  await danaPage.getByLabel('Prove the certificate is yours').fill(signature);
  await danaPage.getByRole('button', { name: 'Add certificate' }).click();
  await danaPage.waitForURL(`${portal.url}/keys/${danaKey}?done=renewed`);
  assert.deepEqual(await danaPage.locator('#certificates .fingerprint').allInnerTexts(), [`sha256:${dana.fingerprint}`, `sha256:${renewed.fingerprint}`]);
  await shot(danaPage, 'renewed');
  assert.equal((await gatewaySays(renewed, 200)).status, 200);
  assert.equal((await gatewaySays(dana, 200)).status, 200, 'the old certificate still works until it is removed');

  await danaPage.getByRole('button', { name: `Remove certificate sha256:${dana.fingerprint}` }).click();
  await danaPage.waitForURL(`${portal.url}/keys/${danaKey}?done=removed`);
  assert.deepEqual(await danaPage.locator('#certificates .fingerprint').allInnerTexts(), [`sha256:${renewed.fingerprint}`]);
  // The old certificate no longer identifies any key: the gateway's answer for that (docs/errors.md).
  const old = await gatewaySays(dana, 401);
  assert.equal(old.code, 'auth.cert_not_found');
  assert.equal((await gatewaySays(renewed, 200)).status, 200);
});

test('a developer switches their own key off: the gateway refuses it with 403', async () => {
  await danaPage.goto(`${portal.url}/keys/${danaKey}`);
  await danaPage.getByRole('button', { name: 'Switch off this key' }).click();
  await danaPage.waitForURL(`${portal.url}/keys/${danaKey}?done=switched-off`);
  assert.equal(await danaPage.locator('#key-status .badge').getAttribute('data-status'), 'switched_off');
  const renewed = { certFile: join(t.dir, 'dana-2027.pem'), keyFile: join(t.dir, 'dana-2027-key.pem') } as Client;
  const off = await gatewaySays(renewed, 403);
  assert.equal(off.code, 'key.inactive');
  assert.match(readFileSync(keyFile(danaKey), 'utf8'), /# portal-switched-off: \S+ by "dana@example\.com"/);
  await danaPage.goto(`${portal.url}/keys`);
  assert.equal(await danaPage.locator(`tr[data-key="${danaKey}"] .badge`).getAttribute('data-status'), 'switched_off');
});

test('sign-out ends the session: the next page asks to sign in, and the old cookie is worthless', async () => {
  const cookies = await danaPage.context().cookies(portal.url);
  const session = cookies.find((c) => c.name === 'mtlsgate_session');
  assert.ok(session, 'a session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
  assert.ok(session.expires > Date.now() / 1000, 'the session cookie has an expiry');
  await danaPage.getByRole('button', { name: 'Sign out' }).click();
  await danaPage.waitForURL(`${portal.url}/signed-out`);
  assert.match(await danaPage.locator('#message').innerText(), /You are signed out/);
  await shot(danaPage, 'signed-out');
  const res = await danaPage.goto(`${portal.url}/keys`);
  assert.equal(res!.status(), 401);
  assert.equal(await danaPage.title(), 'Sign in · mtlsgate developer portal');

  // Replaying the old cookie in a fresh browser gets nothing either.
  const replay = await browser.newContext();
  await replay.addCookies([{ ...session }]);
  const again = await replay.newPage();
  assert.equal((await again.goto(`${portal.url}/keys/${danaKey}`))!.status(), 401);
  await replay.close();
});
