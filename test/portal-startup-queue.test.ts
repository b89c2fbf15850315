// What a developer gets from a portal that is still compiling its start-up config
// (portal/startup.ts), with the compile held in its worker (test/helpers/held-portal.ts): the
// request form from the catalog compiled before the keys; a key request that waits for the
// compile and is then issued as after the start (at most MAX_WAITING_REQUESTS wait; one more is
// refused before anything is written); in a real browser, the submitted form lands on the issued
// key. And a portal stopped meanwhile ends its compile at once: the waiting request is answered
// 503 "stopping", the CLI exits without finishing the compile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { closeServer } from '../common/listen.ts';
import { join } from 'node:path';
import { compileDir } from '../compiler/index.ts';
import { MAX_WAITING_REQUESTS } from '../portal/startup.ts';
import { launchChromium } from './helpers/chromium.ts';
import { heldPortal, portalDir } from './helpers/held-portal.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { freshClient, openForm, runSignCommand, snapshotDir } from './helpers/portal-fixtures.ts';
import { CLI } from './helpers/serve-fixtures.ts';

/** Whether `p` is still pending after `ms`. */
async function pendingAfter(p: Promise<unknown>, ms: number): Promise<boolean> {
  const later = Symbol('pending');
  const settled = p.then(
    () => null,
    () => null,
  );
  return (await Promise.race([settled, new Promise((r) => setTimeout(() => r(later), ms))])) === later;
}

/** A signed key request as the HTTP API sends it (urlencoded, JSON answer). */
async function signedRequest(base: string, keyFile: string, certPem: string) {
  const form = await openForm(base);
  const body = new URLSearchParams({
    csrf: form.token,
    challenge: form.challenge,
    signature: await runSignCommand(form.command, keyFile),
    policy: 'profile-self-serve',
    developer: 'carol@example.com',
    certificate: certPem,
  }).toString();
  const send = () =>
    fetch(`${base}/requests`, {
      method: 'POST',
      headers: { cookie: form.cookie, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body,
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> }));
  // The form and the body, for a test that sends them itself.
  return Object.assign(send, { form, body });
}

test('a key request sent during the start-up compile waits for it, then is issued from its state (the bytes `mtlsgate compile` writes)', async () => {
  const p = await heldPortal('portal-queue-wait');
  const client = await freshClient(p.pki, p.dir, 'carol');
  try {
    const before = snapshotDir(p.config);
    const send = await signedRequest(p.base, client.keyFile, client.certPem);
    const answer = send();
    assert.ok(await pendingAfter(answer, 500), 'it waits for the compile');
    assert.equal(p.startup.waitingRequests, 1);
    assert.deepEqual(snapshotDir(p.config), before, 'nothing written while it waits');
    assert.equal(existsSync(p.bundle), false);

    p.release();
    const issued = await answer;
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const keyId = String(issued.body.key_id);
    assert.ok(existsSync(join(p.config, 'keys', 'portal', `${keyId}.yaml`)));
    assert.deepEqual(readFileSync(p.bundle), (await compileDir(p.config)).bundle, 'the bytes `mtlsgate compile` writes');
    // One full compile (the start, in the worker); the key recompiled its own file from that state.
    assert.deepEqual(
      p.modes.filter((m) => m === 'full'),
      ['full'],
    );
    assert.ok(p.modes.includes('incremental'), p.modes.join());
  } finally {
    await p.close();
  }
});

test(`at most ${MAX_WAITING_REQUESTS} key requests wait for the start-up compile; one more is refused (503 "starting") before anything is written`, async () => {
  const p = await heldPortal('portal-queue-bound', { submissionLimit: { burst: 100, perHour: 100 } });
  const client = await freshClient(p.pki, p.dir, 'carol');
  try {
    const send = await signedRequest(p.base, client.keyFile, client.certPem);
    const waiting = Array.from({ length: MAX_WAITING_REQUESTS }, () => send());
    await waitFor('every request waiting', () => p.startup.waitingRequests === MAX_WAITING_REQUESTS, 20_000);
    const before = snapshotDir(p.config);
    const refused = await send();
    assert.equal(refused.status, 503);
    const error = (refused.body.errors as { code: string; message: string }[])[0]!;
    assert.equal(error.code, 'starting');
    assert.match(error.message, new RegExp(`${MAX_WAITING_REQUESTS} key requests already wait for it`));
    assert.deepEqual(snapshotDir(p.config), before);

    p.release();
    const answers = await Promise.all(waiting);
    // One challenge admits one key: the first is issued, the others are told the challenge was used.
    assert.deepEqual(
      answers.map((a) => a.status),
      [201, ...Array(MAX_WAITING_REQUESTS - 1).fill(422)],
    );
    assert.equal(p.startup.waitingRequests, 0);
  } finally {
    await p.close();
  }
});

test('in Chromium: the form shows the catalog while the portal compiles its keys; the submitted request lands on the issued key once the compile is done', async () => {
  const p = await heldPortal('portal-queue-browser');
  const client = await freshClient(p.pki, p.dir, 'dana');
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${p.base}/`);
    assert.equal(await page.title(), 'Request access · mtlsgate developer portal');
    assert.match(await page.locator('#starting').innerText(), /still compiling its 3 files\. A request sent now is answered once that is done/);
    await page.getByRole('radio', { name: /^Profile API Instant/ }).check();
    await page.getByLabel('Your name or email').fill('dana@example.com');
    await page.getByLabel('Your public certificate').fill(client.certPem);
    await page.getByLabel('Prove the certificate is yours').fill(await runSignCommand(await page.locator('#sign-command').innerText(), client.keyFile));
    const before = snapshotDir(p.config);
    const landed = page.waitForURL(/\/requests\/portal-[0-9a-f]{8}\?receipt=portal-[0-9a-f]{8}\.[\w-]+&issued=1$/, { timeout: 60_000 });
    // The click returns once the answer's page starts loading: after the compile.
    const clicked = page.getByRole('button', { name: 'Request key' }).click();
    await waitFor('the request to wait for the compile', () => p.startup.waitingRequests === 1, 20_000);
    assert.deepEqual(snapshotDir(p.config), before, 'nothing written while it waits');
    p.release();
    await clicked;
    await landed;
    assert.equal((await page.locator('#fingerprint').innerText()).trim(), `sha256:${client.fingerprint}`);
  } finally {
    await browser.close();
    await p.close();
  }
});

test('a portal stopped during its start-up compile ends it at once: a waiting key request is answered 503 "stopping", nothing is written', async () => {
  const p = await heldPortal('portal-queue-stop');
  const client = await freshClient(p.pki, p.dir, 'erin');
  try {
    const before = snapshotDir(p.config);
    const answer = (await signedRequest(p.base, client.keyFile, client.certPem))();
    await waitFor('the request to wait', () => p.startup.waitingRequests === 1, 20_000);
    // The worker stays held: only the stop can end the compile.
    const stoppedAt = performance.now();
    // As the CLI stops: no new connections, idle ones closed, a request in flight answered.
    const closed = new Promise((r) => p.portal.server.close(r));
    p.portal.server.closeIdleConnections();
    const res = await answer.catch((err: Error) => ({ status: 0, body: { error: err.message } as Record<string, unknown> }));
    await closed;
    assert.ok(performance.now() - stoppedAt < 5_000, `stopped after ${Math.round(performance.now() - stoppedAt)} ms`);
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal((res.body.errors as { code: string }[])[0]!.code, 'stopping');
    assert.deepEqual(snapshotDir(p.config), before);
    assert.equal(existsSync(p.bundle), false);
    // Nobody waits for a stopped compile: the start-up result never comes (the CLI reports no failure).
    assert.ok(await pendingAfter(p.portal.started!, 200));
  } finally {
    p.release();
    await closeServer(p.portal.server);
    rmSync(p.dir, { recursive: true, force: true });
  }
});

test('mtlsgate portal stopped (SIGTERM) during its start-up compile exits at once, without finishing it', async () => {
  const { t, config, bundle } = await portalDir('portal-queue-sigterm');
  // 10,000 key files: a start-up compile of seconds, stopped right after the portal listens.
  mkdirSync(join(config, 'keys', 'many'));
  for (let i = 0; i < 10_000; i++) {
    const token = createHash('sha256').update(`token-${i}`).digest('hex');
    writeFileSync(join(config, 'keys', 'many', `k${i}.yaml`), `kind: key\nid: k-${i}\ntoken_sha256: ${token}\napply_policies: [internal]\n`);
  }
  const child = spawn(process.execPath, [CLI, 'portal', '--config', config, '-o', bundle, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    await waitFor('the portal to listen', () => /mtlsgate portal listening/.test(out), 30_000);
    const stoppedAt = performance.now();
    child.kill('SIGTERM');
    const code = await exited;
    const took = performance.now() - stoppedAt;
    assert.equal(code, 0, out);
    assert.ok(took < 3_000, `exited ${Math.round(took)} ms after SIGTERM`);
    assert.doesNotMatch(out, /start-up compile is done|cannot compile/);
    assert.equal(existsSync(bundle), false, 'the compile was ended, not finished');
  } finally {
    child.kill('SIGKILL');
    t.cleanup();
  }
});

test('a key request that waited for the start-up compile past its deadline is answered 503 "starting" (Retry-After) and never runs; sent again after the compile, it is issued', async () => {
  const p = await heldPortal('portal-queue-deadline', { waitMs: 400 });
  const client = await freshClient(p.pki, p.dir, 'erin');
  try {
    const before = snapshotDir(p.config);
    const send = await signedRequest(p.base, client.keyFile, client.certPem);
    const started = performance.now();
    const res = await fetch(`${p.base}/requests`, {
      method: 'POST',
      headers: { cookie: send.form.cookie, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: send.body,
      // Before the deadline existed it waited as long as the compile was held.
      signal: AbortSignal.timeout(10_000),
    });
    const waited = performance.now() - started;
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '2');
    const error = ((await res.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
    assert.equal(error.code, 'starting');
    assert.match(
      error.message,
      /^starting: compiling the config \(3 files\): not done after 0\.4 s of waiting, so this request was not processed\. Send it again/,
    );
    assert.ok(waited >= 350 && waited < 5_000, `answered at its deadline (${Math.round(waited)} ms)`);
    await waitFor('the request to stop waiting', () => p.startup.waitingRequests === 0, 5_000);
    // The same in a browser's form post: a page saying so, nothing submitted.
    const html = await fetch(`${p.base}/requests`, {
      method: 'POST',
      headers: { cookie: send.form.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: send.body,
    });
    assert.equal(html.status, 503);
    assert.match(
      await html.text(),
      /not done after 0\.4 s of waiting, so this request was not processed\. Send it again in a few seconds\. Nothing was submitted/,
    );

    p.release();
    await p.portal.started;
    // The expired requests never ran: nothing was written, and their challenge is still unused.
    assert.deepEqual(snapshotDir(p.config), before);
    const again = await send();
    assert.equal(again.status, 201, JSON.stringify(again.body));
  } finally {
    await p.close();
  }
});

test('mtlsgate portal --startup-wait SECONDS is the deadline of a key request waiting for the start-up compile; a bad value is a usage error (exit 2)', async () => {
  const { t, pki, config, bundle } = await portalDir('portal-queue-startup-wait');
  // 10,000 key files: a start-up compile of seconds, far beyond the 0.3 s wait given.
  mkdirSync(join(config, 'keys', 'many'));
  for (let i = 0; i < 10_000; i++) {
    const token = createHash('sha256').update(`token-${i}`).digest('hex');
    writeFileSync(join(config, 'keys', 'many', `k${i}.yaml`), `kind: key\nid: k-${i}\ntoken_sha256: ${token}\napply_policies: [internal]\n`);
  }
  const args = [CLI, 'portal', '--config', config, '-o', bundle, '--listen', '127.0.0.1:0'];
  for (const bad of ['0', '-1', 'soon', '1e3', '3601', '']) {
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn(process.execPath, [...args, `--startup-wait=${bad}`], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.on('data', (b: Buffer) => (err += b.toString()));
      c.once('exit', (code) => resolve({ code, err }));
    });
    assert.equal(r.code, 2, `${bad}: ${r.err}`);
    assert.match(r.err, /--startup-wait must be a number of seconds, more than 0 and at most 3600/, bad);
  }
  const child = spawn(process.execPath, [...args, '--startup-wait', '0.3'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  try {
    await waitFor('the portal to listen', () => /mtlsgate portal listening/.test(out), 30_000);
    assert.match(out, /"startup_wait_s":0\.3/);
    const base = /"url":"(http:\/\/[^"]+?)\/?"/.exec(out)![1]!;
    const client = await freshClient(pki, t.dir, 'gil');
    // The form answers from the early catalog once the policies are compiled.
    await waitFor('the form with its catalog', async () => (await fetch(`${base}/`)).status === 200, 30_000, 50);
    const answer = await (await signedRequest(base, client.keyFile, client.certPem))();
    assert.ok(!/start-up compile is done/.test(out), 'answered while the compile ran');
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    const error = (answer.body.errors as { code: string; message: string }[])[0]!;
    assert.equal(error.code, 'starting');
    assert.match(error.message, /not done after 0\.3 s of waiting, so this request was not processed/);
  } finally {
    child.kill('SIGKILL');
    t.cleanup();
  }
});
