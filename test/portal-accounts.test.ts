// Accounts of a signed-in portal against each other (docs/security.md section 43): a portal in
// this process, a real OpenID provider (`oidc-provider`), sign-in and pages in real Chromium,
// keys requested through the HTTP API with real openssl proofs. A provider's `name`, and an
// email it did not verify, are text the user typed at the provider; a certificate subject is
// text the requester chose: none of them may pass for someone else on the admin page, by its
// letters or by characters that reorder or hide them. One account's submissions never spend
// another's budget, and a key switched off twice is written once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { join } from 'node:path';
import pino from 'pino';
import type { BrowserContext } from 'playwright-core';
import { signInAt } from './helpers/oidc-idp.ts';
import { type OidcPortal, startOidcPortal } from './helpers/oidc-portal.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { freshClient, openForm, submitJson } from './helpers/portal-fixtures.ts';

const t = tempDir('portal-identity');
/** Right-to-left override: "\u202emoc.elpmaxe@ada" reads "ada@example.com" in a browser. */
const RLO = '\u202e';
const HIDING = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const BURST = 4;
let { pki, config, idp, base, browser, close } = {} as OidcPortal;
const logged: Record<string, unknown>[] = [];
const contexts: Record<string, BrowserContext> = {};

async function sessionOf(who: string): Promise<string> {
  if (contexts[who] === undefined) contexts[who] = (await signInAt(browser, base, idp, who)).context;
  const session = (await contexts[who].cookies(base)).find((c) => c.name === 'mtlsgate_session');
  assert.ok(session, `${who} has a session cookie`);
  return `${session.name}=${session.value}`;
}

/** A key on `policy` (default the reviewed plan: it waits on the admin page), requested by `who` with `client`'s certificate and a real proof. */
async function requestKey(who: string, client: { certPem: string; keyFile: string }, policy = 'profile-reviewed'): Promise<string> {
  const form = await openForm(base, await sessionOf(who));
  const res = await submitJson(base, form, { policy, certificate: client.certPem }, client.keyFile);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.key_id as string;
}

/** `who` switches their key off through the HTTP API; 200. */
async function switchOff(who: string, keyId: string): Promise<void> {
  const form = await openForm(base, await sessionOf(who));
  const res = await fetch(`${base}/keys/${keyId}/switch-off`, {
    method: 'POST',
    headers: { cookie: form.cookie, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: form.token }).toString(),
  });
  assert.equal(res.status, 200, await res.text());
}

/** The text a person sees in Chromium on the portal page `path`, as `who`. */
async function seen(who: string, path: string, selector = 'body'): Promise<string> {
  await sessionOf(who);
  const page = await contexts[who]!.newPage();
  try {
    const res = await page.goto(base + path);
    assert.equal(res?.status(), 200, path);
    return await page.locator(selector).innerText();
  } finally {
    await page.close();
  }
}

before(async () => {
  ({ pki, config, idp, base, browser, close } = await startOidcPortal(t.dir, {
    users: {
      ada: { email: 'ada@example.com', name: 'Ada Admin' },
      // Typed the admin's address at the provider, never confirmed it, and took her name too.
      mallory: { email: 'ada@example.com', emailVerified: false, name: 'Ada Admin' },
      rtl: { email: 'rtl@example.com', emailVerified: false, name: `${RLO}moc.elpmaxe@ada` },
    },
    admins: ['ada@example.com'],
    portal: () => ({
      // Every account (not every address: the portal behind a proxy sees one) gets its own small budget.
      submissionLimit: { burst: BURST, perHour: 1 },
      logger: pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) }),
    }),
  }));
});

after(async () => {
  await close?.();
  t.cleanup();
});

test('an email the provider did not verify, or a name, never passes for someone on the admin page: the row says unverified and the subject', async () => {
  const keyId = await requestKey('mallory', await freshClient(pki, t.dir, 'mallory-client'));
  const file = readFileSync(join(config, 'keys', 'portal', `${keyId}.yaml`), 'utf8');
  assert.match(file, /^# portal-developer: "Ada Admin \(no verified email; subject mallory\)"$/m, file);
  assert.doesNotMatch(file, /ada@example\.com/, 'the unverified address is not recorded as who asked');
  assert.equal(await seen('mallory', '/keys', '#signed-in-as'), 'Ada Admin', 'her own pages name her by the name she chose');
  // The admin (verified ada@example.com) sees the request as from someone without a verified email.
  const row = await seen('ada', '/admin', `#pending tr[data-key="${keyId}"] td:nth-child(2)`);
  assert.equal(row, 'Ada Admin (no verified email; subject mallory)');
  assert.equal(await seen('ada', '/admin', '#signed-in-as'), 'ada@example.com');
  // Mallory holds no admin rights through the address (held before: --admins asks for a verified email).
  const admin = await fetch(`${base}/admin`, { headers: { cookie: await sessionOf('mallory') } });
  assert.equal(admin.status, 403);
  // She switches the key off: the file says by whom as the admin page does.
  await switchOff('mallory', keyId);
  assert.match(readFileSync(join(config, 'keys', 'portal', `${keyId}.yaml`), 'utf8'), / by "Ada Admin \(no verified email; subject mallory\)"$/m);
  // The log says the same: no verified email, the name she chose, her subject.
  const signIn = logged.find((l) => l.msg === 'portal sign-in' && l.user === 'mallory');
  assert.deepEqual({ email: signIn?.email, name: signIn?.name, admin: signIn?.admin }, { email: '', name: 'Ada Admin', admin: false });
});

test('bidi overrides and zero-width characters in a certificate subject and a provider name show as \\uXXXX on every page, in Chromium', async () => {
  // A leaf certificate whose CN reads "evilexe.jpg" once the override is applied, with an invisible character after it.
  const cn = `evil${RLO}gpj.exe\u200b`;
  const keyFile = join(t.dir, 'rtl-key.pem');
  const certFile = join(t.dir, 'rtl.pem');
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile].concat([
      '-days',
      '10',
      '-utf8',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:FALSE',
    ]),
    { encoding: 'utf8' },
  );
  assert.equal(made.status, 0, made.stderr);
  const keyId = await requestKey('rtl', { certPem: readFileSync(certFile, 'utf8'), keyFile });
  const shownCn = 'CN=evil\\u202egpj.exe\\u200b';
  const shownName = '\\u202emoc.elpmaxe@ada (no verified email; subject rtl)';
  for (const [who, path, expected] of [
    ['rtl', '/keys', [shownCn]],
    ['rtl', `/keys/${keyId}`, [shownCn, shownName]],
    ['ada', '/admin', [shownName]],
    ['ada', `/keys/${keyId}`, [shownCn, shownName]],
  ] as const) {
    const text = await seen(who, path);
    assert.doesNotMatch(text.replace(/[\n\r\t]/g, ''), HIDING, `${who} ${path}: no override or zero-width character reaches the page`);
    for (const e of expected) assert.ok(text.includes(e), `${who} ${path} shows ${e}:\n${text}`);
  }
  assert.equal(await seen('rtl', '/keys', '#signed-in-as'), '\\u202emoc.elpmaxe@ada');
  // Every page's markup, not only its visible text: no hiding character in any value (attributes included).
  const page = await fetch(`${base}/admin`, { headers: { cookie: await sessionOf('ada') } });
  const markup = await page.text();
  assert.doesNotMatch(markup.replace(/[\n\r\t]/g, ''), HIDING);
});

test("a provider's error is shown only for the sign-in this browser started, and only as a code", async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    let authorize: URL | null = null;
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (url.origin === idp.issuer && url.pathname === '/auth') authorize = url;
    });
    const begin = async () => {
      authorize = null;
      await page.goto(`${base}/auth/login?return=/keys`);
      await page.locator('input[name="login"]').waitFor();
      assert.ok(authorize, 'the browser went to the provider');
      return (authorize as URL).searchParams.get('state')!;
    };
    const callback = async (query: Record<string, string>) => {
      const res = await page.goto(`${base}/auth/callback?${new URLSearchParams(query)}`);
      assert.equal(res?.status(), 400);
      return page.locator('body').innerText();
    };
    // Another site sends the browser to the callback with a message of its choosing, right after the browser's sign-in began.
    const lure = 'Your account is locked. Call +1 555 0100 to unlock it.';
    await begin();
    let text = await callback({ error: lure });
    assert.match(text, /This sign-in attempt expired or was started in another browser/);
    assert.ok(!text.includes('Call +1 555 0100'), text);
    // The provider's own refusal of this attempt: its code is shown; free text is not.
    text = await callback({ error: 'access_denied', state: await begin() });
    assert.match(text, /The identity provider refused the sign-in \(access_denied\)\./);
    text = await callback({ error: lure, state: await begin() });
    assert.match(text, /The identity provider refused the sign-in\./);
    assert.ok(!text.includes('Call +1 555 0100'), text);
  } finally {
    await context.close();
  }
});

/** A submission that fails validation (no certificate): it still spends one of the account's submissions. */
async function emptySubmission(who: string): Promise<number> {
  const form = await openForm(base, await sessionOf(who));
  return (await submitJson(base, form, { policy: 'profile-self-serve', certificate: '' })).status;
}

test("one account spending its submissions does not spend another's: the budget is per account, all of them from one address", async () => {
  // eve and bo reach the portal from one address, as every developer does through a proxy.
  const statuses: number[] = [];
  for (let i = 0; i <= BURST; i++) statuses.push(await emptySubmission('eve'));
  assert.deepEqual(statuses, [...Array(BURST).fill(422), 429], 'eve: her burst, then 429');
  assert.equal(await emptySubmission('bo'), 422, "bo's submission is judged, not refused for eve's");
  const limited = logged.filter((l) => l.msg === 'portal submission rate-limited');
  assert.deepEqual(
    limited.map((l) => [l.client, l.address]),
    [[['sub:eve'], '127.0.0.1']],
  );
});

test('a key switched off twice is written once: the second answers 200 and changes no file and no bundle', async () => {
  const keyId = await requestKey('bo', await freshClient(pki, t.dir, 'bo-client'), 'profile-self-serve');
  const file = join(config, 'keys', 'portal', `${keyId}.yaml`);
  await switchOff('bo', keyId);
  const once = readFileSync(file, 'utf8');
  assert.equal(once.match(/portal-switched-off: /g)?.length, 1);
  const bundleAt = statSync(join(t.dir, 'bundle.json')).mtimeMs;
  await switchOff('bo', keyId);
  assert.equal(readFileSync(file, 'utf8'), once, 'the file is as the first switch-off left it');
  assert.equal(statSync(join(t.dir, 'bundle.json')).mtimeMs, bundleAt, 'the bundle is not rewritten');
});

test('ten thousand sign-ins started by someone else meanwhile do not end the one a browser is in', async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${base}/auth/login?return=/keys`);
    await page.locator('input[name="login"]').waitFor();
    // Another client starts sign-ins without end (each a GET anyone may send, no cookie kept),
    // on 16 kept-alive connections through node:http (with fetch the test took twice as long).
    let started = 0;
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const login = () =>
      new Promise<number | undefined>((resolve, reject) => {
        get(`${base}/auth/login`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode)).on('error', reject);
        }).on('error', reject);
      });
    const flood = async () => {
      while (started < 10_001) {
        started++;
        assert.equal(await login(), 303);
      }
    };
    await Promise.all(Array.from({ length: 16 }, flood));
    agent.destroy();
    await page.locator('input[name="login"]').fill('ada');
    await page.locator('input[name="password"]').fill('any password');
    const callback = page.waitForResponse((r) => r.url().startsWith(`${base}/auth/callback`));
    await page.locator('button[type="submit"]').click();
    const answer = await callback;
    assert.equal(answer.status(), 303, `the callback: ${answer.status()} ${answer.status() === 303 ? '' : await answer.text()}`);
    await page.waitForURL(`${base}/keys`);
    assert.equal(await page.locator('#signed-in-as').innerText(), 'ada@example.com');
  } finally {
    await context.close();
  }
});
