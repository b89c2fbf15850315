// The request form with the keyboard alone, in real Chromium (the portal serves no script): the
// skip link comes first; a refused form lands the focus on its error summary (autofocus), so a
// keyboard or screen-reader user starts at what to fix, and each error's link takes the focus to
// its field; every field has a label and its hint as its description.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { closeServer, listen } from '../common/listen.ts';
import { syncBundle } from '../portal/issue-key.ts';
import { createPortal, type Portal } from '../portal/server.ts';
import { closeLaunched, launchChromium } from './helpers/chromium.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { snapshotDir, writePortalConfig } from './helpers/portal-fixtures.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

const t = tempDir('portal-keyboard');
let config: string;
let portal: Portal;
let base: string;
let browser: Browser;
let launching: Promise<Browser> | undefined;

before(async () => {
  launching = launchChromium(); // awaited last: it starts while the rest is set up
  const pki = await demoPki(t.dir);
  config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  const bundlePath = join(t.dir, 'bundle.json');
  assert.equal((await syncBundle(config, bundlePath)).errorCount, 0);
  portal = createPortal({ configDir: config, bundlePath, gatewayUrl: 'https://gw.example.test' });
  base = `http://127.0.0.1:${(await listen(portal.server, 0, '127.0.0.1')).port}`;
  browser = await launching;
});

after(async () => {
  await closeLaunched(launching);
  if (portal) await closeServer(portal.server);
  t.cleanup();
});

/** What has the focus: its tag, id, class and text (the first 60 characters). */
function focused(page: import('playwright-core').Page) {
  return page.evaluate(() => {
    const el = document.activeElement!;
    return { tag: el.tagName.toLowerCase(), id: el.id, className: el.className, text: (el.textContent ?? '').trim().slice(0, 60) };
  });
}

test('keyboard only: the skip link first; a refused form puts the focus on its error summary, whose links lead to the fields; every field is labelled and described', async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).text, 'Skip to content');

  // Every field has a label (its accessible name) and its hint as its description.
  for (const id of ['developer', 'certificate', 'signature']) {
    const field = page.locator(`#${id}`);
    assert.ok((await field.evaluate((el) => (el as HTMLInputElement).labels?.length ?? 0)) > 0, `#${id} is labelled`);
    assert.match((await field.getAttribute('aria-describedby')) ?? '', new RegExp(`\\b${id}-hint\\b`), `#${id} is described by its hint`);
  }

  // Filled in with the keyboard: a plan (arrow keys in the radio group), a name; no certificate.
  const before = snapshotDir(config);
  await page.locator('#policy').focus();
  await page.keyboard.press('Space');
  await page.locator('#developer').focus();
  await page.keyboard.type('dana@example.com');
  await page.getByRole('button', { name: 'Request key' }).focus();
  const answer = page.waitForResponse((r) => r.url() === `${base}/requests`);
  await page.keyboard.press('Enter');
  assert.equal((await answer).status(), 422);
  await page.waitForURL(`${base}/requests`, { waitUntil: 'load' });
  assert.equal(await page.title(), 'Error: request access · mtlsgate developer portal');
  const summary = await focused(page);
  assert.match(summary.className, /error-summary/, `the focus is on the error summary, not ${JSON.stringify(summary)}`);
  assert.match(summary.text, /^There is a problem/);
  // Its first link takes the focus to the field to fix; the name typed is kept.
  await page.keyboard.press('Tab');
  const link = await focused(page);
  assert.equal(link.tag, 'a');
  await page.keyboard.press('Enter');
  assert.equal((await focused(page)).id, 'certificate');
  assert.equal(await page.locator('#developer').inputValue(), 'dana@example.com');
  assert.deepEqual(snapshotDir(config), before, 'nothing written');
  await page.close();
});
