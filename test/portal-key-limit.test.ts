// The signed-in portal's cap on keys per developer (`--developer-key-limit`, docs/security.md
// section 25) and who is an admin after a restart, through `mtlsgate portal` as a child
// process and a real OpenID provider: each developer signs in once in real Chromium, then
// requests keys through the JSON API (proof of possession signed by real openssl).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import type { DemoPki } from '../cli/pki.ts';
import { closeLaunched, launchChromium } from './helpers/chromium.ts';
import { mtlsgate } from './helpers/cli.ts';
import { bindIdp, portalOidcFlags, signInAt, startIdpForPortal, writePortalClientSecret, type TestIdp } from './helpers/oidc-idp.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { freshClient, openForm, portalKeyText, runSignCommand, snapshotDir, spawnPortal, submitJson, writePortalConfig } from './helpers/portal-fixtures.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

const t = tempDir('portal-key-limit');
let pki: DemoPki;
let config: string;
let idp: TestIdp;
let browser: Browser;
let launching: Promise<Browser> | undefined;
let portal: Awaited<ReturnType<typeof spawnPortal>>;
let secretFile: string;
const portalDir = () => join(config, 'keys', 'portal');

/** `mtlsgate portal` signed in through the test provider, with `extra` flags; on `port` (0: any). */
function startPortal(port: number, extra: string[]) {
  return spawnPortal(['--config', config, '-o', join(t.dir, 'bundle.json'), '--listen', `127.0.0.1:${port}`, ...portalOidcFlags(idp, secretFile), ...extra]);
}

/** A key file for `owner` written by hand, as the platform team (or an earlier portal) left it. */
async function ownedKeyFile(keyId: string, owner: string): Promise<void> {
  const text = await portalKeyText(pki, t.dir, keyId, owner, false, new Date());
  writeFileSync(join(portalDir(), `${keyId}.yaml`), text);
}

before(async () => {
  launching = launchChromium(); // awaited last: it starts while the rest is set up
  pki = await demoPki(t.dir);
  config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  mkdirSync(portalDir(), { recursive: true });
  // Another owner whose subject starts like kim's, and two keys of the admin ada.
  await ownedKeyFile('portal-0000000a', 'kimberly');
  await ownedKeyFile('portal-000000a1', 'ada');
  await ownedKeyFile('portal-000000a2', 'ada');
  idp = await bindIdp({ ada: { email: 'ada@example.com', name: 'Ada Admin' } });
  secretFile = writePortalClientSecret(t.dir);
  portal = await startPortal(0, ['--admins', 'ada@example.com', '--developer-key-limit', '2']);
  startIdpForPortal(idp, portal.url);
  browser = await launching;
});

after(async () => {
  await closeLaunched(launching);
  portal?.kill();
  await idp?.close();
  t.cleanup();
});

/** The `name=value` of the portal session cookie in a signed-in browser context. */
async function sessionCookie(context: BrowserContext): Promise<string> {
  const session = (await context.cookies(portal.url)).find((c) => c.name === 'mtlsgate_session');
  assert.ok(session, 'a session cookie');
  return `${session.name}=${session.value}`;
}

/** Requests a key through the JSON API as the signed-in developer, with a fresh certificate and its proof. */
async function requestKey(session: string, name: string) {
  const client = await freshClient(pki, t.dir, name);
  const form = await openForm(portal.url, session);
  return submitJson(portal.url, form, { policy: 'profile-self-serve', certificate: client.certPem }, client.keyFile);
}

test('a developer gets keys up to --developer-key-limit, then 403 key_limit with nothing written; switched-off keys count, a removed file frees a place', async () => {
  const { context } = await signInAt(browser, portal.url, idp, 'kim');
  const kim = await sessionCookie(context);
  const first = await requestKey(kim, 'kim-1');
  assert.equal(first.status, 201, JSON.stringify(first.body));
  const second = await requestKey(kim, 'kim-2');
  assert.equal(second.status, 201, JSON.stringify(second.body));

  const before = snapshotDir(config);
  const third = await requestKey(kim, 'kim-3');
  assert.equal(third.status, 403, JSON.stringify(third.body));
  const [error] = third.body.errors as Array<Record<string, unknown>>;
  assert.equal(error.code, 'key_limit');
  assert.equal(error.field, null);
  assert.match(
    String(error.message),
    /^You have 2 keys in this portal, and it issues at most 2 to one developer\. .*switched off, expired or awaiting approval count too/,
  );
  assert.deepEqual(snapshotDir(config), before, 'nothing written');

  // Switched off by its owner: the file stays, and so does its place.
  const page = await context.newPage();
  await page.goto(`${portal.url}/keys/${String(first.body.key_id)}`);
  await page.getByRole('button', { name: 'Switch off this key' }).click();
  await page.waitForURL(/done=switched-off$/);
  assert.equal((await requestKey(kim, 'kim-4')).status, 403, 'a switched-off key still counts');

  // The page a browser gets says the same, in the form's error summary.
  await page.goto(`${portal.url}/`);
  await page.getByRole('radio', { name: /^Profile API Instant/ }).check();
  const client = await freshClient(pki, t.dir, 'kim-5');
  await page.getByLabel('Your public certificate').fill(client.certPem);
  await page.getByLabel('Prove the certificate is yours').fill(await runSignCommand(await page.locator('#sign-command').innerText(), client.keyFile));
  const answer = page.waitForResponse((r) => r.url() === `${portal.url}/requests`);
  await page.getByRole('button', { name: 'Request key' }).click();
  assert.equal((await answer).status(), 403);
  assert.match(await page.locator('.error-summary').innerText(), /You have 2 keys in this portal, and it issues at most 2 to one developer/);

  // The platform team removes the switched-off key's file: the count is read from the files.
  rmSync(join(portalDir(), `${String(first.body.key_id)}.yaml`));
  const again = await requestKey(kim, 'kim-6');
  assert.equal(again.status, 201, JSON.stringify(again.body));
  await context.close();
});

test('an admin is capped too (their hand-written files count)', async () => {
  const { context } = await signInAt(browser, portal.url, idp, 'ada');
  const ada = await sessionCookie(context);
  const page = await context.newPage();
  assert.equal((await page.goto(`${portal.url}/admin`))!.status(), 200, 'ada is an admin');
  const refused = await requestKey(ada, 'ada-3');
  assert.equal(refused.status, 403, JSON.stringify(refused.body));
  assert.equal((refused.body.errors as Array<Record<string, unknown>>)[0].code, 'key_limit');
  await context.close();
});

test('admin rights follow --admins after a restart: the old admin session is gone, a new sign-in gets no admin page; off lifts the cap', async () => {
  const { context, page } = await signInAt(browser, portal.url, idp, 'ada');
  assert.equal((await page.goto(`${portal.url}/admin`))!.status(), 200);
  const port = Number(new URL(portal.url).port);
  portal.kill();
  await new Promise((r) => portal.child.once('exit', r));
  // The same address (the provider knows its callback), a new admin list, no cap.
  portal = await startPortal(port, ['--admins', 'bo@example.com', '--developer-key-limit', 'off']);
  const old = await page.goto(`${portal.url}/admin`);
  assert.equal(old!.status(), 401, 'the session of the old process is not honoured');
  await context.close();

  const again = await signInAt(browser, portal.url, idp, 'ada');
  assert.equal((await again.page.goto(`${portal.url}/admin`))!.status(), 403, 'ada is no admin under the new list');
  const ada = await sessionCookie(again.context);
  const issued = await requestKey(ada, 'ada-4');
  assert.equal(issued.status, 201, `--developer-key-limit off: ${JSON.stringify(issued.body)}`);
  await again.context.close();
});

test('--developer-key-limit: a bad value, or the flag without sign-in, is a usage error (exit 2), never a silent no-op', () => {
  const base = ['portal', '--config', config, '-o', join(t.dir, 'unused.json')];
  const loopback = mtlsgate([...base, '--developer-key-limit', '5']);
  assert.equal(loopback.code, 2);
  assert.match(loopback.stderr, /--developer-key-limit needs --oidc-issuer URL: without sign-in keys have no owner to count/);
  const oidc = [...base, '--oidc-issuer', idp.issuer, '--oidc-client-id', 'c', '--oidc-client-secret-file', secretFile];
  for (const bad of ['0', '-1', '2.5', 'none', '']) {
    const r = mtlsgate([...oidc, `--developer-key-limit=${bad}`]);
    assert.equal(r.code, 2, bad);
    assert.match(r.stderr, /--developer-key-limit must be a positive whole number or off/, bad);
  }
});
