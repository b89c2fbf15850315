// A signed-in portal reads its key files in the background after it starts
// (portal/key-index.ts): it answers from the start, and until every file's text is read "My
// keys" and the admin page wait for it (here 300 ms, PAGE_WAIT_MS in the portal), then say they
// are loading (503, a page that reloads itself) rather than show a part of the list, then show
// every key. (Once the texts are in, they answer before every file is parsed:
// test/portal-key-scan.test.ts.) A real signed-in portal in this process, sign-in through a
// real OpenID provider in real Chromium; the index reads each file 40 ms slower and parses it
// 100 ms slower while the test holds it, so the read lasts long enough to be seen.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { signInAt } from './helpers/oidc-idp.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { type SlowIndexPortal, slowIndexPortal } from './helpers/slow-index-portal.ts';

const t = tempDir('portal-key-load');
/** Other developers' key files, plus bo's two (subject `o'bo`: a `'`, which YAML may write doubled). */
const BO = "o'bo";
const OTHERS = 300;
const BOS = ['portal-000000b1', 'portal-000000b2'];
let s: SlowIndexPortal;

before(async () => {
  s = await slowIndexPortal(t.dir, { others: OTHERS, owned: BOS, owner: BO, readMs: 40, pageWaitMs: 300 });
});

after(async () => {
  await s?.close();
  t.cleanup();
});

test('a signed-in portal answers while it reads its key files; "My keys" and the admin page say so (503) until every file is read, then show every key', async () => {
  const { keyIndex, base } = s;
  const total = OTHERS + BOS.length;
  const parsedWhenCreated = s.parsedWhenCreated;
  assert.ok(parsedWhenCreated < total, `the portal was made before its key files were read (${parsedWhenCreated} of ${total} read)`);
  const { context, page: signedIn } = await signInAt(s.browser, base, s.idp, BO);
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
  s.slow = false;
  await page.locator('tr[data-key]').first().waitFor({ timeout: 30_000 });
  assert.equal(keyIndex.loading, null);
  assert.deepEqual((await page.locator('tr[data-key]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')))).sort(), BOS);
  assert.equal(s.parses(), total, 'each file read once');
  await context.close();
});
