// The bundle at scale, on a small generated config (bench/gen-config.ts: 30 APIs, 3,000 keys, each
// with its own certificate file, 100 policies): the compiler's direct file form and the records
// it expands to give the same bytes, compiles are byte-identical, and the gateway's compact
// snapshot (typed-array columns with hash slots) answers every lookup as the parsed one does.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { generateCompileConfig } from '../bench/gen-config.ts';
import { loadBundle } from '../bundle/read.ts';
import { serializeBundle } from '../bundle/write.ts';
import { compileDir } from '../compiler/index.ts';
import { verifyCompact } from '../runtime/compact-load.ts';
import { buildCompactSnapshot, buildSnapshot } from '../runtime/snapshot.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('bundle-scale');
after(() => t.cleanup());

const KEYS = 3000;

test('a generated config of 3,000 keys: deterministic, compact, and served from its columns as parsed', async () => {
  const gen = await generateCompileConfig(t.dir, { apis: 30, keys: KEYS });
  const first = await compileDir(gen.dir);
  assert.equal(first.errorCount, 0, JSON.stringify(first.diagnostics.slice(0, 3)));
  const again = await compileDir(gen.dir);
  assert.deepEqual(again.bundle, first.bundle, 'the same config compiles to the same bytes');
  // The compiler writes the file form directly; the records it expands to write the same bytes.
  assert.deepEqual(serializeBundle(first.content!), first.bundle);
  const bytes = first.bundle!;
  const parsed = loadBundle(bytes);
  assert.deepEqual(parsed.content, first.content);
  // 100 policies over 27 dynamic APIs: 100 sessions, each written once.
  assert.equal(first.wire!.sessions.length, 100);
  assert.ok(bytes.length / KEYS < 160, `${Math.round(bytes.length / KEYS)} bytes a key`);

  const compact = buildCompactSnapshot(verifyCompact(bytes, createHash('sha256').update(bytes).digest('hex')));
  const reference = buildSnapshot(parsed);
  for (const id of Object.keys(parsed.content.keys)) {
    const key = parsed.content.keys[id];
    assert.deepEqual(compact.key(id)?.def, key, id);
    for (const fp of key.certificates) assert.equal(compact.keyByCert(fp)?.id, id, `certificate of ${id}`);
  }
  for (const fp of Object.keys(parsed.content.index.certs)) assert.deepEqual(compact.namesOf(fp), reference.namesOf(fp), fp);
  assert.equal(compact.expiry.length, reference.expiry.length);
  assert.deepEqual(
    compact.expiry.after(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY),
    reference.expiry.after(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY),
  );
  for (const missing of ['key-999999', '', 'constructor', '0'.repeat(64)]) {
    assert.equal(compact.key(missing), undefined, missing);
    assert.equal(compact.keyByCert(missing), undefined, missing);
  }
  assert.deepEqual(compact.bundle, parsed, 'the whole bundle back from the columns');
});
