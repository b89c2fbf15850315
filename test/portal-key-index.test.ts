// The portal's key index (portal/key-index.ts) behind "My keys" and the admin page: a signed-in
// portal in this process (real compile, real certificates, sign-in through a real OpenID
// provider in real Chromium), with N key files in keys/portal. A page view parses only files
// that changed since the last look (counted through the index's parse function, no timing);
// a key file edited by hand (state, owner) or removed shows as it is on the next view; the
// keys waiting for approval are shown 200 a page. A view reads only the files the directory
// watch named: an edit that keeps the file's size and mtime, a file renamed into place and a
// file deleted outside the portal show on the next view, and a view with nothing changed
// stats no file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePortalKey, switchedOffKeyFile } from '../portal/key-file.ts';
import { PortalKeyIndex } from '../portal/key-index.ts';
import { signInAt } from './helpers/oidc-idp.ts';
import { type OidcPortal, startOidcPortal } from './helpers/oidc-portal.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { portalKeyText } from './helpers/portal-fixtures.ts';

const t = tempDir('portal-key-index');
/** Key files of other developers, all waiting for approval: more than one admin page holds. */
const OTHERS = 205;
let { pki, config, idp, base, browser, close } = {} as OidcPortal;
let parses = 0;
let keyIndex: PortalKeyIndex;
const cookies: Record<string, string> = {};
const keyFile = (keyId: string) => join(config, 'keys', 'portal', `${keyId}.yaml`);

/** The text of a key file for `owner`, as the portal writes it. */
function keyText(keyId: string, owner: string, requireApproval: boolean, minute = 0): Promise<string> {
  return portalKeyText(pki, t.dir, keyId, owner, requireApproval, new Date(Date.UTC(2026, 0, 1, 0, minute)));
}

async function page(path: string, who: string): Promise<string> {
  const res = await fetch(base + path, { headers: { cookie: cookies[who]! } });
  assert.equal(res.status, 200, path);
  return res.text();
}

/** `keyId: status` of the rows of the table `#id` (or of the whole page), in page order. */
function rows(html: string): string[] {
  return [...html.matchAll(/<tr data-key="(portal-[0-9a-f]{8})">.*?(?:data-status="(\w+)"|<\/tr>)/g)].map((m) => `${m[1]}: ${m[2] ?? '-'}`);
}

before(async () => {
  ({ pki, config, idp, base, browser, close } = await startOidcPortal(t.dir, {
    users: { ada: { email: 'ada@example.com', name: 'Ada Admin' } },
    admins: ['ada@example.com'],
    seed: async (dir, demoPki) => {
      // keyFile and keyText read them before startOidcPortal returns.
      config = dir;
      pki = demoPki;
      mkdirSync(join(config, 'keys', 'portal'), { recursive: true });
      for (let i = 0; i < OTHERS; i++) {
        const keyId = `portal-${(0x1000 + i).toString(16).padStart(8, '0')}`;
        writeFileSync(keyFile(keyId), await keyText(keyId, `dev-${i}`, true, i));
      }
      writeFileSync(keyFile('portal-000000b1'), await keyText('portal-000000b1', 'bo', false, 500));
    },
    portal: (dir) => {
      keyIndex = new PortalKeyIndex(dir, (text, keyId) => (parses++, parsePortalKey(text, keyId)));
      return { keyIndex }; // loaded by startOidcPortal (createPortal starts it in the background: test/portal-key-load.test.ts)
    },
  }));
  for (const who of ['ada', 'bo']) {
    const { context } = await signInAt(browser, base, idp, who);
    const session = (await context.cookies(base)).find((c) => c.name === 'mtlsgate_session');
    assert.ok(session, 'a session cookie');
    cookies[who] = `${session.name}=${session.value}`;
    await context.close();
  }
});

after(async () => {
  await close?.();
  t.cleanup();
});

test(`views of "My keys" and the admin page at ${OTHERS + 1} key files parse no file that did not change, and one that did`, async () => {
  parses = 0;
  assert.deepEqual(rows(await page('/keys', 'bo')), ['portal-000000b1: active']);
  await page('/admin', 'ada');
  assert.equal(parses, 0, 'no key file changed since the portal started: none is parsed again');
  writeFileSync(keyFile('portal-00001000'), await keyText('portal-00001000', 'dev-0', true, 0));
  await page('/keys', 'bo');
  assert.equal(parses, 1, 'only the rewritten file is parsed');
});

test('a key file edited by hand (switched off, owner changed) or removed shows as it is on the next view', async () => {
  const mine = 'portal-000000b2';
  writeFileSync(keyFile(mine), await keyText(mine, 'bo', true, 600));
  assert.deepEqual(rows(await page('/keys', 'bo')), [`${mine}: pending`, 'portal-000000b1: active']);
  assert.match(await page('/admin', 'ada'), new RegExp(`<tr data-key="${mine}">`), 'waiting for approval on the admin page');
  // Edited in place, as an editor or a script does: switched off.
  writeFileSync(keyFile(mine), switchedOffKeyFile(await keyText(mine, 'bo', true, 600), new Date(), 'ada@example.com')!);
  assert.deepEqual(rows(await page('/keys', 'bo')), [`${mine}: switched_off`, 'portal-000000b1: active']);
  // Given to another owner: gone from bo's page.
  writeFileSync(keyFile('portal-000000b1'), await keyText('portal-000000b1', 'cy', false, 500));
  assert.deepEqual(rows(await page('/keys', 'bo')), [`${mine}: switched_off`]);
  rmSync(keyFile(mine));
  assert.doesNotMatch(await page('/keys', 'bo'), /data-key=/);
});

test('the admin page shows the keys waiting for approval 200 a page, newest first, with links to the others', async () => {
  const first = await page('/admin', 'ada');
  assert.match(first, /Keys 1-200 of 205 waiting, newest first\. <a href="\/admin\?page=2" id="pending-older">Older<\/a>/);
  const pendingTable = (html: string) => rows(/<table id="pending">.*?<\/table>/s.exec(html)?.[0] ?? '');
  const firstPage = pendingTable(first);
  assert.equal(firstPage.length, 200);
  assert.equal(firstPage[0], `portal-${(0x1000 + OTHERS - 1).toString(16).padStart(8, '0')}: -`, 'newest first');
  const second = await page('/admin?page=2', 'ada');
  assert.match(second, /Keys 201-205 of 205 waiting, newest first\. <a href="\/admin\?page=1" id="pending-newer">Newer<\/a><\/p>/);
  assert.deepEqual(
    pendingTable(second),
    Array.from({ length: 5 }, (_, i) => `portal-${(0x1000 + 4 - i).toString(16).padStart(8, '0')}: -`),
  );
  // The 50 newest keys of all, under the pending ones, as before.
  assert.match(first, /The 50 newest portal keys/);
});

test('an edit that keeps size and mtime, a file renamed into place and one deleted outside the portal show on the next view; an unchanged view stats no file', async () => {
  const mine = 'portal-000000c1';
  const file = keyFile(mine);
  // Its mtime set to a whole second, as an edit within the file system's mtime resolution would leave it.
  const sameSecond = new Date(Date.UTC(2026, 0, 2));
  writeFileSync(file, await keyText(mine, 'bo', false, 700));
  utimesSync(file, sameSecond, sameSecond);
  assert.ok(rows(await page('/keys', 'bo')).some((r) => r.startsWith(mine)));
  const { ino, size, mtimeMs } = statSync(file);
  // Given to cy in place: same inode, same size, same mtime.
  writeFileSync(file, readFileSync(file, 'utf8').replace('owner: bo\n', 'owner: cy\n'));
  utimesSync(file, sameSecond, sameSecond);
  assert.deepEqual([statSync(file).ino, statSync(file).size, statSync(file).mtimeMs], [ino, size, mtimeMs], 'the stat cannot tell');
  assert.ok(!rows(await page('/keys', 'bo')).some((r) => r.startsWith(mine)), "no longer bo's");
  // Written elsewhere and renamed into place, as editors and git do.
  const renamed = 'portal-000000c2';
  writeFileSync(join(t.dir, 'c2.yaml'), await keyText(renamed, 'bo', true, 800));
  renameSync(join(t.dir, 'c2.yaml'), keyFile(renamed));
  assert.equal(rows(await page('/keys', 'bo'))[0], `${renamed}: pending`);
  rmSync(keyFile(renamed));
  assert.ok(!rows(await page('/keys', 'bo')).some((r) => r.startsWith(renamed)), 'deleted: gone');
  const stats = keyIndex.work.stats;
  await page('/keys', 'bo');
  await page('/admin', 'ada');
  assert.equal(keyIndex.work.stats - stats, 0, "nothing changed: no key file is stat'ed");
});
