// The portal listens before its start-up compile (portal/startup.ts), which runs in a worker
// thread (compiler/full-compile-client.ts) and hands the live compile its state. The worker is
// held once it has read the files (Atomics.wait on a shared flag the test lets go), so "while
// the compile runs" is a state the test controls, not a race: meanwhile the static and sign-in
// pages answer, the request form shows the catalog compiled before the keys, and the key pages
// answer 503 "starting: compiling the config (N files)" (HTML and JSON). After it, the portal
// answers as before, from the worker's state (no second full compile), and writes the bytes
// `mtlsgate compile` writes. A config with errors at start is shown as before. Key requests
// sent meanwhile, and the portal stopped meanwhile: test/portal-startup-queue.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileDir, compileDirCapturing } from '../compiler/index.ts';
import { offThreadCompile } from '../compiler/full-compile-client.ts';
import type { LiveCapture } from '../compiler/live-state.ts';
import { breakConfig, heldPortal, portalDir } from './helpers/held-portal.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { spawnPortal } from './helpers/portal-fixtures.ts';
import { CLI, run } from './helpers/serve-fixtures.ts';

const STARTING = /starting: compiling the config \(3 files\)/;

test('the portal answers while its start-up compile runs in a worker: static pages 200, the form from the early catalog, key pages 503 "starting" (HTML and JSON)', async () => {
  const p = await heldPortal('portal-startup');
  const { config, bundle } = p;
  try {
    const style = await fetch(`${p.base}/style.css`);
    assert.equal(style.status, 200);
    await style.text();
    // The catalog (policies and APIs, compiled before the keys) answers the form at once.
    const page = await fetch(`${p.base}/`);
    const html = await page.text();
    assert.equal(page.status, 200);
    assert.match(html, /Profile API/);
    assert.match(html, /id="starting">The portal has just started and is still compiling its 3 files\. A request sent now is answered once that is done/);
    // A key's status page reads the key's one file (since session 16; before: 503 "starting"):
    // an unknown receipt is the page that says so (test/portal-startup-receipt.test.ts: a known one).
    const lookup = await fetch(`${p.base}/requests?receipt=portal-00000000.x`);
    assert.equal(lookup.status, 404);
    assert.match(await lookup.text(), /No key for this receipt/);
    // A request the compile is needed for, beyond the waiting room: 503 "starting", JSON.
    const json = await fetch(`${p.base}/requests/portal-00000000`, { method: 'PUT', headers: { accept: 'application/json' } });
    assert.equal(json.status, 503);
    const body = (await json.json()) as { errors: { code: string; message: string }[] };
    assert.equal(body.errors[0]!.code, 'starting');
    assert.match(body.errors[0]!.message, STARTING);
    assert.equal((await fetch(`${p.base}/nowhere`)).status, 404);
    // Nothing is written before the compile is done.
    assert.equal(existsSync(bundle), false);

    p.release();
    const compiled = await p.portal.started!;
    assert.equal(compiled.errorCount, 0, compiled.report);
    assert.equal(p.startup.message, null);
    const form = await fetch(`${p.base}/`);
    assert.equal(form.status, 200);
    const after = await form.text();
    assert.match(after, /Profile API/);
    assert.doesNotMatch(after, /id="starting"/);
    assert.deepEqual(readFileSync(bundle), (await compileDir(config)).bundle, 'the bytes `mtlsgate compile` writes');
  } finally {
    await p.close();
  }
});

test("the worker hands the live compile, in slices, the state a compile on this thread makes (keys, key files' diagnostics by identity)", async () => {
  const { t, config } = await portalDir('portal-startup-handoff');
  try {
    // More key files than one slice carries, and one with a warning (an expired key).
    mkdirSync(join(config, 'keys', 'many'));
    for (let i = 0; i < 1_100; i++) {
      const token = createHash('sha256').update(`token-${i}`).digest('hex');
      const expired = i === 700 ? 'expires: 2020-01-01T00:00:00Z\n' : '';
      writeFileSync(join(config, 'keys', 'many', `k${i}.yaml`), `kind: key\nid: k-${i}\ntoken_sha256: ${token}\n${expired}apply_policies: [internal]\n`);
    }
    const here = {} as LiveCapture;
    const fromWorker = {} as LiveCapture;
    const a = await compileDirCapturing(config, {}, here);
    const b = await offThreadCompile()(config, {}, fromWorker);
    assert.equal(b.errorCount, 0, JSON.stringify(b.diagnostics));
    assert.ok(b.diagnostics.some((d) => d.code === 'W_KEY_EXPIRED'));
    assert.deepEqual(b.bundle, a.bundle);
    assert.deepEqual(b.diagnostics, a.diagnostics);
    const { now: _n1, ...mine } = here;
    const { now: _n2, ...theirs } = fromWorker;
    assert.deepEqual(theirs, mine);
    const ids = (c: LiveCapture) => [...(c.keys.keys as Map<string, unknown>).keys()];
    assert.deepEqual(ids(fromWorker), ids(here), 'the merged map in its order');
    // What buildState relies on: a key file's diagnostics are the very objects of the capture's list.
    const all = new Set(fromWorker.diagnostics);
    for (const r of fromWorker.perFile.values()) for (const d of r.diagnostics) assert.ok(all.has(d));
    const keys = fromWorker.keys.keys as Map<string, unknown>;
    for (const r of fromWorker.perFile.values()) for (const k of r.keys) assert.equal(keys.get(k.id), k);
  } finally {
    t.cleanup();
  }
});

test('a signed-in portal shows its sign-in page while the start-up compile runs', async () => {
  const p = await heldPortal('portal-startup-oidc', { oidc: true });
  try {
    const page = await fetch(`${p.base}/`);
    assert.equal(page.status, 401);
    assert.match(await page.text(), /id="sign-in"/);
    assert.equal((await fetch(`${p.base}/signed-out`)).status, 200);
    assert.notEqual(p.startup.message, null, 'still compiling');
  } finally {
    await p.close();
  }
});

test('a config with errors at start: "starting" while held (the catalog alone does not compile), then the errors as before, and no key', async () => {
  const p = await heldPortal('portal-startup-broken', { broken: true });
  const { bundle } = p;
  try {
    const page = await fetch(`${p.base}/`);
    assert.equal(page.status, 503);
    assert.match(await page.text(), STARTING);
    p.release();
    const compiled = await p.portal.started!;
    assert.ok(compiled.errorCount > 0);
    assert.equal(existsSync(bundle), false);
    const shown = await fetch(`${p.base}/`);
    assert.equal(shown.status, 200);
    assert.match(await shown.text(), /The portal cannot issue keys right now/);
  } finally {
    await p.close();
  }
});

test('mtlsgate portal: listens, then says the config has errors; a bundle it cannot write at start exits 2 as before', async () => {
  const { t, config } = await portalDir('portal-startup-cli');
  const unwritable = await run(process.execPath, [CLI, 'portal', '--config', config, '-o', join(t.dir, 'missing', 'bundle.json'), '--listen', '127.0.0.1:0']);
  assert.equal(unwritable.code, 2, unwritable.stderr);
  assert.match(unwritable.stderr, /mtlsgate portal: cannot compile .* into .*missing\/bundle\.json: ENOENT/);
  breakConfig(config);
  const portal = await spawnPortal(['--config', config, '-o', join(t.dir, 'bundle.json'), '--listen', '127.0.0.1:0']);
  try {
    await waitFor('the errors on stderr', () => /the config has errors; the portal shows them and issues no key/.test(portal.output()), 60_000);
    const page = await fetch(`${portal.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /The portal cannot issue keys right now/);
  } finally {
    portal.kill();
    t.cleanup();
  }
});

test('mtlsgate portal copied without dist/full-compile-worker.mjs compiles on its main thread, with a warning', async () => {
  const { t, config } = await portalDir('portal-startup-noworker');
  const bin = join(t.dir, 'bin');
  mkdirSync(bin);
  copyFileSync(CLI, join(bin, 'mtlsgate.mjs'));
  const child = spawn(process.execPath, [join(bin, 'mtlsgate.mjs'), 'portal', '--config', config, '-o', join(t.dir, 'bundle.json'), '--listen', '127.0.0.1:0']);
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  try {
    const url = await waitFor('the portal to listen', () => /"url":"(http:[^"]+?)\/?"/.exec(out)?.[1], 30_000);
    await waitFor('the start-up compile', () => /the start-up compile is done/.test(out), 60_000);
    assert.match(out, /the compile worker failed: .*full-compile-worker\.mjs.*; mtlsgate compiles on its main thread instead/);
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Profile API/);
    assert.deepEqual(readFileSync(join(t.dir, 'bundle.json')), (await compileDir(config)).bundle);
  } finally {
    child.kill('SIGKILL');
    t.cleanup();
  }
});
