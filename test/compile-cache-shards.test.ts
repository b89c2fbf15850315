// `compile -o DIR --shards N --cache` (compiler/sharded-output.ts, compiler/shard-reuse.ts): after a
// patched compile only the shards of the changed keys are made again, the others are kept from
// the previous set. Every step compares the manifest and every shard file, byte for byte, with
// an uncached compile's set, and says how many shards were kept: a key edited, added, removed, a
// certificate rewritten under the same file name; and the fallbacks (a kept shard file touched,
// another output directory, another shard count) that write the whole set again; a key whose
// certificate an API pins and a revocation document changed (compiler/snapshot-frame.ts).
// 300 keys in 3 key files, 8 shards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileDir } from '../compiler/index.ts';
import { type CachedShardedWrite, writeShardedCached } from '../compiler/sharded-output.ts';
import { writeShardedBundle } from '../compiler/write-sharded.ts';
import { cacheSuite, edit } from './helpers/cache-config.ts';

const suite = cacheSuite('compile-cache-shards');
const NOW = suite.now;
const SHARDS = 8;

/** Every file of a sharded output: manifest.json and shards/*, name -> bytes. */
function filesOf(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>([['manifest.json', readFileSync(join(dir, 'manifest.json'))]]);
  for (const name of readdirSync(join(dir, 'shards')).sort()) out.set(`shards/${name}`, readFileSync(join(dir, 'shards', name)));
  return out;
}

let refs = 0;
/** The cached sharded compile into `out`, checked against an uncached one written into a fresh directory. */
async function step(dir: string, cache: string, out: string, count = SHARDS): Promise<CachedShardedWrite & { patched: boolean }> {
  const cached = await compileDir(dir, { now: NOW, cacheDir: cache });
  assert.equal(cached.errorCount, 0);
  const w = writeShardedCached(
    out,
    { bundle: cached.bundle!, wire: () => cached.wire!, ...(cached.keyChange ? { patch: cached.keyChange } : {}) },
    count,
    cache,
  );
  const plain = await compileDir(dir, { now: NOW });
  const ref = join(suite.dir, `ref-${refs++}`);
  writeShardedBundle(ref, plain.wire!, count);
  const got = filesOf(out);
  const want = filesOf(ref);
  // The previous set's shards stay beside the new one until the next write: compare what the manifest names.
  assert.ok(got.get('manifest.json')!.equals(want.get('manifest.json')!), 'the same manifest bytes');
  for (const [name, bytes] of want) assert.ok(got.get(name)?.equals(bytes), `${name}: the same bytes`);
  return { ...w, patched: cached.keyChange !== undefined };
}

test('a patched compile keeps the shards whose keys did not change; the set is an uncached compile', async () => {
  const { dir, cache } = suite.copy('steps');
  const out = join(suite.dir, 'steps.out');

  const cold = await step(dir, cache, out);
  assert.equal(cold.kept, 0, 'the first set is written whole');
  const warm = await step(dir, cache, out);
  assert.ok(warm.patched);
  assert.deepEqual([warm.kept, warm.written], [SHARDS, 0], 'nothing changed: every shard kept');

  // One key's policies changed: one shard made again.
  edit(join(dir, 'keys/part-1.yaml'), (s) => s.replace(/apply_policies: \[policy-\d+\]/, 'apply_policies: [policy-042, policy-007]'));
  const edited = await step(dir, cache, out);
  assert.ok(edited.patched);
  assert.deepEqual([edited.kept, edited.written], [SHARDS - 1, 1], 'one key changed: one shard');

  // A key added in a new file, one taken out of part-0.
  const zero = readFileSync(join(dir, 'keys/part-0.yaml'), 'utf8').split(/^---\n/m);
  writeFileSync(join(dir, 'keys/part-0.yaml'), [...zero.slice(0, 60), ...zero.slice(61)].join('---\n'));
  writeFileSync(join(dir, 'keys/part-3.yaml'), zero[60]!.replace(/id: key-(\d+)/, 'id: key-$1-moved'));
  const moved = await step(dir, cache, out);
  assert.ok(moved.patched);
  assert.ok(moved.kept >= SHARDS - 2 && moved.kept < SHARDS, `at most two shards made again (kept ${moved.kept})`);

  // A certificate rewritten under the same file name (its key file unchanged): a new fingerprint.
  const cert = join(dir, 'certs/000/key-000120.pem');
  const other = readFileSync(join(dir, 'certs/000/key-000299.pem'));
  const rm = readFileSync(join(dir, 'keys/part-2.yaml'), 'utf8').split(/^---\n/m);
  writeFileSync(join(dir, 'keys/part-2.yaml'), rm.filter((d) => !d.includes('key-000299.pem')).join('---\n'));
  await step(dir, cache, out);
  writeFileSync(`${cert}.tmp`, other);
  renameSync(`${cert}.tmp`, cert);
  const rotated = await step(dir, cache, out);
  assert.ok(rotated.patched);
  assert.equal(rotated.kept, SHARDS - 1, 'the key of the rewritten certificate: one shard');
});

test('a touched shard file, another directory or another count: the whole set is written again', async () => {
  const { dir, cache } = suite.copy('fallbacks');
  const out = join(suite.dir, 'fallbacks.out');
  await step(dir, cache, out);
  assert.equal((await step(dir, cache, out)).kept, SHARDS);

  // A kept shard rewritten with the same bytes (a new inode): not trusted, so made again.
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  const first = join(out, 'shards', `${manifest.content.shards[0].slice('sha256:'.length)}.json`);
  writeFileSync(`${first}.tmp`, readFileSync(first));
  renameSync(`${first}.tmp`, first);
  const touched = await step(dir, cache, out);
  assert.ok(touched.patched);
  assert.equal(touched.kept, 0, 'a shard file touched since: every shard made again');
  assert.equal((await step(dir, cache, out)).kept, SHARDS, 'and kept again once the record is new');

  // A shard file gone: made again (and written).
  rmSync(first);
  const gone = await step(dir, cache, out);
  assert.deepEqual([gone.kept, gone.written], [0, 1]);

  const elsewhere = await step(dir, cache, join(suite.dir, 'fallbacks.other'));
  assert.equal(elsewhere.kept, 0, 'another directory');
  assert.equal((await step(dir, cache, join(suite.dir, 'fallbacks.other'), SHARDS + 1)).kept, 0, 'another count');
});

test('a pinned key taken out and put back, a revocation document changed: the set is an uncached compile', async () => {
  const { dir, cache } = suite.copy('frame');
  const out = join(suite.dir, 'frame.out');
  writeFileSync(
    join(dir, 'revocation.yaml'),
    'kind: revocation\nid: deny\ncrl_urls: ["https://crl.example/a.crl"]\ncertificates: [certs/000/key-000005.pem]\n',
  );
  await step(dir, cache, out);
  assert.equal((await step(dir, cache, out)).kept, SHARDS, 'with a revocation document: patched, every shard kept');

  // key-000000's certificate is pinned by api-0009: without its key the pin is in the manifest.
  const part0 = join(dir, 'keys/part-0.yaml');
  const zero = readFileSync(part0, 'utf8').split(/^---\n/m);
  writeFileSync(part0, zero.slice(1).join('---\n'));
  const out0 = await step(dir, cache, out);
  assert.ok(out0.patched);
  assert.equal(out0.kept, SHARDS - 1, 'the pinned key: one shard');
  writeFileSync(part0, zero.join('---\n'));
  assert.equal((await step(dir, cache, out)).kept, SHARDS - 1);

  // The revocation part is in the manifest: every shard kept.
  edit(join(dir, 'revocation.yaml'), (s) => s.replace('a.crl"]', 'a.crl", "https://crl.example/b.crl"]'));
  const revoked = await step(dir, cache, out);
  assert.ok(revoked.patched);
  assert.equal(revoked.kept, SHARDS);
});
