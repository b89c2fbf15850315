// Issue 10 item 12: with Redis down, `--on-limiter-error allow` (the default) lets limited keys
// through unenforced. A policy can now choose deny for its keys (`on_limiter_error: deny`),
// and the active mode is stated at start and in /health.
// Before: no such field (the schema refused it) and every key followed the server-wide mode.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileDir } from './helpers/compile-and-load.ts';
import { createLimiter } from '../runtime/limits/index.ts';
import { keyWithDefaults } from './helpers/bundle-builder.ts';
import { bundleOf, openApi, tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { RedisServer } from './helpers/redis.ts';
import { demoPki, startInProcess } from './helpers/serve-fixtures.ts';
import { removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';

after(removeConfigs);

test('a policy with on_limiter_error: deny puts it on its keys (strictest wins); others carry nothing', async () => {
  const dir = writeConfig({
    'a.yaml': 'kind: api\nid: a\nproxy:\n  listen_path: /a/\n  target_url: http://127.0.0.1:9\n',
    'p.yaml':
      'kind: policy\nid: strict\nrate: 10\nper: 1\non_limiter_error: deny\naccess_rights:\n  a: {}\n---\nkind: policy\nid: lax\nrate: 10\nper: 1\naccess_rights:\n  a: {}\n',
    'k.yaml': `kind: key\nid: both\ntoken_sha256: ${'a'.repeat(64)}\napply_policies: [lax, strict]\n---\nkind: key\nid: lax-only\ntoken_sha256: ${'b'.repeat(64)}\napply_policies: [lax]\n`,
  });
  const r = await compileDir(dir);
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
  assert.equal(r.content!.keys.both.on_limiter_error, 'deny');
  assert.equal('on_limiter_error' in r.content!.keys['lax-only'], false, 'absent: bundles without it keep their bytes');
  const bad = await compileDir(writeConfig({ 'p.yaml': 'kind: policy\nid: p\non_limiter_error: maybe\n' }));
  assert.ok(
    bad.diagnostics.some((d) => d.code === 'E_FIELD_VALUE'),
    JSON.stringify(bad.diagnostics),
  );
});

test("Redis down, server mode allow: the deny policy's keys are denied, the others pass", async () => {
  const redis = await RedisServer.start();
  const url = redis.url;
  await redis.close(); // nothing listens there now: a real outage
  const l = createLimiter({ redisUrl: url, redisTimeoutMs: 50, onError: 'allow' });
  try {
    const strict = keyWithDefaults('strict', { rate: { rate: 10, per: 1 }, on_limiter_error: 'deny' });
    const lax = keyWithDefaults('lax', { rate: { rate: 10, per: 1 } });
    assert.deepEqual(await l.check(lax, Date.now()), { allowed: true, headers: {} });
    const denied = await l.check(strict, Date.now());
    assert.equal(denied.allowed, false);
    assert.equal(denied.code, 'limit.rate');
  } finally {
    await l.close();
  }
});

test('serve says the active mode at start and in /health', async () => {
  const tmp = tempDir('sec-limiter');
  try {
    const pki = await demoPki(tmp.dir);
    const file = join(tmp.dir, 'b.json');
    writeFileSync(file, bundleOf([openApi('a', '/a/', 'http://127.0.0.1:9')]));
    const gw = await startInProcess({ bundle: file, onLimiterError: 'deny' }, pki);
    try {
      const h = (await (await fetch(`${gw.admin}/health`)).json()) as { limiter: { on_limiter_error?: string } };
      assert.equal(h.limiter.on_limiter_error, 'deny');
      const serving = await waitFor(() => gw.logs.find((l) => l.msg === 'mtlsgate serving'));
      assert.equal(serving.on_limiter_error, 'deny');
    } finally {
      await gw.running.stop('test');
    }
  } finally {
    tmp.cleanup();
  }
});
