// `compile --cache DIR` (compiler/key-cache.ts): a compile with a cold, warm or partly stale cache
// writes the same bundle bytes and the same diagnostics as one without; an edited key file,
// certificate file or policy is seen; a corrupt entry is recomputed, never trusted; entries hold
// no private key. On a generated config (bench/gen-config.ts) of 300 keys split into 3 key files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { containsPrivateKey } from '../cert/private-key.ts';
import { compileDir, type CompileOptions, type CompileResult } from '../compiler/index.ts';
import { validUntil } from '../compiler/key-cache.ts';
import { assertSameAsUncached, cacheStats, cacheSuite, certificateOfSize, dropSnapshot, keyCertificates } from './helpers/cache-config.ts';

const suite = cacheSuite('compile-cache');
const NOW = suite.now;
/** A fresh copy of the config and an empty cache directory for one test. */
const workspace = (name: string) => suite.copy(name);

const compile = (dir: string, opts: CompileOptions = {}) => compileDir(dir, { now: NOW, ...opts });

/** The per-file entries (the snapshot is a directory beside them). */
const entries = (cache: string) => readdirSync(cache).filter((n) => n.endsWith('.json'));

/** The cached compile gives what the uncached one gives: the bundle bytes and every diagnostic. */
const sameAsUncached = (dir: string, cache: string): Promise<CompileResult> => assertSameAsUncached(dir, cache, NOW);

test('uncached, cold cache and warm cache give the same bytes; a warm compile takes every key file from the cache', async () => {
  const { dir, cache } = workspace('warm');
  const plain = await compile(dir);
  assert.equal(plain.errorCount, 0, JSON.stringify(plain.diagnostics.slice(0, 3)));
  assert.equal(plain.cache, undefined);
  const cold = await sameAsUncached(dir, cache);
  assert.deepEqual(cacheStats(cold), { hits: 0, stale: 0 });
  assert.equal(entries(cache).length, 3, 'one entry per key file');
  const warm = await sameAsUncached(dir, cache);
  assert.deepEqual(cacheStats(warm), { hits: 3, stale: 0, patched: 0 }, 'the snapshot, nothing to patch');
  assert.ok(warm.bundle!.equals(plain.bundle!));
  dropSnapshot(cache);
  const entriesOnly = await sameAsUncached(dir, cache);
  assert.deepEqual(cacheStats(entriesOnly), { hits: 3, stale: 0 }, 'no snapshot: every key file from its entry');
});

test('an edited key file is recomputed, the others come from the cache', async () => {
  const { dir, cache } = workspace('edit-key');
  await sameAsUncached(dir, cache);
  const file = join(dir, 'keys/part-1.yaml');
  const text = readFileSync(file, 'utf8');
  const edited = text.replace(/apply_policies: \[policy-\d+\]/, 'apply_policies: [policy-042, policy-007]');
  assert.notEqual(edited, text);
  writeFileSync(file, edited);
  dropSnapshot(cache);
  const after = await sameAsUncached(dir, cache);
  assert.deepEqual(cacheStats(after), { hits: 2, stale: 0 }, 'the edited file has no entry for its new text');
  // A warning logged by a cached file is replayed at its position.
  writeFileSync(file, edited.replace(/apply_policies: \[policy-042, policy-007\]/, 'apply_policies: []'));
  const warned = await sameAsUncached(dir, cache);
  assert.ok(warned.diagnostics.some((d) => d.code === 'W_KEY_UNREACHABLE' && d.file === 'keys/part-1.yaml'));
  dropSnapshot(cache);
  const replayed = await sameAsUncached(dir, cache);
  assert.deepEqual(cacheStats(replayed), { hits: 3, stale: 0 });
  assert.deepEqual(replayed.diagnostics, warned.diagnostics);
});

test('a certificate file changed (stat) or rewritten in place with the same size and mtime (racily clean) is seen', async () => {
  const { dir, cache } = workspace('edit-cert');
  // key-000150's certificate gets a private key appended: the same fingerprint, a new warning.
  const pem = join(dir, 'certs/000/key-000150.pem');
  // key-000050's certificate file, in part 0, will be rewritten in place with the certificate of
  // a part-2 key (200-299) of the same size, mtime restored (certificateOfSize: it was key-000250,
  // a different size now and then).
  const racy = join(dir, 'certs/000/key-000050.pem');
  // An mtime not yet 2 s in the past when read (here: a minute ahead, so a loaded machine cannot
  // make it old): racily clean, so its entry keeps the SHA-256 of the bytes read.
  const seconds = Math.floor(Date.now() / 1000) + 60;
  utimesSync(racy, seconds, seconds);
  await sameAsUncached(dir, cache);

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  appendFileSync(pem, keyPem);
  dropSnapshot(cache);
  const warned = await sameAsUncached(dir, cache);
  assert.ok(warned.diagnostics.some((d) => d.code === 'W_CERT_PRIVATE_KEY'));
  assert.equal(warned.cache!.stale, 1);

  const other = readFileSync(certificateOfSize(statSync(racy).size, keyCertificates(dir, 200, 300)));
  assert.equal(other.length, statSync(racy).size);
  writeFileSync(racy, other);
  utimesSync(racy, seconds, seconds);
  dropSnapshot(cache);
  const dup = await sameAsUncached(dir, cache);
  assert.ok(
    dup.diagnostics.some((d) => d.code === 'E_DUPLICATE_CERT'),
    'the rewritten certificate duplicates another key: the stale entry was not trusted',
  );

  // The cache holds no private key material, ever (the bundle's rule).
  const body = keyPem.split('\n')[1];
  for (const name of entries(cache)) {
    const text = readFileSync(join(cache, name), 'utf8');
    assert.ok(!containsPrivateKey(text) && !text.includes(body), `${name} holds no private key`);
  }
});

test('a changed policy changes the context: every entry is recomputed', async () => {
  const { dir, cache } = workspace('edit-policy');
  await sameAsUncached(dir, cache);
  const file = join(dir, 'policies.yaml');
  const text = readFileSync(file, 'utf8');
  const edited = text.replace(/rate: (\d+)/, (_, n) => `rate: ${Number(n) + 1}`);
  assert.notEqual(edited, text, 'policies.yaml has a rate to change');
  writeFileSync(file, edited);
  const after = await sameAsUncached(dir, cache);
  assert.deepEqual(cacheStats(after), { hits: 0, stale: 3 });
  // --strict is part of the context too.
  const strictPlain = await compile(dir, { strict: true });
  const strictCached = await compile(dir, { strict: true, cacheDir: cache });
  assert.deepEqual(cacheStats(strictCached), { hits: 0, stale: 3 });
  assert.deepEqual(strictCached.diagnostics, strictPlain.diagnostics);
});

test('a truncated or corrupted entry is recomputed, never trusted', async () => {
  const { dir, cache } = workspace('corrupt');
  await sameAsUncached(dir, cache);
  dropSnapshot(cache);
  const [a, b, c] = entries(cache).map((n) => join(cache, n));
  truncateSync(a, Math.floor(statSync(a).size / 2));
  // A changed record with a well-formed body but the old digest line.
  const text = readFileSync(b, 'utf8');
  writeFileSync(b, text.replace(/\["policy-\d+"\]/, '["policy-099"]'));
  assert.notEqual(readFileSync(b, 'utf8'), text);
  writeFileSync(c, 'not an entry');
  const after = await sameAsUncached(dir, cache);
  assert.deepEqual(cacheStats(after), { hits: 0, stale: 0 });
  dropSnapshot(cache);
  const again = await sameAsUncached(dir, cache);
  assert.deepEqual(cacheStats(again), { hits: 3, stale: 0 }, 'rewritten');
});

test('a key id duplicated across cached files falls back to the ordinary keys stage', async () => {
  const { dir, cache } = workspace('dup-id');
  await sameAsUncached(dir, cache);
  const file = join(dir, 'keys/part-2.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('id: key-000250', 'id: key-000010'));
  dropSnapshot(cache);
  const dup = await sameAsUncached(dir, cache);
  assert.ok(dup.diagnostics.some((d) => d.code === 'E_DUPLICATE_ID'));
});

test('an entry is valid until the first time-dependent result would change', () => {
  const day = 86_400_000;
  const now = Date.UTC(2027, 0, 1);
  assert.equal(validUntil(now, [], [], 30), Number.POSITIVE_INFINITY);
  // Far from expiry: valid until the certificate enters the 30-day window.
  assert.equal(validUntil(now, [now + 100 * day], [], 30), now + 70 * day);
  // Inside the window: until its "in N days" changes.
  assert.equal(validUntil(now, [now + 10.5 * day], [], 30), now + 0.5 * day);
  // A key's expires; an expired certificate no longer changes.
  assert.equal(validUntil(now, [now - day], [now + 3 * day], 30), now + 3 * day);
});

test('mtlsgate compile --cache DIR writes the same bundle', () => {
  const cli = join(import.meta.dirname, '..', 'dist', 'mtlsgate.mjs');
  if (!existsSync(cli)) throw new Error('run npm run build first');
  const { dir, cache } = workspace('cli');
  const out = (name: string, extra: string[]) => {
    const path = join(suite.dir, name);
    execFileSync(process.execPath, [cli, 'compile', dir, '-o', path, ...extra], { stdio: 'pipe' });
    return readFileSync(path);
  };
  const plain = out('plain.json', []);
  assert.ok(out('cold.json', ['--cache', cache]).equals(plain));
  assert.ok(out('warm.json', ['--cache', cache]).equals(plain));
  assert.equal(entries(cache).length, 3);
  dropSnapshot(cache);
  // --timings says how many key files the cache answered for (what the compile bench records).
  const timed = spawnSync(process.execPath, [cli, 'compile', dir, '-o', join(suite.dir, 'timed.json'), '--cache', cache, '--timings'], { encoding: 'utf8' });
  assert.equal(timed.status, 0, timed.stderr);
  assert.match(timed.stderr, /^cache: 3 key files from the cache, 0 stale entries; snapshot not used: no usable snapshot$/m, timed.stderr);
  assert.ok(readFileSync(join(suite.dir, 'timed.json')).equals(plain));
});
