// The portal listens before its start-up compile (portal/startup.ts), which runs in a worker
// thread (compiler/full-compile-client.ts) and hands the live compile its state. The worker is
// held once it has read the files (Atomics.wait on a shared flag the test lets go), so "while
// the compile runs" is a state the test controls, not a race: meanwhile the static and sign-in
// pages answer, the catalog and key pages answer 503 "starting: compiling the config (N files)"
// (HTML and JSON), and a key request is refused before anything is written. After it, the
// portal answers as before, from the worker's state (no second full compile), and writes the
// bytes `mtlsgate compile` writes. A config with errors at start is shown as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DemoPki } from '../cli/pki.ts';
import { closeServer, listen } from '../common/listen.ts';
import { compileDir, compileDirCapturing } from '../compiler/index.ts';
import { offThreadCompile } from '../compiler/full-compile-client.ts';
import type { LiveCapture } from '../compiler/live-state.ts';
import type { LiveMode } from '../compiler/live-compile.ts';
import { type CompileFn, compilerFor } from '../portal/compile.ts';
import { createPortal, type Portal } from '../portal/server.ts';
import { StartupCompile } from '../portal/startup.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { freshClient, openForm, snapshotDir, spawnPortal, submitJson, writePortalConfig } from './helpers/portal-fixtures.ts';
import { CLI, demoPki, run } from './helpers/serve-fixtures.ts';

const STARTING = /starting: compiling the config \(3 files\)/;

interface HeldPortal {
  pki: DemoPki;
  dir: string;
  config: string;
  bundle: string;
  portal: Portal;
  base: string;
  startup: StartupCompile;
  /** How each compile of the portal was made (full, incremental, unchanged). */
  modes: (LiveMode | undefined)[];
  /** Lets the held worker go on. */
  release(): void;
  /** Stops the portal and removes its directory. */
  close(): Promise<void>;
}

/** Adds an API without a proxy (an error) to the config. */
function breakConfig(config: string): void {
  writeFileSync(join(config, 'apis', 'apis.yaml'), `${readFileSync(join(config, 'apis', 'apis.yaml'), 'utf8')}---\nkind: api\nid: broken\n`);
}

/** A temporary config directory (writePortalConfig, `broken`: plus an API without a proxy) and bundle path. */
async function portalDir(name: string, broken = false) {
  const t = tempDir(name);
  const pki = await demoPki(t.dir);
  const config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  if (broken) breakConfig(config);
  return { t, pki, config, bundle: join(t.dir, 'bundle.json') };
}

/** A portal whose start-up compile is held in its worker once the files are read. */
async function heldPortal(name: string, opts: { oidc?: boolean; broken?: boolean } = {}): Promise<HeldPortal> {
  const { t, pki, config, bundle: bundlePath } = await portalDir(name, opts.broken);
  const hold = new Int32Array(new SharedArrayBuffer(4));
  const startup = new StartupCompile();
  const live = compilerFor({ live: true, offThread: { hold }, onLoaded: startup.loaded });
  const modes: (LiveMode | undefined)[] = [];
  const compile: CompileFn = async (dir) => {
    const compiled = await live(dir);
    modes.push(compiled.live);
    return compiled;
  };
  const portal = createPortal({
    configDir: config,
    bundlePath,
    gatewayUrl: 'https://gw.example.test:8443',
    compile,
    startup,
    ...(opts.oidc ? { oidc: { issuer: 'http://127.0.0.1:9/', clientId: 'portal', clientSecret: 'secret', admins: [] } } : {}),
  });
  const base = `http://127.0.0.1:${(await listen(portal.server, 0, '127.0.0.1')).port}`;
  const release = () => {
    Atomics.store(hold, 0, 1);
    Atomics.notify(hold, 0);
  };
  // The worker has read the files (3: the APIs, the plans, alice's key) and waits.
  await waitFor('the start-up compile to read the files', () => startup.message?.includes('3 files'), 60_000);
  return {
    pki,
    dir: t.dir,
    config,
    bundle: bundlePath,
    portal,
    base,
    startup,
    modes,
    release,
    close: async () => {
      release();
      await portal.started?.catch(() => undefined);
      await closeServer(portal.server);
      t.cleanup();
    },
  };
}

test('the portal answers while its start-up compile runs in a worker: static pages 200, catalog pages 503 "starting" (HTML and JSON), then the form', async () => {
  const p = await heldPortal('portal-startup');
  const { config, bundle } = p;
  try {
    const style = await fetch(`${p.base}/style.css`);
    assert.equal(style.status, 200);
    await style.text();
    const page = await fetch(`${p.base}/`);
    const html = await page.text();
    assert.equal(page.status, 503);
    assert.equal(page.headers.get('retry-after'), '2');
    assert.match(html, STARTING);
    assert.match(html, /<meta http-equiv="refresh" content="2">/);
    const json = await fetch(`${p.base}/`, { headers: { accept: 'application/json' } });
    assert.equal(json.status, 503);
    const body = (await json.json()) as { errors: { code: string; message: string }[] };
    assert.equal(body.errors[0]!.code, 'starting');
    assert.match(body.errors[0]!.message, STARTING);
    const lookup = await fetch(`${p.base}/requests?receipt=portal-00000000.x`);
    assert.equal(lookup.status, 503);
    assert.match(await lookup.text(), STARTING);
    assert.equal((await fetch(`${p.base}/nowhere`)).status, 404);
    // Nothing is written before the compile is done.
    assert.equal(existsSync(bundle), false);

    p.release();
    const compiled = await p.portal.started!;
    assert.equal(compiled.errorCount, 0, compiled.report);
    assert.equal(p.startup.message, null);
    const form = await fetch(`${p.base}/`);
    assert.equal(form.status, 200);
    assert.match(await form.text(), /Profile API/);
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

test('a key request during the start-up compile is refused (503) before anything is written; after it a request is issued from the handed-over state', async () => {
  const p = await heldPortal('portal-startup-key');
  const { config, bundle } = p;
  const client = await freshClient(p.pki, p.dir, 'carol');
  try {
    const before = snapshotDir(config);
    const fields = { policy: 'profile-self-serve', developer: 'carol@example.com', certificate: client.certPem };
    const early = await submitJson(p.base, { cookie: '', token: 'x', page: '', challenge: 'x', command: '' }, fields);
    assert.equal(early.status, 503);
    assert.match(JSON.stringify(early.body), STARTING);
    const html = await fetch(`${p.base}/requests`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'policy=x' });
    assert.equal(html.status, 503);
    assert.match(await html.text(), /Nothing was submitted/);
    assert.deepEqual(snapshotDir(config), before, 'no key file written');
    assert.equal(existsSync(bundle), false);

    p.release();
    assert.equal((await p.portal.started!).errorCount, 0);
    const form = await openForm(p.base);
    const issued = await submitJson(p.base, form, fields, client.keyFile);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const keyId = String(issued.body.key_id);
    assert.match(readFileSync(bundle, 'utf8'), new RegExp(keyId));
    assert.deepEqual(readFileSync(bundle), (await compileDir(config)).bundle, 'the bytes `mtlsgate compile` writes');
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

test('a config with errors at start: "starting" while held, then the errors as before, and no key', async () => {
  const p = await heldPortal('portal-startup-broken', { broken: true });
  const { bundle } = p;
  try {
    assert.equal((await fetch(`${p.base}/`)).status, 503);
    p.release();
    const compiled = await p.portal.started!;
    assert.ok(compiled.errorCount > 0);
    assert.equal(existsSync(bundle), false);
    const page = await fetch(`${p.base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /The portal cannot issue keys right now/);
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
