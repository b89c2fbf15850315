// `compile --cache` with the keys stage in worker threads (compiler/key-file-cache.ts): the
// workers take each key file from its entry or write the entry, and hand back the file's part of
// the snapshot. Every compile is compared with an uncached one (bundle bytes, every diagnostic),
// and the cache a cold compile writes in 2 workers is compared, file for file, with the one the
// one-thread path writes: the same entries, the same snapshot bytes. Then the per-file entries
// (hits, an edited key file, a certificate changed, a racily clean one, a changed policy) and the
// snapshot the workers wrote being patched (also with a revocation document). 300 keys in 3 key
// files, keyWorkers forced to 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CompileOptions, CompileResult } from '../compiler/index.ts';
import { assertSameAsUncached, cacheStats, cacheSuite, dropSnapshot, settle } from './helpers/cache-config.ts';

const suite = cacheSuite('compile-cache-workers');
const NOW = suite.now;

/**
 * A fresh copy of the config for each test (by name); every certificate's mtime an hour back and
 * its ctime settled (not racily clean) unless `racy` names it. The copies are made together, so
 * their certificates settle in one wait of RACY_MS rather than one wait a test.
 */
async function workspaces(racy: Record<string, string[]>): Promise<Map<string, { dir: string; cache: string }>> {
  const out = new Map<string, { dir: string; cache: string }>();
  const old = Math.floor(Date.now() / 1000) - 3600;
  const certs: string[] = [];
  for (const name of Object.keys(racy)) {
    const copy = suite.copy(name);
    out.set(name, copy);
    for (const f of readdirSync(join(copy.dir, 'certs'), { recursive: true, withFileTypes: true })) {
      if (f.isFile()) certs.push(join(f.parentPath, f.name));
    }
  }
  for (const f of certs) utimesSync(f, old, old);
  // utimes sets the ctime to now: a witness of a file changed within RACY_MS keeps its SHA-256.
  await settle(certs);
  // An mtime a minute ahead: still "racily clean" however loaded the machine is, so its SHA-256 is kept.
  const ahead = Math.floor(Date.now() / 1000) + 60;
  for (const [name, files] of Object.entries(racy)) for (const f of files) utimesSync(join(out.get(name)!.dir, f), ahead, ahead);
  return out;
}

// Made when the first test asks (not in a before hook: Node 20 runs a file's before hooks at
// once, and the pristine config comes from cacheSuite's).
let spaces: Promise<Map<string, { dir: string; cache: string }>> | undefined;
const workspace = async (name: string) => {
  spaces ??= workspaces({ cold: ['certs/000/key-000150.pem'], entries: [], snapshot: [], documents: [] });
  return (await spaces).get(name)!;
};

const WORKERS: CompileOptions = { keyWorkers: 2 };

/** The cached compile (in 2 workers unless `opts` says otherwise) gives exactly what an uncached one gives. */
const same = (dir: string, cache: string, opts: CompileOptions = WORKERS): Promise<CompileResult> =>
  assertSameAsUncached(dir, cache, NOW, opts, { keyWorkers: 0 });

/** Every file of a cache directory but the directory listings (they depend on when the directories were listed). */
function cacheFiles(cache: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of readdirSync(cache)) if (name.endsWith('.json')) out.set(name, readFileSync(join(cache, name)));
  for (const name of readdirSync(join(cache, 'snapshot')))
    if (name !== 'listings.json') out.set(`snapshot/${name}`, readFileSync(join(cache, 'snapshot', name)));
  return out;
}

test('a cold compile in 2 workers writes the same entries and snapshot as on one thread, and the same bundle', async () => {
  const { dir, cache } = await workspace('cold');
  const one = await same(dir, `${cache}-one`, { keyWorkers: 0 });
  assert.equal(one.keyWorkers.count, 0);
  const two = await same(dir, cache);
  assert.deepEqual(two.keyWorkers, { count: 2 }, 'the keys stage ran in the workers');
  assert.deepEqual(cacheStats(two), { hits: 0, stale: 0 });
  const a = cacheFiles(`${cache}-one`);
  const b = cacheFiles(cache);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  assert.equal([...a.keys()].filter((n) => !n.startsWith('snapshot/')).length, 3, 'an entry per key file');
  for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), `${name}: the same bytes`);
  assert.match(b.get('snapshot/state.json')!.toString('utf8'), /"racy":\{"\d+":"[0-9a-f]{64}"\}/, 'the racily clean certificate keeps its SHA-256');
});

test('the entries the workers wrote are used in the workers: hits, an edited key file, a changed certificate, a changed policy', async () => {
  const { dir, cache } = await workspace('entries');
  await same(dir, cache);
  dropSnapshot(cache);
  const warm = await same(dir, cache);
  assert.deepEqual(cacheStats(warm), { hits: 3, stale: 0 }, 'every key file from its entry, none parsed');
  assert.equal(warm.keyWorkers.count, 2);

  const part1 = join(dir, 'keys/part-1.yaml');
  writeFileSync(part1, readFileSync(part1, 'utf8').replace(/apply_policies: \[policy-\d+\]/, 'apply_policies: []'));
  dropSnapshot(cache);
  const edited = await same(dir, cache);
  assert.deepEqual(cacheStats(edited), { hits: 2, stale: 0 });
  assert.ok(edited.diagnostics.some((d) => d.code === 'W_KEY_UNREACHABLE' && d.file === 'keys/part-1.yaml'));
  dropSnapshot(cache);
  const replayed = await same(dir, cache);
  assert.deepEqual(cacheStats(replayed), { hits: 3, stale: 0 }, 'the warning replayed from the entry');

  // A private key appended to key-000250's certificate: the same fingerprint, a new warning.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  appendFileSync(join(dir, 'certs/000/key-000250.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
  dropSnapshot(cache);
  const warned = await same(dir, cache);
  assert.deepEqual(cacheStats(warned), { hits: 2, stale: 1 });
  assert.ok(warned.diagnostics.some((d) => d.code === 'W_CERT_PRIVATE_KEY' && d.file === 'keys/part-2.yaml'));

  const policies = join(dir, 'policies.yaml');
  writeFileSync(
    policies,
    readFileSync(policies, 'utf8').replace(/rate: (\d+)/, (_, n) => `rate: ${Number(n) + 1}`),
  );
  const context = await same(dir, cache);
  assert.deepEqual(cacheStats(context), { hits: 0, stale: 3 }, 'a changed policy: every entry recomputed');
});

test('the snapshot the workers wrote is patched by the next compile; a miss goes back to the workers', async () => {
  const { dir, cache } = await workspace('snapshot');
  await same(dir, cache);
  const warm = await same(dir, cache);
  assert.deepEqual(cacheStats(warm), { hits: 3, stale: 0, patched: 0 });
  // (part-1: the generator's API pins are on part-0's first keys, which the patch refuses.)
  const part1 = join(dir, 'keys/part-1.yaml');
  writeFileSync(part1, readFileSync(part1, 'utf8').replace(/apply_policies: \[policy-\d+\]/g, 'apply_policies: [policy-003]'));
  const patched = await same(dir, cache);
  assert.deepEqual(cacheStats(patched), { hits: 2, stale: 0, patched: 1 }, patched.cache?.snapshotMiss);
  // --strict changes the context: the snapshot is not used, the workers recompute every file.
  const strict = await same(dir, cache, { ...WORKERS, strict: true });
  assert.equal(strict.keyWorkers.count, 2);
  assert.deepEqual(cacheStats(strict), { hits: 0, stale: 3 });
  assert.match(strict.cache?.snapshotMiss ?? '', /options changed/);
});

test('with a revocation document, the snapshot the workers write is patched next time', async () => {
  const { dir, cache } = await workspace('documents');
  writeFileSync(join(dir, 'revocation.yaml'), 'kind: revocation\nid: deny\ncertificates: [certs/000/key-000005.pem]\n');
  const cold = await same(dir, cache);
  assert.deepEqual(cold.keyWorkers, { count: 2 });
  assert.ok(readdirSync(join(cache, 'snapshot')).includes('state.json'), 'the cold compile in the workers wrote the snapshot');
  const warm = await same(dir, cache);
  assert.deepEqual(cacheStats(warm), { hits: 3, stale: 0, patched: 0 }, warm.cache?.snapshotMiss);
});
