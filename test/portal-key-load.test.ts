// A signed-in portal reads its key files in the background after it starts
// (portal/key-index.ts): it answers from the start, and "My keys" and the admin page say they
// are loading (503, a page that reloads itself) rather than show a part of the list, then show
// every key. (For a subject the index cannot look for without parsing, here one with a `'`: see
// test/portal-key-scan.test.ts for the others, whose "My keys" answers during the read.) A real signed-in portal in this process, sign-in through a real OpenID provider
// in real Chromium; the index's parse is slowed (100 ms a file while the test holds it) so the
// read lasts long enough to be seen.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import type { DemoPki } from '../cli/pki.ts';
import { closeServer, listen } from '../common/listen.ts';
import { syncBundle } from '../portal/issue-key.ts';
import { parsePortalKey } from '../portal/key-file.ts';
import { PortalKeyIndex } from '../portal/key-index.ts';
import { createPortal, type Portal } from '../portal/server.ts';
import { launchChromium } from './helpers/chromium.ts';
import { bindIdp, portalOidc, signInAt, startIdpForPortal, type TestIdp } from './helpers/oidc-idp.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { portalKeyText, writePortalConfig } from './helpers/portal-fixtures.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

const t = tempDir('portal-key-load');
/** Other developers' key files, plus bo's two (subject `o'bo`: a `'` the owner scan cannot judge). */
const BO = "o'bo";
const OTHERS = 300;
const BOS = ['portal-000000b1', 'portal-000000b2'];
let pki: DemoPki;
let idp: TestIdp;
let browser: Browser;
let portal: Portal;
let keyIndex: PortalKeyIndex;
let base: string;
let parses = 0;
let parsedWhenCreated = -1;
/** While true, each parse takes 100 ms (the event loop is held; the index yields between files). */
let slow = true;
const pause = new Int32Array(new SharedArrayBuffer(4));

before(async () => {
  pki = await demoPki(t.dir);
  const config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  mkdirSync(join(config, 'keys', 'portal'), { recursive: true });
  const ids = [...Array.from({ length: OTHERS }, (_, i) => `portal-${(0x1000 + i).toString(16).padStart(8, '0')}`), ...BOS];
  for (const [i, keyId] of ids.entries()) {
    const owner = BOS.includes(keyId) ? BO : `dev-${i}`;
    const text = await portalKeyText(pki, t.dir, keyId, owner, false, new Date(Date.UTC(2026, 0, 1, 0, i)));
    writeFileSync(join(config, 'keys', 'portal', `${keyId}.yaml`), text);
  }
  const bundlePath = join(t.dir, 'bundle.json');
  assert.equal((await syncBundle(config, bundlePath)).errorCount, 0);
  idp = await bindIdp({ [BO]: { email: 'bo@example.com', name: 'Bo' } });
  keyIndex = new PortalKeyIndex(config, (text, keyId) => {
    parses++;
    if (slow) Atomics.wait(pause, 0, 0, 100);
    return parsePortalKey(text, keyId);
  });
  portal = createPortal({
    configDir: config,
    bundlePath,
    gatewayUrl: 'https://gw.example.test',
    oidc: portalOidc(idp, ['bo@example.com']),
    keyIndex,
  });
  parsedWhenCreated = parses;
  base = `http://127.0.0.1:${(await listen(portal.server, 0, '127.0.0.1')).port}`;
  startIdpForPortal(idp, base);
  browser = await launchChromium();
});

after(async () => {
  slow = false;
  await browser?.close();
  keyIndex?.close();
  if (portal) await closeServer(portal.server);
  await idp?.close();
  t.cleanup();
});

test('a signed-in portal answers while it reads its key files; "My keys" and the admin page say so (503) until every file is read, then show every key', async () => {
  const total = OTHERS + BOS.length;
  assert.ok(parsedWhenCreated < total, `the portal was made before its key files were read (${parsedWhenCreated} of ${total} read)`);
  const { context, page: signedIn } = await signInAt(browser, base, idp, BO);
  assert.equal(keyIndex.answersDuringLoad(BO), false);
  assert.ok(keyIndex.loading !== null, 'still reading: the rest of this test sees the loading state');
  // Each loading page reloads itself after 2 s (a meta refresh): on a loaded machine that reload
  // interrupted the next page.goto in the same tab. One tab per page here, the last one closed.
  let page = signedIn;
  const inNewTab = async () => {
    await page.close();
    page = await context.newPage();
    return page;
  };
  const keys = await page.goto(`${base}/keys`);
  assert.equal(keys?.status(), 503);
  assert.equal(keys?.headers()['retry-after'], '2');
  assert.match((await page.locator('#loading').textContent()) ?? '', new RegExp(`reading its key files \\(\\d+ of ${total}\\)`));
  assert.equal(await page.locator('tr[data-key]').count(), 0, 'no part of the list');
  const admin = await (await inNewTab()).goto(`${base}/admin`);
  assert.equal(admin?.status(), 503);
  assert.equal(await page.locator('tr[data-key]').count(), 0);
  // The request form needs no key file: it answers now.
  const form = await (await inNewTab()).goto(`${base}/`);
  assert.equal(form?.status(), 200);
  assert.equal(await page.locator('input[name="challenge"]').count(), 1);
  assert.ok(keyIndex.loading !== null, 'all of the above happened while the files were being read');

  // The loading page reloads itself once the files are read.
  await (await inNewTab()).goto(`${base}/keys`);
  slow = false;
  await page.locator('tr[data-key]').first().waitFor({ timeout: 30_000 });
  assert.equal(keyIndex.loading, null);
  assert.deepEqual((await page.locator('tr[data-key]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')))).sort(), BOS);
  assert.equal(parses, total, 'each file read once');
  await context.close();
});
