// Issue 10 item 9, "redact query strings and userinfo wherever a URL is shown", for the URL an
// API forwards to. `compile` refuses a target_url with credentials or a query, but a bundle
// written by other means (an older mtlsgate, a hand edit, a tampered unsigned file) reaches the
// runtime's own check, whose refusal message used to quote the URL whole: the upstream's password
// and a presigned query reached the unauthenticated /health (`last_reload_error`), the reload
// log line and the start-up error.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundle } from '../bundle/read.ts';
import { buildSnapshot } from '../runtime/snapshot.ts';
import { bundleOf, openApi, tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { spawnDemoGateway } from './helpers/demo-gateway.ts';
import { demoPki, startInProcess } from './helpers/serve-fixtures.ts';

const tmp = tempDir('upstream-url-secrets');
after(() => tmp.cleanup());

const SECRET_TARGET = 'http://reader:Pa55wordUp@127.0.0.1:9101/base?sig=TOPSECRET42';
const good = bundleOf([openApi('a', '/a/', 'http://127.0.0.1:9101')]);
const leaking = bundleOf([openApi('a', '/a/', SECRET_TARGET)]);

test('the snapshot refusal names the target_url with its userinfo and query redacted, and still says why', () => {
  assert.throws(
    () => buildSnapshot(loadBundle(leaking)),
    (err: Error) => {
      assert.doesNotMatch(err.message, /Pa55wordUp|TOPSECRET42|reader/);
      assert.match(err.message, /api a: target_url "http:\/\/REDACTED@127\.0\.0\.1:9101\/base\?REDACTED" must not carry .*credentials and a query/);
      return true;
    },
  );
});

test('a refused reload: /health, /metrics and the log lines hold no part of the secret; the old bundle serves on', async () => {
  const pki = await demoPki(tmp.dir);
  const bundle = join(tmp.dir, 'live.json');
  writeFileSync(bundle, good);
  const gw = await startInProcess({ bundle }, pki);
  try {
    const digest = (await gw.health()).bundle.digest;
    writeFileSync(bundle, leaking);
    const h = await waitFor('the reload refused', async () => {
      const x = await gw.health();
      return x.last_reload_error ? x : null;
    });
    assert.equal(h.bundle.digest, digest, 'the old bundle keeps serving');
    assert.match(h.last_reload_error!.message, /target_url .* must not carry/);
    const everything = JSON.stringify(h) + JSON.stringify(gw.logs) + (await (await fetch(`${gw.admin}/metrics`)).text());
    assert.doesNotMatch(everything, /Pa55wordUp|TOPSECRET42/);
  } finally {
    await gw.running.stop('test');
  }
});

test('serve refusing such a bundle at start (exit 2) does not print the secret', async () => {
  const pki = await demoPki(tmp.dir);
  const bundle = join(tmp.dir, 'start.json');
  writeFileSync(bundle, leaking);
  const gw = spawnDemoGateway(bundle, pki);
  const { code } = await gw.exited;
  const { stdout, stderr } = gw.output();
  assert.equal(code, 2, stdout + stderr);
  assert.match(stderr, /target_url "http:\/\/REDACTED@127\.0\.0\.1:9101\/base\?REDACTED" must not carry/);
  assert.doesNotMatch(stdout + stderr, /Pa55wordUp|TOPSECRET42/);
});
