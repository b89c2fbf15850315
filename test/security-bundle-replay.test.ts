// docs/security.md section 30: an older signed bundle is refused (replay).
// Before: a signature covered the digest alone, so every bundle the key ever signed verified;
// whoever wrote the bundle file (or answered its URL) served an old one, from before a key was
// removed or a certificate unpinned, and the gateway took it: /health showed the old digest with
// no error, and the removed certificate passed again. Now a signature carries its signing time
// (v2) and a bundle signed before the one serving is refused; the one serving keeps serving.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadBundle } from '../bundle/read.ts';
import type { HealthReport } from '../runtime/admin.ts';
import { generateSigningKeys, readPrivateKey, readPublicKey, signBundle, verifyBundleSignature } from '../bundle/sign.ts';
import { encodeContent } from '../bundle/wire.ts';
import { parseNotBefore } from '../runtime/bundle-floor.ts';
import { writeShardedBundle } from '../compiler/write-sharded.ts';
import { buildShardedSnapshot, buildSnapshot } from '../runtime/snapshot.ts';
import { BundleStore } from '../runtime/store.ts';
import { bundleContent } from './helpers/bundle-builder.ts';
import { signBundleV1 } from './helpers/sign-v1.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { bundleOf, openApi, tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { compileWithCli, curl, demoPki, run, CLI, writeConfig } from './helpers/serve-fixtures.ts';

const tmp = tempDir('replay');
after(() => tmp.cleanup());

const operator = generateSigningKeys();
const opKey = readPrivateKey(operator.privatePem);
const opPub = readPublicKey(operator.publicPem);
const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const one = bundleOf([openApi('a', '/a/', 'http://127.0.0.1:9')]);
const two = bundleOf([openApi('a', '/a/', 'http://127.0.0.1:9'), openApi('b', '/b/', 'http://127.0.0.1:9')]);
/** 200 keys on an open API; `inactive` switched off. */
const sampleContent = (keys: number, inactive: string[] = []) =>
  bundleContent(
    [{ id: 'open', listen_path: '/open/', target_url: 'http://127.0.0.1:9' }],
    Array.from({ length: keys }, (_, i) => `key-${String(i).padStart(5, '0')}`).map((id) => ({ id, is_inactive: inactive.includes(id) })),
  );
const failure = (r: { status: string; error?: { message: string } }) => (r.status === 'failed' ? r.error!.message : `status ${r.status}`);

test('a v2 signature covers the digest and its signing time; v1 bundles (no time) still verify', () => {
  const signed = signBundle(one, opKey, T0);
  assert.match(loadBundle(signed).signature ?? '', /^ed25519:[0-9a-f]{16}:2026-12-01T10:00:00\.000Z:/);
  assert.deepEqual(verifyBundleSignature(signed, opPub), {
    digest: loadBundle(one).digest,
    keyId: operator.keyId,
    signedAt: T0,
    signature: loadBundle(signed).signature,
  });
  // The time is signed: moving it (to pass a floor) breaks the signature.
  const moved = Buffer.from(signed.toString('latin1').replace('2026-12-01T10:00:00.000Z', '2026-12-09T10:00:00.000Z'), 'latin1');
  assert.throws(() => verifyBundleSignature(moved, opPub), /does not verify .*signing time was changed/);
  const v1 = signBundleV1(one, opKey);
  assert.equal(verifyBundleSignature(v1, opPub).signedAt, null, 'v1 verifies, with no time');
  assert.equal(loadBundle(v1).digest, loadBundle(one).digest);
  // One process signs at strictly increasing times: two signings never share a millisecond.
  const times = [one, two, one].map((b) => verifyBundleSignature(signBundle(b, opKey), opPub).signedAt!);
  assert.ok(times[0] < times[1] && times[1] < times[2], String(times));
});

test('a store refuses a bundle signed before the one serving, on this thread and in the worker; the one serving stays', async () => {
  const build = (bundle: { digest: string }) => bundle.digest;
  const older = signBundle(one, opKey, T0);
  const newer = signBundle(two, opKey, T0 + 60_000);
  for (const viaWorker of [false, true]) {
    const options = viaWorker ? { publicKey: opPub, workerMinBytes: 0, buildCompact: (c: { digest: string }) => c.digest } : { publicKey: opPub };
    const store = BundleStore.create(newer, 'f', build, options);
    const r = await store.reloadAsync(older, 'f');
    assert.match(
      failure(r),
      /bundle sha256:[0-9a-f]{12}… was signed at 2026-12-01T10:00:00\.000Z, before the bundle serving \(sha256:[0-9a-f]{12}…, signed at 2026-12-01T10:01:00\.000Z\): an older bundle is refused \(a replay or a rollback\)/,
    );
    assert.equal(store.info().digest, loadBundle(two).digest, 'the newer bundle keeps serving');
    assert.equal(store.lastReloadError()?.message, failure(r));
    // The same bundle again: nothing to do, and the error is history.
    assert.equal((await store.reloadAsync(newer, 'f')).status, 'unchanged');
    // Another digest at the very same time: neither is newer; the one taken first stays.
    assert.match(failure(await store.reloadAsync(signBundle(one, opKey, T0 + 60_000), 'f')), /the very time of the bundle serving .* but with another digest/);
    // v1 once a v2 serves: it cannot be ordered.
    assert.match(failure(await store.reloadAsync(signBundleV1(one, opKey), 'f')), /v1 signature, which carries no signing time/);
    // Newer is taken, and raises the floor.
    assert.equal((await store.reloadAsync(signBundle(one, opKey, T0 + 120_000), 'f')).status, 'loaded');
    assert.match(failure(await store.reloadAsync(newer, 'f')), /before the bundle serving/);
  }
  // Before any v2 serves, v1 is taken (a gateway upgraded before its signers), and so is a v2 after it.
  const fromV1 = BundleStore.create(signBundleV1(one, opKey), 'f', build, { publicKey: opPub });
  assert.equal(fromV1.reload(signBundleV1(two, opKey), 'f').status, 'loaded');
  assert.equal(fromV1.reload(newer, 'f').status, 'loaded');
  assert.match(failure(fromV1.reload(signBundleV1(one, opKey), 'f')), /v1 signature/);
  // An operator's floor (--bundle-not-before): refused at creation.
  const floor = { signedAt: T0 + 1, digest: null, from: '--bundle-not-before' };
  assert.throws(() => BundleStore.create(older, 'f', build, { publicKey: opPub, floor }), /before --bundle-not-before 2026-12-01T10:00:00\.001Z/);
});

test("a bundle signed ahead of this gateway's clock is refused, with or without a floor: taken, it would refuse every bundle signed on a correct clock", async () => {
  const build = (bundle: { digest: string }) => bundle.digest;
  const now = Date.now();
  const hourAhead = signBundle(two, opKey, now + 3_600_000);
  // At start (no floor yet): refused, with the reason.
  assert.throws(
    () => BundleStore.create(hourAhead, 'f', build, { publicKey: opPub }),
    /was signed at \S+, (59|60) minutes ahead of this gateway's clock .*the signer's clock runs ahead, or this host's is behind/,
  );
  // On a reload: refused, the bundle serving stays and still takes correctly-timed bundles after.
  const store = BundleStore.create(signBundle(one, opKey, now - 60_000), 'f', build, { publicKey: opPub });
  for (const viaWorker of [false, true]) {
    const r = viaWorker ? await store.reloadAsync(hourAhead, 'f') : store.reload(hourAhead, 'f');
    assert.match(failure(r), /minutes ahead of this gateway's clock/);
    assert.equal(store.info().digest, loadBundle(one).digest);
  }
  assert.equal(store.reload(signBundle(two, opKey, now), 'f').status, 'loaded', 'a bundle signed now is taken after the refusal');
  // Within the skew an honest clock has (a minute ahead): taken.
  assert.equal(store.reload(signBundle(one, opKey, now + 60_000), 'f').status, 'loaded');
  // The operator's floor cannot be set in the future either.
  assert.throws(
    () => parseNotBefore(new Date(now + 86_400_000).toISOString(), now),
    /is 24 hours in the future .*every bundle signed before it would be refused/,
  );
  assert.equal(parseNotBefore(new Date(now - 1000).toISOString(), now), Math.floor(now - 1000));
});

test('a sharded bundle: the manifest carries the signing time; an older signed manifest is refused and the set serving stays', async () => {
  const oldDir = join(tmp.dir, 'shards-old');
  const newDir = join(tmp.dir, 'shards-new');
  writeShardedBundle(oldDir, encodeContent(sampleContent(200)), 4, opKey);
  writeShardedBundle(newDir, encodeContent(sampleContent(200, ['key-00001'])), 4, opKey);
  const manifest = (dir: string) => readFileSync(join(dir, 'manifest.json'));
  assert.ok(verifyBundleSignature(manifest(oldDir), opPub).signedAt! < verifyBundleSignature(manifest(newDir), opPub).signedAt!);
  const here = { kind: 'file' as const, dir: newDir };
  const store = await BundleStore.createSharded(manifest(newDir), newDir, here, buildSnapshot, { buildSharded: buildShardedSnapshot, publicKey: opPub });
  const serving = store.info().digest;
  // The old manifest served in place of the new one: refused from its header, before a shard is read.
  const r = await store.reloadAsync(manifest(oldDir), newDir);
  assert.match(failure(r), /was signed at .*, before the bundle serving/);
  assert.equal(store.info().digest, serving);
  assert.equal(store.current().key('key-00001')?.def.is_inactive, true, 'the key switched off in the newer set stays off');

  // `compile --shards N --sign` writes a v2 manifest too.
  const key = join(tmp.dir, 'shard-signer');
  assert.equal((await run(process.execPath, [CLI, 'keygen', key])).code, 0);
  const cfg = join(tmp.dir, 'shard-cfg');
  mkdirSync(cfg, { recursive: true });
  writeFileSync(join(cfg, 'a.yaml'), 'kind: api\nid: a\nproxy:\n  listen_path: /a/\n  target_url: http://127.0.0.1:9\nuse_keyless: true\n');
  const out = join(tmp.dir, 'shard-out');
  const c = await run(process.execPath, [CLI, 'compile', cfg, '-o', out, '--shards', '2', '--sign', `${key}.key`]);
  assert.equal(c.code, 0, c.stderr);
  assert.ok(verifyBundleSignature(manifest(out), readPublicKey(readFileSync(`${key}.pub`))).signedAt! > T0);
});

describe('the reproduction of section 30, with the built CLI and curl', () => {
  let echo: EchoUpstream;
  let pki: Awaited<ReturnType<typeof demoPki>>;
  const key = join(tmp.dir, 'ops');
  const oldBundle = join(tmp.dir, 'old.json');
  const newBundle = join(tmp.dir, 'new.json');
  const served = join(tmp.dir, 'served.json');

  before(async () => {
    pki = await demoPki(tmp.dir);
    echo = await startEcho();
    assert.equal((await run(process.execPath, [CLI, 'keygen', key])).code, 0);
    // Old: bob's certificate pinned on /static/. New: bob removed. Both signed by the same key.
    const sign = ['--sign', `${key}.key`];
    await compileWithCli(writeConfig(join(tmp.dir, 'old'), pki.dir, echo.url, ['partner-a', 'bob']), oldBundle, sign);
    await compileWithCli(writeConfig(join(tmp.dir, 'new'), pki.dir, echo.url, ['partner-a']), newBundle, sign);
  });
  after(async () => echo?.close());

  test('serve new, copy old over: /health keeps new with last_reload_error naming the replay; bob stays refused', async () => {
    copyFileSync(newBundle, served);
    const gw = spawnDemoGateway(served, pki, { admin: 'loopback', extra: ['--bundle-public-key', `${key}.pub`] });
    try {
      const serving = await gw.serving();
      const url = `https://127.0.0.1:${listenPort(serving)}/static/x`;
      const health = async () => (await (await fetch(`http://${serving.admin}/health`)).json()) as HealthReport;
      assert.equal((await curl(url, pki, 'partner-a')).status, 200);
      assert.equal((await curl(url, pki, 'bob')).status, 403, 'bob was removed');
      const newDigest = loadBundle(readFileSync(newBundle)).digest;
      assert.equal((await health()).bundle.digest, newDigest);

      copyFileSync(oldBundle, served);
      const h = await waitFor('the replay refused', async () => {
        const x = await health();
        return x.last_reload_error ? x : null;
      });
      assert.equal(h.bundle.digest, newDigest, 'the newer bundle keeps serving');
      assert.match(h.last_reload_error!.message, /was signed at .*, before the bundle serving .*: an older bundle is refused \(a replay or a rollback\)/);
      const bob = await curl(url, pki, 'bob');
      assert.equal(bob.status, 403);
      assert.match(bob.body, /mtls.cert_not_allowed/);
      assert.match(h.bundle.signed_at ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, '/health says when the bundle serving was signed');
      const metrics = await (await fetch(`http://${serving.admin}/metrics`)).text();
      assert.match(metrics, /^mtlsgate_bundle_reloads_total\{result="failed"\} [1-9]/m);
      assert.match(metrics, /^mtlsgate_bundle_signed_timestamp_seconds 1\d{9}(\.\d+)?$/m, 'when the bundle serving was signed');
      assert.ok(gw.lines().some((l) => l.msg === 'bundle refused; the previous bundle keeps serving' && /before the bundle serving/.test(String(l.error))));
    } finally {
      gw.kill();
      await gw.exited;
    }
  });
});
