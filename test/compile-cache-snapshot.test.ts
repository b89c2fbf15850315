// The compile cache's snapshot (compiler/compile-snapshot.ts, compiler/snapshot-compile.ts): when
// only key files changed, `compile --cache` patches the previous bundle. Every step compares the
// bytes and diagnostics with an uncached compile of the same config, and says which path ran
// (`cache.patched` is set only when the snapshot was patched): key edits, moves, new and removed
// files, a certificate changed or rewritten with size and mtime kept, and the fallbacks (policy,
// API, duplicates across files, a corrupt or missing snapshot). 300 keys in 3 key files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { containsPrivateKey } from '../cert/private-key.ts';
import { compileDir, type CompileResult } from '../compiler/index.ts';
import { changedWitnesses, lineStarts, WITNESS_FIELDS, WitnessFindings, type WitnessRange } from '../compiler/witness-check.ts';
import { assertSameAsUncached, cacheStats, cacheSuite, certificateOfSize, edit, keyCertificates, settle } from './helpers/cache-config.ts';

const suite = cacheSuite('compile-snapshot');
const NOW = suite.now;

/** A fresh copy of the config, compiled once with an empty cache (which writes entries and the snapshot). */
async function workspace(name: string): Promise<{ dir: string; cache: string }> {
  const { dir, cache } = suite.copy(name);
  const cold = await same(dir, cache);
  assert.equal(cold.cache?.patched, undefined, 'no snapshot yet');
  assert.ok(readdirSync(join(cache, 'snapshot')).includes('state.json'), 'the cold compile wrote the snapshot');
  return { dir, cache };
}

/** The cached compile gives exactly what an uncached one gives. */
const same = (dir: string, cache: string): Promise<CompileResult> => assertSameAsUncached(dir, cache, NOW);

const docsOf = (file: string) => readFileSync(file, 'utf8').split(/^---\n/m);

test('key edits, a moved key, a new and a removed key file: the previous bundle is patched', async () => {
  const { dir, cache } = await workspace('edits');
  const warm = await same(dir, cache);
  assert.deepEqual(cacheStats(warm), { hits: 3, stale: 0, patched: 0 });

  edit(join(dir, 'keys/part-1.yaml'), (s) => s.replace(/apply_policies: \[policy-\d+\]/, 'apply_policies: [policy-042, policy-007]'));
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 2, stale: 0, patched: 1 });
  // A key unreachable (a warning, replayed from the snapshot next time).
  edit(join(dir, 'keys/part-1.yaml'), (s) => s.replace('apply_policies: [policy-042, policy-007]', 'apply_policies: []'));
  const warned = await same(dir, cache);
  assert.ok(warned.diagnostics.some((d) => d.code === 'W_KEY_UNREACHABLE' && d.file === 'keys/part-1.yaml'));
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 3, stale: 0, patched: 0 });

  // The last key of part-2 moved into a new file part-3; key-000050 taken out of part-0.
  const two = docsOf(join(dir, 'keys/part-2.yaml'));
  writeFileSync(join(dir, 'keys/part-2.yaml'), two.slice(0, -1).join('---\n'));
  writeFileSync(join(dir, 'keys/part-3.yaml'), two.at(-1)!);
  const zero = docsOf(join(dir, 'keys/part-0.yaml'));
  assert.match(zero[50]!, /id: key-000050\n/);
  writeFileSync(join(dir, 'keys/part-0.yaml'), [...zero.slice(0, 50), ...zero.slice(51)].join('---\n'));
  const moved = await same(dir, cache);
  assert.deepEqual(cacheStats(moved), { hits: 1, stale: 0, patched: 3 }, moved.cache?.snapshotMiss);

  // key-000000's certificate is also pinned by an API (the generator pins the first ten): the pin
  // stays without its key (more in test/compile-cache-frame.test.ts).
  writeFileSync(join(dir, 'keys/part-0.yaml'), [...zero.slice(1, 50), ...zero.slice(51)].join('---\n'));
  const pinned = await same(dir, cache);
  assert.deepEqual(cacheStats(pinned), { hits: 3, stale: 0, patched: 1 }, pinned.cache?.snapshotMiss);

  // A key file removed: its 99 keys leave the bundle.
  rmSync(join(dir, 'keys/part-2.yaml'));
  const removed = await same(dir, cache);
  assert.deepEqual(cacheStats(removed), { hits: 3, stale: 0, patched: 0 }, removed.cache?.snapshotMiss);
  assert.equal(removed.wire!.keys.ids.length, 98 + 100 + 1);
});

test('a certificate file changed, or rewritten in place with size and mtime kept (racily clean), is seen', async () => {
  const { dir: dir0, cache } = suite.copy('certs-pre');
  // key-000050's certificate will be rewritten with a part-2 key's of the same size, mtime restored; an
  // mtime a minute ahead is racily clean when read, so the snapshot keeps its SHA-256.
  const racy = join(dir0, 'certs/000/key-000050.pem');
  const seconds = Math.floor(Date.now() / 1000) + 60;
  utimesSync(racy, seconds, seconds);
  await same(dir0, cache);
  assert.equal((await same(dir0, cache)).cache?.patched, 0);

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  appendFileSync(join(dir0, 'certs/000/key-000150.pem'), keyPem);
  const warned = await same(dir0, cache);
  assert.ok(warned.diagnostics.some((d) => d.code === 'W_CERT_PRIVATE_KEY'));
  assert.deepEqual(cacheStats(warned), { hits: 2, stale: 0, patched: 1 }, 'part-1 resolved again: its certificate file changed');

  const other = readFileSync(certificateOfSize(statSync(racy).size, keyCertificates(dir0, 200, 300)));
  assert.equal(other.length, statSync(racy).size);
  writeFileSync(racy, other);
  utimesSync(racy, seconds, seconds);
  const dup = await same(dir0, cache);
  assert.ok(
    dup.diagnostics.some((d) => d.code === 'E_DUPLICATE_CERT'),
    'the rewritten certificate was seen',
  );
  assert.equal(dup.cache?.patched, undefined, 'a duplicate across files: the ordinary path reports it');

  // No private key material anywhere in the cache.
  const body = keyPem.split('\n')[1]!;
  for (const name of [...readdirSync(cache), ...readdirSync(join(cache, 'snapshot')).map((n) => join('snapshot', n))]) {
    if (name === 'snapshot') continue;
    const text = readFileSync(join(cache, name), 'utf8');
    assert.ok(!containsPrivateKey(text) && !text.includes(body), `${name} holds no private key`);
  }
});

test('a certificate rewritten in place with its size and mtime put back, not racy, is seen by its ctime', async () => {
  const { dir, cache } = suite.copy('certs-ctime');
  // key-000050's certificate and the next part-0 one of the same size will swap their bytes, mtimes put back.
  const a = join(dir, 'certs/000/key-000050.pem');
  const b = certificateOfSize(statSync(a).size, keyCertificates(dir, 51, 100));
  const past = Math.floor(Date.now() / 1000) - 3600;
  for (const p of [a!, b!]) utimesSync(p, past, past);
  // Settled: the witnesses recorded keep no SHA-256 (nothing racy to re-hash).
  await settle([a!, b!]);
  await same(dir, cache);
  assert.equal((await same(dir, cache)).cache?.patched, 0);
  const [bytesA, bytesB] = [readFileSync(a!), readFileSync(b!)];
  assert.equal(bytesA.length, bytesB.length);
  writeFileSync(a!, bytesB);
  writeFileSync(b!, bytesA);
  for (const p of [a!, b!]) utimesSync(p, past, past);
  assert.equal(statSync(a!).mtimeMs, past * 1000, 'size, mtime and inode as recorded');
  // `same` compares with an uncached compile: the two keys' fingerprints swapped.
  const swapped = await same(dir, cache);
  assert.deepEqual(cacheStats(swapped), { hits: 2, stale: 0, patched: 1 }, 'part-0 resolved again');
});

test('a policy, an API or --strict changed: the ordinary path, then the snapshot again', async () => {
  const { dir, cache } = await workspace('context');
  edit(join(dir, 'policies.yaml'), (s) => s.replace(/rate: (\d+)/, (_, n) => `rate: ${Number(n) + 1}`));
  const policy = await same(dir, cache);
  assert.deepEqual(cacheStats(policy), { hits: 0, stale: 3 });
  assert.equal(policy.cache?.snapshotMiss, 'APIs, policies or options changed');
  assert.equal((await same(dir, cache)).cache?.patched, 0, 'the fallback wrote a new snapshot');
  const api = join(dir, 'apis', readdirSync(join(dir, 'apis'))[0]!);
  edit(api, (s) => s.replace(/target_url: http:\/\/127\.0\.0\.1:(\d+)/, (_, p) => `target_url: http://127.0.0.1:${Number(p) + 1}`));
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 0, stale: 3 });
  const strictPlain = await compileDir(dir, { now: NOW, strict: true });
  const strictCached = await compileDir(dir, { now: NOW, strict: true, cacheDir: cache });
  assert.deepEqual(strictCached.diagnostics, strictPlain.diagnostics);
  assert.equal(strictCached.cache?.patched, undefined);
});

test('a key id or certificate duplicated across files falls back to the ordinary path (its diagnostics)', async () => {
  const { dir, cache } = await workspace('dups');
  const file = join(dir, 'keys/part-2.yaml');
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replace('id: key-000250', 'id: key-000010'));
  const id = await same(dir, cache);
  assert.ok(id.diagnostics.some((d) => d.code === 'E_DUPLICATE_ID'));
  assert.equal(id.cache?.patched, undefined);
  writeFileSync(file, text);
  assert.equal((await same(dir, cache)).errorCount, 0);
  writeFileSync(file, text.replace('certs/000/key-000250.pem', 'certs/000/key-000010.pem'));
  const cert = await same(dir, cache);
  assert.ok(cert.diagnostics.some((d) => d.code === 'E_DUPLICATE_CERT'));
  assert.equal(cert.cache?.patched, undefined);
});

test('a corrupt, torn or missing snapshot is never trusted', async () => {
  const { dir, cache } = await workspace('corrupt');
  const snap = (name: string) => join(cache, 'snapshot', name);
  const key = join(dir, 'keys/part-1.yaml');
  let n = 0;
  const change = () => edit(key, (s) => s.replace(/apply_policies: \[policy-\d+\]/, `apply_policies: [policy-00${n++ % 10}, policy-099]`));
  // The previous bundle with one record changed, its digest line left alone.
  change();
  const bundle = readFileSync(snap('bundle.json'), 'utf8');
  writeFileSync(snap('bundle.json'), bundle.replace(/"key-000299"/, '"key-000298"'));
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 2, stale: 0 });
  change();
  truncateSync(snap('certs-0.bin'), 24);
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 2, stale: 0 });
  change();
  const state = readFileSync(snap('state.json'), 'utf8');
  assert.ok(state.includes('"docs":100'));
  writeFileSync(snap('state.json'), state.replace('"docs":100', '"docs":99'));
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 2, stale: 0 });
  change();
  const ids = readFileSync(snap('ids-0.txt'), 'utf8');
  writeFileSync(snap('ids-0.txt'), ids.replace('key-000150\n', 'key-000151\n'));
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 2, stale: 0 });
  change();
  rmSync(join(cache, 'snapshot'), { recursive: true });
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 2, stale: 0 });
  change();
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 2, stale: 0, patched: 1 }, 'written again by the fallback');
});

test('the witness check finds the same changed files on this thread and in worker threads', async () => {
  const { dir } = suite.copy('witness');
  const paths = readdirSync(join(dir, 'certs/000'))
    .map((n) => join(dir, 'certs/000', n))
    .slice(0, 40);
  paths.push(join(dir, 'certs/000/missing.pem'));
  const stats = new Float64Array(paths.length * WITNESS_FIELDS);
  // Whole seconds, so that the rewrite below can put the very same mtime back.
  const seconds = Math.floor(Date.now() / 1000) - 3600;
  paths.forEach((p, i) => {
    try {
      utimesSync(p, seconds, seconds);
      const st = statSync(p);
      stats.set([st.size, st.mtimeMs, st.ctimeMs, st.ino], i * WITNESS_FIELDS);
    } catch {
      stats[i * WITNESS_FIELDS] = -1;
    }
  });
  // Lines relative to the config directory (as the snapshot writes paths inside it) and absolute ones.
  const text = Buffer.from(paths.map((p, i) => (i % 2 === 0 ? relative(dir, p) : p)).join('\n'));
  const table = { root: dir, text, stats, starts: lineStarts(text, paths.length) };
  // Ten files of four witnesses, the last also holding the missing one; file 2's third witness racily clean.
  const racyPath = paths[10]!;
  const ranges: WitnessRange[] = Array.from({ length: 10 }, (_, f) => ({ start: f * 4, end: f === 9 ? 41 : f * 4 + 4 }));
  ranges[2]!.racy = { 10: createHash('sha256').update(readFileSync(racyPath)).digest('hex') };
  for (const workers of [0, 2, 3]) assert.deepEqual([...(await changedWitnesses(table, ranges, workers))], [], `nothing changed (${workers} workers)`);
  appendFileSync(paths[5]!, '\n');
  const bytes = readFileSync(racyPath);
  bytes[bytes.length - 2] = bytes[bytes.length - 2] === 0x41 ? 0x42 : 0x41;
  writeFileSync(racyPath, bytes);
  utimesSync(racyPath, seconds, seconds);
  assert.equal(statSync(racyPath).mtimeMs, stats[10 * WITNESS_FIELDS + 1], 'size, mtime and inode kept: its SHA-256 (and ctime) tell');
  // File 4's second certificate rewritten in place with another's bytes (same size) and its mtime
  // put back, no SHA-256 kept (it was not racy): only the ctime tells.
  const quiet = paths[17]!;
  const otherBytes = readFileSync(certificateOfSize(statSync(quiet).size, paths.slice(18, 40)));
  assert.equal(otherBytes.length, statSync(quiet).size);
  writeFileSync(quiet, otherBytes);
  utimesSync(quiet, seconds, seconds);
  const now = statSync(quiet);
  assert.deepEqual([now.size, now.mtimeMs, now.ino], [stats[17 * WITNESS_FIELDS], stats[17 * WITNESS_FIELDS + 1], stats[17 * WITNESS_FIELDS + 3]]);
  writeFileSync(paths[40]!, 'now present');
  {
    // In worker threads, a changed file is known before the check is over and without a turn of
    // the event loop (this thread does not yield here): the snapshot path resolves it meanwhile.
    const findings = new WitnessFindings();
    const result = changedWitnesses(table, ranges, 2, undefined, findings);
    const until = Date.now() + 30_000;
    while (findings.soFar().size === 0 && Date.now() < until);
    assert.ok(findings.soFar().size > 0, 'a changed file reported while this thread never yielded');
    await result;
  }
  for (const workers of [0, 2, 3]) {
    // Each changed file is also reported as soon as it is found (the snapshot path resolves it while the rest is checked).
    const findings = new WitnessFindings();
    const result = changedWitnesses(table, ranges, workers, undefined, findings);
    const changed = [...(await result)].sort((a, b) => a - b);
    assert.deepEqual(changed, [1, 2, 4, 9], `size, racy rewrite, rewrite with mtime put back, a missing file now present (${workers} workers)`);
    assert.deepEqual(
      [...findings.soFar()].sort((a, b) => a - b),
      changed,
      `each reported (${workers} workers)`,
    );
  }

  // A path holding a NUL byte: statSync refuses it (the witness then holds only as "could not be
  // stat'ed"), never the path cut at the NUL (an existing file): the same answer on every thread.
  const cut = paths[20]!;
  const nulText = Buffer.concat([text, Buffer.from(`\n${cut}\0.old`)]);
  const nulStats = new Float64Array(stats.length + WITNESS_FIELDS);
  nulStats.set(stats);
  nulStats[stats.length] = -1;
  const nulTable = { root: dir, text: nulText, stats: nulStats, starts: lineStarts(nulText, paths.length + 1) };
  const nulRanges: WitnessRange[] = [...ranges.map((r) => ({ ...r })), { start: paths.length, end: paths.length + 1 }];
  for (const workers of [0, 2]) {
    const findings = new WitnessFindings();
    const changed = [...(await changedWitnesses(nulTable, nulRanges, workers, undefined, findings))].sort((a, b) => a - b);
    assert.deepEqual(changed, [1, 2, 4, 9], `the NUL path's witness ("not stat'ed") holds (${workers} workers)`);
  }
});

test('the witness and id tables in chunks: one key file changed rewrites its chunk alone; files added and removed move the chunks; the same bytes', async () => {
  // 150 key files of two keys each (the config's 300 keys): three chunks of CHUNK_FILES (64) key files.
  const { dir, cache } = suite.copy('chunks');
  const docs = readdirSync(join(dir, 'keys'))
    .sort()
    .flatMap((f) => {
      const text = readFileSync(join(dir, 'keys', f), 'utf8');
      rmSync(join(dir, 'keys', f));
      return text.split(/^---\n/m);
    });
  const name = (i: number) => join(dir, 'keys', `k-${String(i).padStart(3, '0')}.yaml`);
  for (let i = 0; i < docs.length / 2; i++) writeFileSync(name(i), docs.slice(2 * i, 2 * i + 2).join('---\n'));
  const snapDir = join(cache, 'snapshot');
  const chunkFiles = () =>
    readdirSync(snapDir)
      .filter((f) => /^(certs|ids)-\d+\./.test(f))
      .sort();
  const identity = () => new Map(chunkFiles().map((f) => [f, `${statSync(join(snapDir, f)).ino}:${statSync(join(snapDir, f)).mtimeMs}`]));
  // A cache of format v6 (one file a table) before: the cold compile removes its tables.
  mkdirSync(snapDir, { recursive: true });
  for (const old of ['certs.txt', 'certs.bin', 'ids.txt']) writeFileSync(join(snapDir, old), 'v6');
  assert.equal(cacheStats(await same(dir, cache)).patched, undefined, 'cold');
  assert.deepEqual(
    readdirSync(snapDir).filter((f) => /^(certs|ids)\./.test(f)),
    [],
    'the v6 tables removed',
  );
  assert.deepEqual(chunkFiles(), [
    'certs-0.bin',
    'certs-0.txt',
    'certs-1.bin',
    'certs-1.txt',
    'certs-2.bin',
    'certs-2.txt',
    'ids-0.txt',
    'ids-1.txt',
    'ids-2.txt',
  ]);
  let before = identity();
  // A key of file 70 (chunk 1) edited: chunk 1 written again, chunks 0 and 2 not touched.
  edit(name(70), (s) => s.replace(/apply_policies: \[policy-\d+\]/, 'apply_policies: [policy-042, policy-007]'));
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 149, stale: 0, patched: 1 });
  let after = identity();
  const changedChunks = () => [...after].filter(([f, id]) => before.get(f) !== id).map(([f]) => f);
  assert.deepEqual(changedChunks(), ['certs-1.bin', 'certs-1.txt', 'ids-1.txt'], 'only the changed file chunk is written');
  // A key of file 3 given another certificate file: chunk 0 (its witnesses) written again.
  before = after;
  const other = join(dir, 'certs', 'other.pem');
  writeFileSync(other, readFileSync(join(dir, 'certs/000/key-000299.pem')));
  rmSync(join(dir, 'certs/000/key-000299.pem'));
  const holder = docs.findIndex((d) => d.includes('key-000299.pem'));
  edit(name(Math.floor(holder / 2)), (s) => s.replace('../certs/000/key-000299.pem', '../certs/other.pem'));
  assert.equal(cacheStats(await same(dir, cache)).patched, 1);
  after = identity();
  const chunkOf = Math.floor(Math.floor(holder / 2) / 64);
  assert.deepEqual(changedChunks(), [`certs-${chunkOf}.bin`, `certs-${chunkOf}.txt`, `ids-${chunkOf}.txt`]);
  // A new file sorting first: every file moves one place, every chunk written again, still the same bytes.
  writeFileSync(join(dir, 'keys', 'a-first.yaml'), readFileSync(name(149)));
  rmSync(name(149));
  assert.equal(cacheStats(await same(dir, cache)).patched, 1);
  // Files removed down to two chunks: the third chunk's files are gone, and nothing changed compiles from the two.
  for (let i = 100; i < 149; i++) rmSync(name(i));
  assert.equal(cacheStats(await same(dir, cache)).patched, 0);
  assert.deepEqual(chunkFiles(), ['certs-0.bin', 'certs-0.txt', 'certs-1.bin', 'certs-1.txt', 'ids-0.txt', 'ids-1.txt']);
  before = identity();
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 101, stale: 0, patched: 0 });
  after = identity();
  assert.deepEqual(changedChunks(), [], 'nothing changed: no chunk written');
});
