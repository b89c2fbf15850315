// "My keys" while a signed-in portal still reads its key files after a start
// (portal/key-index.ts scanFor): the developer's own keys, exactly, without waiting for every
// file to be parsed. A real signed-in portal in this process, sign-in through a real OpenID
// provider in real Chromium; the index's parse is slowed (100 ms a file while the test holds
// it), so a view that waited for every file would wait 30 s. Among the others' files: one whose
// owner is written with a YAML escape (`"\x62o-..."`), one that names the developer only in a
// comment, one hand-written with the owner in single quotes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
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

const t = tempDir('portal-key-scan');
const OTHERS = 300;
/** The developer's subject, as providers make them (opaque, long). */
const BO = 'bo-7f3a9c2e41d8';
const BOS = ['portal-000000b1', 'portal-000000b2', 'portal-000000b3', 'portal-000000b4'];
let idp: TestIdp;
let browser: Browser;
let portal: Portal;
let keyIndex: PortalKeyIndex;
let base: string;
let parses = 0;
let slow = true;
const pause = new Int32Array(new SharedArrayBuffer(4));

before(async () => {
  const pki = await demoPki(t.dir);
  const config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  const dir = join(config, 'keys', 'portal');
  mkdirSync(dir, { recursive: true });
  const ids = [...Array.from({ length: OTHERS }, (_, i) => `portal-${(0x1000 + i).toString(16).padStart(8, '0')}`), ...BOS];
  for (const [i, keyId] of ids.entries()) {
    const owner = BOS.includes(keyId) ? BO : `dev-${i}`;
    let text = await portalKeyText(pki, t.dir, keyId, owner, false, new Date(Date.UTC(2026, 0, 1, 0, i)));
    // Bo's keys as a hand edit may write them: the owner escaped, or in single quotes.
    if (keyId === BOS[2]) text = text.replace(`owner: ${BO}`, `owner: "\\x62o${BO.slice(2)}"`);
    if (keyId === BOS[3]) text = text.replace(`owner: ${BO}`, `owner: '${BO}'`);
    // Another's key that names bo in a comment only.
    if (i === 7) text = `# handed over from ${BO}\n${text}`;
    writeFileSync(join(dir, `${keyId}.yaml`), text);
  }
  const bundlePath = join(t.dir, 'bundle.json');
  assert.equal((await syncBundle(config, bundlePath)).errorCount, 0);
  idp = await bindIdp({ [BO]: { email: 'bo@example.com', name: 'Bo' } });
  keyIndex = new PortalKeyIndex(config, (text, keyId) => {
    parses++;
    if (slow) Atomics.wait(pause, 0, 0, 100);
    return parsePortalKey(text, keyId);
  });
  portal = createPortal({ configDir: config, bundlePath, gatewayUrl: 'https://gw.example.test', oidc: portalOidc(idp, ['bo@example.com']), keyIndex });
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

test('"My keys" answers while the key files are still read: exactly the developer\'s keys, escaped or quoted owners included; the admin page still waits', async () => {
  const { context, page } = await signInAt(browser, base, idp, BO);
  assert.ok(keyIndex.loading !== null, 'still reading');
  const parsedBefore = parses;
  const keys = await page.goto(`${base}/keys`);
  // Before: 503 "loading" until all 304 files were parsed (30 s here).
  assert.equal(keys?.status(), 200);
  assert.deepEqual((await page.locator('tr[data-key]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')))).sort(), BOS);
  assert.ok(keyIndex.loading !== null, 'answered while the files were being read');
  // Parsed for the view: bo's four, the one that names bo in a comment, the escaped one's backslash; not the 300 others.
  assert.ok(parses - parsedBefore <= 6 + 30, `parsed ${parses - parsedBefore} files for the view`);
  const admin = await (await context.newPage()).goto(`${base}/admin`);
  assert.equal(admin?.status(), 503, 'the admin page lists everyone: it waits for every file');
  slow = false;
  await keyIndex.load();
  assert.equal(parses, OTHERS + BOS.length, 'a file parsed for the view is not parsed again by the read');
  await page.goto(`${base}/keys`);
  assert.deepEqual((await page.locator('tr[data-key]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')))).sort(), BOS);
  await context.close();
});

test('the subjects the scan answers for: printable ASCII without spaces or quotes', () => {
  for (const sub of [BO, '248289761001', 'auth0|5f7c8ec7c33c6c004bbafe82', 'a@b.c', 'x"y', 'C:\\path'])
    assert.equal(keyIndex.answersDuringLoad(sub), true, sub);
  for (const sub of ["o'bo", 'a b', 'ada\n', 'zoë', '']) assert.equal(keyIndex.answersDuringLoad(sub), false, JSON.stringify(sub));
});
