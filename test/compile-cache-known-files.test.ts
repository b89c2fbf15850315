// Key files known by their stat (compiler/known-files.ts): `compile --cache` does not read or hash
// a key file whose size, mtime, ctime, inode and device equal the snapshot's record. Every step
// compares bytes and diagnostics with an uncached compile: a same-size edit that keeps the mtime
// (only the ctime tells), a file touched but not changed, a file changed within RACY_MS (never
// recorded), and the ordinary path reading a file it did not read at load. 300 keys in 3 files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertSameAsUncached, cacheStats, cacheSuite, edit, settle } from './helpers/cache-config.ts';

const suite = cacheSuite('compile-known-files');
const NOW = suite.now;
const same = (dir: string, cache: string) => assertSameAsUncached(dir, cache, NOW);

/** The snapshot's recorded stat per key file (display path -> stat, or undefined when none). */
function recorded(dir: string, cache: string): Record<string, string | undefined> {
  const text = readFileSync(join(cache, 'snapshot/state.json'), 'utf8');
  const state = JSON.parse(text.slice(text.indexOf('\n') + 1)) as { files: { path: string; stat?: string }[] };
  return Object.fromEntries(state.files.map((f) => [f.path.slice(dir.length + 1), f.stat]));
}

test('key files known by their stat: not read; a same-size edit with its mtime put back is still seen; a touch re-reads', async () => {
  const { dir, cache } = suite.copy('known');
  const parts = [0, 1, 2].map((i) => join(dir, `keys/part-${i}.yaml`));
  // Whole-second mtimes an hour ago, so that an edit can put the very same mtime back.
  const past = Math.floor(Date.now() / 1000) - 3600;
  for (const p of parts) utimesSync(p, past, past);
  await settle(parts);

  const cold = await same(dir, cache);
  assert.equal(cold.cache?.patched, undefined, 'no snapshot yet');
  assert.deepEqual(Object.keys(recorded(dir, cache)).sort(), ['keys/part-0.yaml', 'keys/part-1.yaml', 'keys/part-2.yaml']);
  for (const [path, stat] of Object.entries(recorded(dir, cache))) assert.ok(stat, `${path}: its stat recorded`);

  const warm = await same(dir, cache);
  assert.deepEqual(cacheStats(warm), { hits: 3, stale: 0, patched: 0 }, warm.cache?.snapshotMiss);
  assert.equal(warm.cache?.unread, 3, 'no key file read');

  // part-1: one policy swapped for another of the same length, in place, its mtime put back:
  // size, mtime, inode and device as recorded, only the ctime differs.
  const before = statSync(parts[1]!, { bigint: true });
  edit(parts[1]!, (s) => s.replace(/apply_policies: \[policy-(\d{3})\]/, (_m, n: string) => `apply_policies: [policy-${n === '003' ? '004' : '003'}]`));
  utimesSync(parts[1]!, past, past);
  const after = statSync(parts[1]!, { bigint: true });
  assert.deepEqual([after.size, after.mtimeNs, after.ino, after.dev], [before.size, before.mtimeNs, before.ino, before.dev]);
  // Settled too (not racily clean by the time of the compile): only the ctime tells.
  await settle([parts[1]!]);
  const recordedBefore = recorded(dir, cache)['keys/part-1.yaml'];
  const edited = await same(dir, cache);
  assert.deepEqual(cacheStats(edited), { hits: 2, stale: 0, patched: 1 }, edited.cache?.snapshotMiss);
  assert.equal(edited.cache?.unread, 2);
  assert.notEqual(edited.bundle?.toString('latin1'), warm.bundle?.toString('latin1'), 'the edit changed the bundle');
  const recordedAfter = recorded(dir, cache)['keys/part-1.yaml'];
  assert.ok(recordedAfter && recordedAfter !== recordedBefore, 'its new stat recorded');

  // part-2 touched, not changed: read and hashed again, kept (the same bytes).
  const touchedAt = new Date();
  utimesSync(parts[2]!, touchedAt, touchedAt);
  const touched = await same(dir, cache);
  assert.deepEqual(cacheStats(touched), { hits: 3, stale: 0, patched: 0 }, touched.cache?.snapshotMiss);
  assert.equal(touched.cache?.unread, 2, 'part-0 and part-1 (settled since its edit) not read');
  assert.ok(touched.bundle?.equals(edited.bundle!), 'a touch changes no byte');
  const racy = recorded(dir, cache);
  assert.ok(racy['keys/part-0.yaml'] && racy['keys/part-1.yaml']);
  assert.equal(racy['keys/part-2.yaml'], undefined, 'touched within RACY_MS: not recorded');

  // Once settled, both are recorded again, and a recompile reads none of them.
  await settle(parts);
  await same(dir, cache);
  for (const [path, stat] of Object.entries(recorded(dir, cache))) assert.ok(stat, `${path}: recorded again`);
  const quiet = await same(dir, cache);
  assert.equal(quiet.cache?.unread, 3);
  assert.ok(quiet.bundle?.equals(edited.bundle!));
});

test('a key file known by its stat, read when the ordinary path needs it (an API changed)', async () => {
  const { dir, cache } = suite.copy('known-fallback');
  const parts = [0, 1, 2].map((i) => join(dir, `keys/part-${i}.yaml`));
  await settle(parts);
  await same(dir, cache);
  const warm = await same(dir, cache);
  assert.equal(warm.cache?.unread, 3);
  // An API changed: the snapshot is not used, and the per-file path reads what it needs.
  const api = join(dir, 'apis/apis-00.yaml');
  const text = readFileSync(api, 'utf8');
  const next = text.replace(/listen_path: \/([a-z0-9-]+)\//, 'listen_path: /$1-moved/');
  assert.notEqual(next, text);
  writeFileSync(api, next);
  const moved = await same(dir, cache);
  assert.ok(moved.cache?.snapshotMiss, 'the ordinary path');
  assert.equal(moved.cache?.unread, undefined);
  // A key file known by its stat but also changed in the same step: read, patched.
  edit(parts[0]!, (s) => s.replace(/apply_policies: \[policy-\d+\]/, 'apply_policies: []'));
  const patched = await same(dir, cache);
  assert.deepEqual(cacheStats(patched), { hits: 2, stale: 0, patched: 1 }, patched.cache?.snapshotMiss);
});
