// The portal in a real browser (Debian's chromium through playwright-core), with the CLI
// portal and the CLI gateway as child processes: a developer picks a plan, pastes a fresh
// certificate and calls the API with curl through the gateway that reloaded the new bundle.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import type { DemoPki } from '../cli/pki.ts';
import { loadBundle } from '../bundle/read.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { ARTIFACTS, closeLaunched, launchChromium } from './helpers/chromium.ts';
import { spawnDemoGateway } from './helpers/demo-gateway.ts';
import { demoPki } from './helpers/serve-fixtures.ts';
import { curlWith, freshClient, runSignCommand, snapshotDir, spawnPortal, startUpstream, writePortalConfig } from './helpers/portal-fixtures.ts';

const t = tempDir('portal-browser');
let pki: DemoPki;
let config: string;
let bundle: string;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let portal: Awaited<ReturnType<typeof spawnPortal>>;
let gateway: ReturnType<typeof spawnDemoGateway>;
let gatewayBase: string;
let gatewayAdmin: string;
let browser: Browser;
let launching: Promise<Browser> | undefined;

before(async () => {
  launching = launchChromium(); // awaited last: it starts while the rest is set up
  pki = await demoPki(t.dir);
  upstream = await startUpstream();
  config = writePortalConfig(t.dir, upstream.url, pki);
  bundle = join(t.dir, 'bundle.json');
  // The portal compiles the directory into the bundle at start; the gateway then serves it.
  portal = await spawnPortal(['--config', config, '--bundle', bundle, '--listen', '127.0.0.1:0']);
  gateway = spawnDemoGateway(bundle, pki, { admin: 'loopback' });
  const serving = await gateway.serving();
  gatewayBase = `https://${String(serving.listen)}`;
  gatewayAdmin = `http://${String(serving.admin)}`;
  browser = await launching;
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await closeLaunched(launching);
  portal?.kill();
  gateway?.kill();
  await upstream?.close();
  t.cleanup();
});

test('a developer gets a key in the browser; curl with that certificate gets 200 on the plan API, 403 elsewhere', async () => {
  const dev = await freshClient(pki, t.dir, 'dana');
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const cspViolations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  await page.goto(`${portal.url}/`);
  assert.equal(await page.title(), 'Request access · mtlsgate developer portal');
  // The stylesheet loads under the CSP (the page would be unstyled otherwise).
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(244, 246, 249)');
  // Only plans with a portal block and a dynamic-mTLS API are offered.
  assert.deepEqual(await page.locator('input[name="policy"]').evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value)), [
    'profile-self-serve',
    'profile-reviewed',
  ]);
  // A loopback-only portal says so on every page.
  assert.match(await page.locator('#mode-notice').innerText(), /^Loopback-only portal: there is no sign-in/);
  await page.getByRole('radio', { name: /^Profile API Instant/ }).check();
  await page.screenshot({ path: join(ARTIFACTS, 'portal-form.png'), fullPage: true });
  await page.getByLabel('Your name or email').fill('dana@example.com');
  await page.getByLabel('Your public certificate').fill(dev.certPem);
  // Proof of possession: the exact command the page shows, run with real openssl.
  await page.getByLabel('Prove the certificate is yours').fill(await runSignCommand(await page.locator('#sign-command').innerText(), dev.keyFile));
  await page.getByRole('button', { name: 'Request key' }).click();
  await page.waitForURL(/\/requests\/portal-[0-9a-f]{8}\?receipt=portal-[0-9a-f]{8}\.[\w-]+&issued=1$/);
  assert.match(await page.locator('#mode-notice').innerText(), /^Loopback-only portal/);
  const _shownAt = Date.now();
  assert.equal((await page.locator('#fingerprint').innerText())?.trim(), `sha256:${dev.fingerprint}`);
  const keyId = (await page.locator('#key-id').innerText())!.trim();
  assert.match(await page.locator('h1').first().innerText(), /Your key is ready/);
  assert.match(
    await page.locator('pre[aria-label^="curl command"]').first().innerText(),
    /^curl --cert your-cert\.pem --key your-key\.pem https:\/\/localhost:8443\/profile\/$/,
  );
  await page.screenshot({ path: join(ARTIFACTS, 'portal-success.png'), fullPage: true });

  // "My requests" takes the receipt shown on the page (and nothing else: no list by name).
  const receipt = (await page.locator('#receipt').innerText()).trim();
  assert.match(receipt, new RegExp(`^${keyId}\\.[\\w-]{24}$`));
  await page.getByRole('link', { name: 'My requests' }).click();
  assert.match(await page.locator('#mode-notice').innerText(), /^Loopback-only portal/);
  await page.screenshot({ path: join(ARTIFACTS, 'portal-lookup.png'), fullPage: true });
  await page.getByLabel('Receipt').fill(receipt);
  await page.getByRole('button', { name: 'Show my request' }).click();
  assert.equal((await page.locator('#key-id').innerText()).trim(), keyId);
  await page.goto(`${portal.url}/requests?developer=dana%40example.com`);
  assert.doesNotMatch(await page.content(), new RegExp(keyId));

  // The key is a declaration in the config directory, and in the bundle the portal wrote.
  const keyFile = readFileSync(join(config, 'keys', 'portal', `${keyId}.yaml`), 'utf8');
  assert.match(keyFile, /# portal-developer: "dana@example.com"/);
  assert.match(keyFile, /apply_policies: \[ profile-self-serve \]/);
  assert.doesNotMatch(keyFile, /is_inactive/);
  assert.equal(loadBundle(readFileSync(bundle)).content.index.certs[dev.fingerprint]?.key, keyId);

  // The gateway picks the new bundle up through its file watch (the delay is printed, not
  // asserted: a loaded machine can take seconds)...
  const digest = loadBundle(readFileSync(bundle)).digest;
  await waitFor(
    'the gateway serving the new bundle',
    async () => {
      const health = (await (await fetch(`${gatewayAdmin}/health`)).json()) as { bundle: { digest: string } };
      return health.bundle.digest === digest;
    },
    30_000,
    20,
  );
  const reloaded = gateway
    .lines()
    .filter((l) => l.msg === 'bundle reloaded' && l.digest === digest)
    .at(-1);
  console.log(
    `# the gateway logged the reload ${Math.round(Date.parse(String(reloaded?.time)) - statSync(bundle).mtimeMs)} ms after the portal wrote the bundle`,
  );
  // ...and the certificate alone now opens the plan's API.
  const ok = await curlWith(`${gatewayBase}/profile/me`, pki, dev.certFile, dev.keyFile);
  assert.equal(ok.status, 200, ok.body);
  assert.equal(JSON.parse(ok.body).path, '/me');
  const denied = await curlWith(`${gatewayBase}/reports/q`, pki, dev.certFile, dev.keyFile);
  assert.equal(denied.status, 403, denied.body);
  assert.equal(denied.code, 'access.api_denied');
  assert.deepEqual(cspViolations, []);
  await page.close();
});

test('pasting a certificate followed by its private key is refused in the browser and nothing is written', async () => {
  const dev = await freshClient(pki, t.dir, 'erin');
  const configBefore = snapshotDir(config);
  const bundleBefore = readFileSync(bundle);
  const page = await browser.newPage();
  await page.goto(`${portal.url}/`);
  await page.getByRole('radio', { name: /^Profile API Instant/ }).check();
  await page.getByLabel('Your name or email').fill('erin@example.com');
  await page.getByLabel('Your public certificate').fill(dev.certPem + dev.keyPem);
  await page.getByRole('button', { name: 'Request key' }).click();
  await page.locator('.error-summary').waitFor();
  assert.match(await page.locator('.error-summary').innerText(), /Paste only the public certificate; a private key never leaves your machine/);
  assert.match(await page.title(), /^Error: /);
  await page.screenshot({ path: join(ARTIFACTS, 'portal-refused.png'), fullPage: true });
  // The form comes back without the pasted text, and no byte of the key is on the page.
  assert.equal(await page.getByLabel('Your public certificate').inputValue(), '');
  assert.equal(await page.getByLabel('Your name or email').inputValue(), 'erin@example.com');
  const html = await page.content();
  const keyBody = dev.keyPem.split('\n').filter((l) => l && !l.startsWith('-----'));
  for (const line of keyBody) assert.ok(!html.includes(line), 'a line of the private key is on the page');
  assert.deepEqual(snapshotDir(config), configBefore);
  assert.ok(readFileSync(bundle).equals(bundleBefore), 'the bundle changed');
  for (const line of keyBody) assert.ok(!portal.output().includes(line), 'a line of the private key is in the portal log');
  await page.close();
});
