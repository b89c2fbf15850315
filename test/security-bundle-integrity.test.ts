// Issue 10 items 8 and 9: signed bundles, and secrets in bundle URLs.
// Before: the digest was an unkeyed SHA-256, so whoever could write the bundle (or sat on a
// plain-http URL) recomputed it and the gateway hot-loaded their bundle; a presigned bundle
// URL's query string showed in the unauthenticated /health and in the logs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadBundle } from '../bundle/read.ts';
import { generateSigningKeys, readPrivateKey, readPublicKey, signBundle, verifyBundleSignature } from '../bundle/sign.ts';
import { serveConfig } from '../cli/commands/serve.ts';
import { redactUrl, redactUrlsIn } from '../runtime/redact.ts';
import { BundleStore } from '../runtime/store.ts';
import { bundleOf, openApi, tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { CLI, demoPki, startInProcess } from './helpers/serve-fixtures.ts';

const tmp = tempDir('sec-bundle');
after(() => tmp.cleanup());

const operator = generateSigningKeys();
const attacker = generateSigningKeys();
const opKey = readPrivateKey(operator.privatePem);
const opPub = readPublicKey(operator.publicPem);
const good = signBundle(bundleOf([openApi('a', '/a/', 'http://127.0.0.1:9')]), opKey);

/** What the attacker of the report did: their own content, the digest recomputed. */
function forged(signedBy?: string): Buffer {
  const bytes = bundleOf([openApi('evil', '/', 'http://127.0.0.1:9')]);
  return signedBy ? signBundle(bytes, readPrivateKey(signedBy)) : bytes;
}

/** Content edited under a valid signature, digest recomputed: the signature no longer covers it. */
function tamperedUnderSignature(): Buffer {
  const text = good.toString('utf8');
  const body = text.slice(text.indexOf('"content":') + 10, text.lastIndexOf('}'));
  const edited = body.replace('"/a/"', '"/b/"');
  const digest = createHash('sha256').update(edited).digest('hex');
  return Buffer.from(text.replace(/"digest":"sha256:[0-9a-f]{64}"/, `"digest":"sha256:${digest}"`).replace(body, edited));
}

test('signed bundles: the signature covers the digest; readers that do not check still read it', () => {
  const b = loadBundle(good);
  assert.match(b.signature ?? '', /^ed25519:[0-9a-f]{16}:/);
  assert.deepEqual(verifyBundleSignature(good, opPub).keyId, operator.keyId);
  assert.throws(() => verifyBundleSignature(forged(), opPub), /bundle is not signed/);
  assert.throws(() => verifyBundleSignature(forged(attacker.privatePem), opPub), /signed by key [0-9a-f]{16}, not by the --bundle-public-key key/);
  assert.throws(() => verifyBundleSignature(tamperedUnderSignature(), opPub), /does not verify/);
  assert.doesNotThrow(() => loadBundle(tamperedUnderSignature()), 'the digest alone is consistent: only the signature catches it');
});

test('one header reader: the reader, the signer and the verifier agree on a malformed signature field and where the content starts', () => {
  // Before, bundle/read.ts and bundle/sign.ts each parsed the header: the reader called a bad
  // signature field a bad digest ("digest is not 64 hex characters"), the signer replaced it.
  const signature = /"signature":"(ed25519:[^"]*)"/.exec(good.toString('latin1'))![1];
  const bad = Buffer.from(good.toString('latin1').replace(signature, 'ed25519:0123456789abcdef:not-base64'), 'latin1');
  const message = /bundle signature is malformed \(expected ed25519:<key id>:<signed at>:<base64>\)/;
  assert.throws(() => loadBundle(bad), message);
  assert.throws(() => verifyBundleSignature(bad, opPub), message);
  assert.throws(() => signBundle(bad, opKey), message);
  const unterminated = Buffer.from(`${good.toString('latin1', 0, good.indexOf('"signature":"') + 20)}`, 'latin1');
  assert.throws(() => loadBundle(unterminated), /bundle header is malformed \(unterminated signature\)/);
  assert.throws(() => verifyBundleSignature(unterminated, opPub), /bundle header is malformed \(unterminated signature\)/);
  // Signing again replaces the field and keeps the content byte for byte; both readers find the same digest.
  const again = signBundle(good, opKey);
  assert.equal(loadBundle(again).digest, verifyBundleSignature(again, opPub).digest);
  assert.equal(again.subarray(again.indexOf('","content":')).toString('latin1'), good.subarray(good.indexOf('","content":')).toString('latin1'));
});

test('a store with a public key refuses unsigned and wrongly signed bundles; the old one keeps serving', async () => {
  const build = (bundle: { digest: string }) => bundle.digest;
  assert.throws(() => BundleStore.create(forged(), 'f', build, { publicKey: opPub }), /not signed/);
  const store = BundleStore.create(good, 'f', build, { publicKey: opPub });
  const serving = store.current();
  for (const bad of [forged(), forged(attacker.privatePem), tamperedUnderSignature()]) {
    assert.equal(store.reload(bad, 'f').status, 'failed');
    // The worker path (big bundles) checks the signature too.
    const viaWorker = BundleStore.create(good, 'f', build, { publicKey: opPub, workerMinBytes: 0, buildCompact: (c) => c.digest });
    assert.equal((await viaWorker.reloadAsync(bad, 'f')).status, 'failed');
    assert.equal(store.current(), serving);
  }
  const next = signBundle(bundleOf([openApi('a', '/a/', 'http://127.0.0.1:9'), openApi('b', '/b/', 'http://127.0.0.1:9')]), opKey);
  assert.equal(store.reload(next, 'f').status, 'loaded');
});

test('CLI: keygen writes a 0600 private key and a public key; compile --sign; serve needs a key or https for a URL', () => {
  if (!existsSync(CLI)) spawnSync(process.execPath, [join(import.meta.dirname, '..', 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const name = join(tmp.dir, 'ops');
  const k = spawnSync(process.execPath, [CLI, 'keygen', name], { encoding: 'utf8' });
  assert.equal(k.status, 0, k.stderr);
  assert.equal(statSync(`${name}.key`).mode & 0o777, 0o600);
  assert.equal(spawnSync(process.execPath, [CLI, 'keygen', name], { encoding: 'utf8' }).status, 2, 'never overwrites');
  const cfg = join(tmp.dir, 'cfg');
  spawnSync('mkdir', ['-p', cfg]);
  writeFileSync(join(cfg, 'a.yaml'), 'kind: api\nid: a\nproxy:\n  listen_path: /a/\n  target_url: http://127.0.0.1:9\nuse_keyless: true\n');
  const out = join(tmp.dir, 'b.json');
  const c = spawnSync(process.execPath, [CLI, 'compile', cfg, '-o', out, '--sign', `${name}.key`], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stderr, /signed by key [0-9a-f]{16}/);
  assert.doesNotThrow(() => verifyBundleSignature(readFileSync(out), readPublicKey(readFileSync(`${name}.pub`))));

  const base = ['--tls-cert', 'c', '--tls-key', 'k'];
  assert.throws(
    () => serveConfig(['--bundle', 'http://cdn.example/b.json?sig=s3cr3t', ...base], {}),
    (err: Error) => {
      assert.match(err.message, /plain http/);
      assert.doesNotMatch(err.message, /s3cr3t/);
      return true;
    },
  );
  assert.equal(
    serveConfig(['--bundle', 'http://cdn.example/b.json', '--bundle-public-key', `${name}.pub`, ...base], {}).config.bundlePublicKey?.type,
    'public',
  );
  assert.doesNotThrow(() => serveConfig(['--bundle', 'http://cdn.example/b.json', '--allow-insecure-http-bundle', ...base], {}));
  assert.doesNotThrow(() => serveConfig(['--bundle', 'https://cdn.example/b.json', ...base], {}));
  assert.throws(() => serveConfig(['--bundle', 'b.json', '--bundle-public-key', `${name}.key`, ...base], {}), /--bundle-public-key/);
});

test('URLs shown anywhere lose their query string and userinfo', () => {
  assert.equal(redactUrl('https://u:p@cdn.example:8443/b.json?X-Amz-Signature=abc&x=1#f'), 'https://REDACTED@cdn.example:8443/b.json?REDACTED');
  assert.equal(redactUrl('/etc/bundle.json'), '/etc/bundle.json');
  assert.equal(redactUrlsIn('connect ECONNREFUSED for http://h/p?token=abc now'), 'connect ECONNREFUSED for http://h/p?REDACTED now');
});

test('serve from a presigned URL with a public key: no secret in /health or the logs; a forged bundle is refused while the old serves', async () => {
  const pki = await demoPki(tmp.dir);
  let body = good;
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', etag: `"${createHash('sha256').update(body).digest('hex')}"` }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const url = `http://reader:pa55word@127.0.0.1:${port}/bundle.json?X-Amz-Signature=TOPSECRET123&X-Amz-Credential=AKIAEXAMPLE`;
  const gw = await startInProcess({ bundle: url, pollIntervalMs: 100, bundlePublicKey: opPub }, pki);
  try {
    const first = await gw.health();
    const digest = first.bundle.digest;
    body = forged(attacker.privatePem);
    const h = await waitFor('the forged bundle refused', async () => {
      const x = await gw.health();
      return x.last_reload_error ? x : null;
    });
    assert.equal(h.bundle.digest, digest, 'the old bundle keeps serving');
    assert.match(h.last_reload_error!.message, /signed by key/);
    const everything = JSON.stringify(h) + JSON.stringify(gw.logs) + (await (await fetch(`${gw.admin}/metrics`)).text());
    assert.doesNotMatch(everything, /TOPSECRET123|AKIAEXAMPLE|pa55word/);
    assert.match(JSON.stringify(h), /REDACTED/);
  } finally {
    await gw.running.stop('test');
    server.close();
  }
});

test('--admin on a non-loopback address warns at start (and a loopback one does not); the start line says whether signatures are required', async () => {
  const pki = await demoPki(tmp.dir);
  const bundle = join(tmp.dir, 'plain.json');
  writeFileSync(bundle, good);
  const open = await startInProcess({ bundle, admin: { host: '0.0.0.0', port: 0 }, bundlePublicKey: opPub }, pki);
  const loop = await startInProcess({ bundle }, pki);
  try {
    const warned = (logs: Array<Record<string, unknown>>) => logs.some((l) => /admin listener .* not on a loopback address/.test(String(l.msg)));
    assert.ok(warned(open.logs), JSON.stringify(open.logs));
    assert.ok(!warned(loop.logs), JSON.stringify(loop.logs));
    const started = (logs: Array<Record<string, unknown>>) => logs.find((l) => l.msg === 'mtlsgate serving');
    assert.equal(started(open.logs)?.bundle_signature, 'required');
    assert.equal(started(loop.logs)?.bundle_signature, 'not checked');
  } finally {
    await open.running.stop('test');
    await loop.running.stop('test');
  }
});
