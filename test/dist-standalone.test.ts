// The README promises that `dist/mtlsgate.mjs` runs with plain `node` and no node_modules.
// Here the two built files are copied into an empty directory outside the repository (no
// node_modules anywhere above it) and used as a new user would: certs, check, compile, serve,
// curl, and a reload of a bundle big enough (>= 1 MiB) to be verified by the worker thread
// that dist/bundle-worker.mjs holds; its config is big enough for the compiler's key worker
// (dist/keys-worker.mjs). The portal's start-up compile runs in dist/full-compile-worker.mjs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, parse } from 'node:path';
import { after, before, test } from 'node:test';
import { curlE2E, recordingUpstream, type RecordingUpstream } from './helpers/e2e.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { CLI, run, spawnServe } from './helpers/serve-fixtures.ts';
import type { DemoPki } from '../cli/pki.ts';

const t = tempDir('standalone');
let upstream: RecordingUpstream;
let cli: string;
/** Only what a shell gives: no NODE_PATH, no NODE_OPTIONS (tsx is not loaded into the children). */
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: t.dir };

before(async () => {
  upstream = await recordingUpstream();
  const bin = join(t.dir, 'bin');
  mkdirSync(bin);
  for (const name of ['mtlsgate.mjs', 'bundle-worker.mjs', 'crl-worker.mjs', 'keys-worker.mjs', 'full-compile-worker.mjs'])
    copyFileSync(join(dirname(CLI), name), join(bin, name));
  cli = join(bin, 'mtlsgate.mjs');
});
after(async () => {
  await upstream?.close();
  t.cleanup();
});

test('no node_modules in the copy directory or any directory above it', () => {
  for (let dir = join(t.dir, 'bin'); ; dir = dirname(dir)) {
    assert.equal(existsSync(join(dir, 'node_modules')), false, `${dir}/node_modules exists: the test would prove nothing`);
    if (dir === parse(dir).root) break;
  }
});

test('certs, check, compile, serve and curl from the copied single file; a 1 MiB bundle reloads through the worker', async () => {
  const node = (args: string[]) => run(process.execPath, [cli, ...args], { env, cwd: t.dir, timeoutMs: 120_000 });
  const certs = join(t.dir, 'certs');
  const made = await node(['certs', certs]);
  assert.equal(made.code, 0, made.stderr);
  const config = join(t.dir, 'config');
  mkdirSync(config);
  writeFileSync(
    join(config, 'api.yaml'),
    `kind: api\nid: reports\nproxy:\n  listen_path: /reports/\n  target_url: ${upstream.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n  - ${join(certs, 'partner-a.pem')}\n`,
  );
  // The certificates sit beside the config directory, not in it: allowed explicitly (config
  // reads are confined to the directory, docs/security.md item 4).
  const checked = await node(['check', config, '--allow-outside', certs]);
  assert.equal(checked.code, 0, checked.stdout + checked.stderr);
  const bundle = join(t.dir, 'bundle.json');
  const compiled = await node(['compile', config, '-o', bundle, '--allow-outside', certs]);
  assert.equal(compiled.code, 0, compiled.stdout + compiled.stderr);

  const s = spawnServeFrom(cli, [
    '--bundle',
    bundle,
    '--tls-cert',
    join(certs, 'server.pem'),
    '--tls-key',
    join(certs, 'server-key.pem'),
    '--listen',
    '127.0.0.1:0',
    '--admin',
    '127.0.0.1:0',
  ]);
  try {
    const serving = await s.serving();
    const base = `https://${String(serving.listen)}`;
    const pki = { dir: certs } as DemoPki;
    const ok = await curlE2E(`${base}/reports/daily`, pki, { client: 'partner-a' });
    assert.equal(ok.status, 200, ok.body);
    assert.equal((await curlE2E(`${base}/reports/daily`, pki, { client: 'mallory' })).status, 403);

    // 15,000 token keys make a bundle over 1 MiB (compact v2 bundle: ~70 bytes a token key):
    // the reload goes through dist/bundle-worker.mjs.
    const keyCount = 15_000;
    const keys = Array.from({ length: keyCount }, (_, i) => {
      const hash = createHash('sha256').update(`token-${i}`).digest('hex');
      return `kind: key\nid: key-${i}\ntoken_sha256: ${hash}\naccess_rights:\n  reports: {}\n`;
    });
    // Two key files (> 1 MiB together): the compiler resolves them in worker threads (dist/keys-worker.mjs).
    writeFileSync(join(config, 'keys-a.yaml'), keys.slice(0, keyCount / 2).join('---\n'));
    writeFileSync(join(config, 'keys-b.yaml'), keys.slice(keyCount / 2).join('---\n'));
    writeFileSync(join(config, 'big.yaml'), `kind: api\nid: big\nproxy:\n  listen_path: /big/\n  target_url: ${upstream.url}\nuse_keyless: true\n`);
    assert.equal((await curlE2E(`${base}/big/x`, pki)).status, 404);
    const big = join(t.dir, 'big.json');
    const compiledBig = await node(['compile', config, '-o', big, '--allow-outside', certs, '--timings']);
    assert.equal(compiledBig.code, 0, compiledBig.stdout + compiledBig.stderr);
    assert.match(compiledBig.stderr, /^keys stage: [12] worker threads?$/m, compiledBig.stderr);
    const bytes = readFileSync(big);
    assert.ok(bytes.length >= 1 << 20, `${bytes.length} bytes: not big enough for the worker path`);
    writeFileSync(bundle, bytes);
    const digest = JSON.parse(bytes.toString()).digest as string;
    const admin = `http://${String(serving.admin)}`;
    await waitFor(
      'the big bundle to be served',
      async () => ((await (await fetch(`${admin}/health`)).json()) as { bundle: { digest: string } }).bundle.digest === digest,
      60_000,
      100,
    );
    assert.equal((await curlE2E(`${base}/big/x`, pki)).status, 200, 'the API the big bundle adds');
    assert.ok(s.lines().some((l) => l.msg === 'bundle reloaded' && l.digest === digest && l.keys === keyCount));
    assert.doesNotMatch(s.output().stderr, /Cannot find (module|package)|ERR_MODULE_NOT_FOUND/);
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
  }
});

test("the portal's start-up compile runs in the copied dist/full-compile-worker.mjs (no fallback to the main thread)", async () => {
  const config = join(t.dir, 'portal-config');
  mkdirSync(config);
  writeFileSync(
    join(config, 'api.yaml'),
    `kind: api\nid: profile\nproxy:\n  listen_path: /profile/\n  target_url: ${upstream.url}\nauth:\n  use_certificate: true\n---\nkind: policy\nid: self-serve\naccess_rights:\n  profile: {}\nportal:\n  name: Profile API\n`,
  );
  const child = spawn(process.execPath, [cli, 'portal', '--config', config, '-o', join(t.dir, 'portal-bundle.json'), '--listen', '127.0.0.1:0'], {
    env,
    cwd: t.dir,
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  try {
    const url = await waitFor('the portal to listen', () => /"url":"(http:[^"]+?)\/?"/.exec(out)?.[1], 30_000);
    await waitFor('the start-up compile', () => out.includes('the start-up compile is done'), 60_000);
    assert.doesNotMatch(out, /compiles on its main thread|Cannot find (module|package)|ERR_MODULE_NOT_FOUND/);
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Profile API/);
  } finally {
    child.kill('SIGKILL');
  }
});

/** spawnServe runs the repository's dist; this one runs the copy, with the bare environment. */
function spawnServeFrom(file: string, args: string[]) {
  return spawnServe(args, env, file);
}
