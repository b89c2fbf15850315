// A signed-in portal's key pages while its start-up compile runs (portal/startup.ts), with the
// compile held in its worker (test/helpers/held-portal.ts), a real OpenID provider and real
// Chromium: "My keys", a key's page and the admin page need the key files, the bundle the
// gateway reads and the catalog, never the compiled keys, so they answer (200, saying the portal
// is starting) once the catalog is compiled; their buttons answer 503 "starting" and change
// nothing until the compile is done, then work as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { keyFilePath } from '../portal/key-file.ts';
import { closeLaunched, launchChromium } from './helpers/chromium.ts';
import { heldPortal, type HeldPortal } from './helpers/held-portal.ts';
import { bindIdp, portalOidc, signInAt, startIdpForPortal, type TestIdp } from './helpers/oidc-idp.ts';
import { portalKeyText } from './helpers/portal-fixtures.ts';

const ACTIVE = 'portal-0000b001';
const PENDING = 'portal-0000b002';
let idp: TestIdp;
let browser: Browser;
let launching: Promise<Browser> | undefined;
let p: HeldPortal;

before(async () => {
  launching = launchChromium(); // awaited last: it starts while the rest is set up
  idp = await bindIdp();
  p = await heldPortal('portal-startup-keys', {
    oidc: portalOidc(idp, ['ada@example.com']),
    prepare: async (config, pki) => {
      mkdirSync(join(config, 'keys', 'portal'), { recursive: true });
      const dir = join(config, '..');
      writeFileSync(keyFilePath(config, ACTIVE), await portalKeyText(pki, dir, ACTIVE, 'bo', false, new Date('2026-01-02T00:00:00Z')));
      writeFileSync(keyFilePath(config, PENDING), await portalKeyText(pki, dir, PENDING, 'bo', true, new Date('2026-01-03T00:00:00Z')));
    },
  });
  startIdpForPortal(idp, p.base);
  await p.portal.issuer.keyCounts.load();
  browser = await launching;
});

after(async () => {
  await closeLaunched(launching);
  p?.portal.issuer.keyCounts.close();
  await p?.close();
  await idp?.close();
});

test('while the start-up compile runs, My keys, a key and the admin page answer from the key files; their buttons wait (503 "starting", nothing changed), then work', async () => {
  assert.ok(p.startup.message !== null, 'the compile is held');
  const { context, page } = await signInAt(browser, p.base, idp, 'bo');
  const keys = await page.goto(`${p.base}/keys`);
  assert.equal(keys?.status(), 200);
  assert.deepEqual(await page.locator('tr[data-key]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key'))), [PENDING, ACTIVE]);
  assert.match(await page.locator('#starting').innerText(), /still compiling its 5 files: the keys below are read from their files/);
  assert.equal(await page.locator(`tr[data-key="${PENDING}"] [data-status]`).getAttribute('data-status'), 'pending');

  await page.getByRole('link', { name: ACTIVE }).click();
  assert.equal(await page.title(), `Key ${ACTIVE} · mtlsgate developer portal`);
  assert.match(await page.locator('#starting').innerText(), /the buttons on this page answer once the compile is done/);
  const before = readFileSync(keyFilePath(p.config, ACTIVE), 'utf8');
  const refused = page.waitForResponse((r) => r.url().endsWith('/switch-off'));
  await page.getByRole('button', { name: 'Switch off this key' }).click();
  assert.equal((await refused).status(), 503);
  assert.match(
    await page.locator('main').innerText(),
    /starting: compiling the config \(5 files\)\. .*Nothing was submitted: send the form again once the portal answers\./s,
  );
  assert.equal(readFileSync(keyFilePath(p.config, ACTIVE), 'utf8'), before, 'nothing written');

  const admin = await signInAt(browser, p.base, idp, 'ada');
  const adminPage = await admin.page.goto(`${p.base}/admin`);
  assert.equal(adminPage?.status(), 200);
  assert.deepEqual(await admin.page.locator('#pending tr[data-key]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key'))), [PENDING]);
  assert.equal(await admin.page.locator('#starting').count(), 1);

  p.release();
  await p.portal.started;
  await page.goto(`${p.base}/keys/${ACTIVE}`);
  assert.equal(await page.locator('#starting').count(), 0);
  await page.getByRole('button', { name: 'Switch off this key' }).click();
  assert.match(await page.locator('#notice').innerText(), /Your key is switched off/);
  await admin.context.close();
  await context.close();
});
