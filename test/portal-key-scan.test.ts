// "My keys" while a signed-in portal still reads its key files after a start
// (portal/key-index.ts scanFor): the developer's own keys, exactly, without waiting for every
// file to be parsed. A real signed-in portal in this process, sign-in through a real OpenID
// provider in real Chromium; the index's parse is slowed (100 ms a file while the test holds
// it), so a view that waited for every file would wait 30 s. Among the others' files: one whose
// owner is written with a YAML escape (`"\x62o-..."`), one that names the developer only in a
// comment, one hand-written with the owner in single quotes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { signInAt } from './helpers/oidc-idp.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { type SlowIndexPortal, slowIndexPortal } from './helpers/slow-index-portal.ts';

const t = tempDir('portal-key-scan');
const OTHERS = 300;
/** The developer's subject, as providers make them (opaque, long). */
const BO = 'bo-7f3a9c2e41d8';
const BOS = ['portal-000000b1', 'portal-000000b2', 'portal-000000b3', 'portal-000000b4'];
let s: SlowIndexPortal;

before(async () => {
  s = await slowIndexPortal(t.dir, {
    others: OTHERS,
    owned: BOS,
    owner: BO,
    edit: (keyId, i, text) => {
      // Bo's keys as a hand edit may write them: the owner escaped, or in single quotes.
      if (keyId === BOS[2]) return text.replace(`owner: ${BO}`, `owner: "\\x62o${BO.slice(2)}"`);
      if (keyId === BOS[3]) return text.replace(`owner: ${BO}`, `owner: '${BO}'`);
      // Another's key that names bo in a comment only.
      return i === 7 ? `# handed over from ${BO}\n${text}` : text;
    },
  });
});

after(async () => {
  await s?.close();
  t.cleanup();
});

test('"My keys" answers while the key files are still read: exactly the developer\'s keys, escaped or quoted owners included; the admin page still waits', async () => {
  const { keyIndex, base } = s;
  const { context, page } = await signInAt(s.browser, base, s.idp, BO);
  assert.ok(keyIndex.loading !== null, 'still reading');
  const parsedBefore = s.parses();
  const keys = await page.goto(`${base}/keys`);
  // Before: 503 "loading" until all 304 files were parsed (30 s here).
  assert.equal(keys?.status(), 200);
  assert.deepEqual((await page.locator('tr[data-key]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')))).sort(), BOS);
  assert.ok(keyIndex.loading !== null, 'answered while the files were being read');
  // Parsed for the view: bo's four, the one that names bo in a comment, the escaped one's backslash; not the 300 others.
  assert.ok(s.parses() - parsedBefore <= 6 + 30, `parsed ${s.parses() - parsedBefore} files for the view`);
  const admin = await (await context.newPage()).goto(`${base}/admin`);
  assert.equal(admin?.status(), 503, 'the admin page lists everyone: it waits for every file');
  s.slow = false;
  await keyIndex.load();
  assert.equal(s.parses(), OTHERS + BOS.length, 'a file parsed for the view is not parsed again by the read');
  await page.goto(`${base}/keys`);
  assert.deepEqual((await page.locator('tr[data-key]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')))).sort(), BOS);
  await context.close();
});

test('the subjects the scan answers for: printable ASCII without spaces or quotes', () => {
  for (const sub of [BO, '248289761001', 'auth0|5f7c8ec7c33c6c004bbafe82', 'a@b.c', 'x"y', 'C:\\path'])
    assert.equal(s.keyIndex.answersDuringLoad(sub), true, sub);
  for (const sub of ["o'bo", 'a b', 'ada\n', 'zoë', '']) assert.equal(s.keyIndex.answersDuringLoad(sub), false, JSON.stringify(sub));
});
