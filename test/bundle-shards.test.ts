// Sharded bundles (bundle/shards.ts, compiler/write-sharded.ts, runtime/shard-set.ts): the split
// says exactly what the single-file bundle says, every lookup through the shards answers as the
// single-file snapshot does, a one-key change writes and reloads one shard, and a missing,
// tampered or mixed-up shard is refused while the previous set serves on.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundle } from '../bundle/read.ts';
import { mergeShards, splitWire } from '../bundle/shards.ts';
import type { BundleContent, WireContent } from '../bundle/types.ts';
import { encodeContent, hexAt, hexCount } from '../bundle/wire.ts';
import { documentDigest, serializeManifest, serializeShard, serializeWire } from '../bundle/write.ts';
import { writeShardedBundle } from '../compiler/write-sharded.ts';
import { loadShardSet, routingSource, type ShardLocation } from '../runtime/shard-set.ts';
import { buildShardedSnapshot, buildSnapshot, type Snapshot } from '../runtime/snapshot.ts';
import { BundleStore } from '../runtime/store.ts';
import { loadShardsHere } from '../runtime/shard-reload.ts';
import { bundleContent, sha256Hex } from './helpers/bundle-builder.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('bundle-shards');
after(() => t.cleanup());

/** 400 keys: certificates (some two), tokens, expiries, inactive keys, five policies, pins on a key's certificate and on others. */
function sampleContent(keys = 400, inactive: string[] = []): BundleContent {
  const pinnedKeyCert = sha256Hex('cert-1');
  const apis = [
    { id: 'pay', listen_path: '/pay/', target_url: 'http://127.0.0.1:9101', use_certificate: true },
    { id: 'open', listen_path: '/open/', target_url: 'http://127.0.0.1:9102' },
    {
      id: 'pinned',
      listen_path: '/pinned/',
      target_url: 'http://127.0.0.1:9103',
      use_mutual_tls_auth: true,
      client_certificates: [pinnedKeyCert, sha256Hex('pin-only')],
    },
  ];
  const specs = [];
  for (let i = 0; i < keys; i++) {
    const id = `key-${String(i).padStart(5, '0')}`;
    const certificates = i % 3 === 0 ? [] : i % 7 === 0 ? [sha256Hex(`cert-${i}`), sha256Hex(`cert-b-${i}`)] : [sha256Hex(`cert-${i}`)];
    specs.push({
      id,
      certificates,
      token_sha256: i % 2 === 0 ? sha256Hex(`token-${i}`) : null,
      expires: i % 11 === 0 ? '2031-01-01T00:00:00Z' : null,
      is_inactive: inactive.includes(id) || i % 13 === 0,
      policies: [`p${i % 5}`],
      access_rights: i % 5 === 0 ? { open: { allowed_urls: [{ url: '^/x$', methods: ['GET'] }] } } : { pay: { allowed_urls: null } },
      rate: i % 5 === 1 ? { rate: 10, per: 1 } : null,
    });
  }
  const content = bundleContent(apis, specs);
  for (const k of Object.values(content.keys))
    for (const fp of k.certificates) content.not_after[fp] = 1_900_000_000 + (Number.parseInt(fp.slice(0, 6), 16) % 5000);
  content.not_after[sha256Hex('pin-only')] = 1_800_000_000;
  return content;
}

test('split and merge are inverses: the shards say exactly what the single-file bundle says', () => {
  const wire = encodeContent(sampleContent());
  for (const n of [1, 2, 7, 64]) {
    const { base, shards } = splitWire(wire, n);
    assert.equal(shards.length, n);
    assert.equal(base.keys.ids.length, 0, 'the manifest holds no key');
    assert.deepEqual(mergeShards(base, shards), wire, `${n} shards`);
    assert.deepEqual(serializeWire(mergeShards(base, shards)), serializeWire(wire));
  }
});

function writeSample(dir: string, content: BundleContent, shards = 16) {
  return writeShardedBundle(dir, encodeContent(content), shards);
}

const here = (dir: string): ShardLocation => ({ kind: 'file', dir });

async function shardedSnapshot(dir: string): Promise<Snapshot> {
  const manifest = readFileSync(join(dir, 'manifest.json'));
  return buildShardedSnapshot(await loadShardsHere(manifest, sha256(manifest), here(dir), null));
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

test('every lookup through the shards answers as the single-file snapshot does', async () => {
  const content = sampleContent();
  const dir = join(t.dir, 'lookups');
  writeSample(dir, content);
  const sharded = await shardedSnapshot(dir);
  const reference = buildSnapshot(loadBundle(serializeWire(encodeContent(content))));
  for (const id of Object.keys(content.keys)) {
    assert.deepEqual(sharded.key(id)?.def, reference.key(id)?.def, id);
    const key = content.keys[id];
    for (const fp of key.certificates) assert.equal(sharded.keyByCert(fp)?.id, id, `certificate of ${id}`);
    if (key.token_sha256) assert.equal(sharded.keyByToken(key.token_sha256)?.id, id, `token of ${id}`);
  }
  for (const fp of Object.keys(reference.bundle.content.index.certs)) assert.deepEqual(sharded.namesOf(fp), reference.namesOf(fp), fp);
  for (const missing of ['key-99999', '', 'constructor', '0'.repeat(64), sha256Hex('pin-only')]) {
    assert.equal(sharded.key(missing), undefined, missing);
    assert.equal(sharded.keyByCert(missing), undefined, missing);
    assert.equal(sharded.keyByToken(missing), undefined, missing);
  }
  // The expiry list: the same times in the same order, the same fingerprints at each time.
  const all = (s: Snapshot) => s.expiry.after(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
  assert.equal(sharded.expiry.length, reference.expiry.length);
  assert.deepEqual(
    all(sharded).map((e) => e.time),
    all(reference).map((e) => e.time),
  );
  const byTime = (s: Snapshot) =>
    all(s)
      .map((e) => `${e.time} ${e.fingerprint}`)
      .sort();
  assert.deepEqual(byTime(sharded), byTime(reference));
  // Counts and the first entries after a time, as the metrics and the admin list read them.
  for (const e of all(reference)) {
    for (const t of [e.time - 1, e.time, e.time + 1]) {
      assert.equal(sharded.expiry.countUpTo(t), reference.expiry.countUpTo(t), `count up to ${t}`);
      const times = (s: Snapshot) => s.expiry.after(t, 3).map((x) => x.time);
      assert.deepEqual(times(sharded), times(reference), `after ${t}`);
    }
  }
  assert.deepEqual(sharded.bundle.content, reference.bundle.content, 'the whole bundle back from the shards');
});

test('a one-key change writes one shard, and a reload reads only that one', async () => {
  const dir = join(t.dir, 'one-key');
  const first = writeSample(dir, sampleContent());
  assert.equal(first.written, 16);
  const manifest1 = readFileSync(join(dir, 'manifest.json'));
  const set1 = await loadShardSet(manifest1, sha256(manifest1), here(dir), new Map());
  assert.equal(set1.fresh.size, 16);

  const second = writeSample(dir, sampleContent(400, ['key-00001']));
  assert.equal(second.written, 1, "only the changed key's shard is written");
  const manifest2 = readFileSync(join(dir, 'manifest.json'));
  const held = new Map(set1.digests.map((d, i) => [d, routingSource(set1.fresh.get(i)!)]));
  const set2 = await loadShardSet(manifest2, sha256(manifest2), here(dir), held);
  assert.equal(set2.fresh.size, 1, 'only the changed shard is read');

  // Through the store, as serve does: the reload takes the change.
  const store = await BundleStore.createSharded(manifest1, dir, here(dir), buildSnapshot, { buildSharded: buildShardedSnapshot });
  assert.equal(store.current().key('key-00001')?.def.is_inactive, false);
  const r = await store.reloadAsync(manifest2, dir);
  assert.equal(r.status, 'loaded', JSON.stringify(r));
  assert.equal(store.current().key('key-00001')?.def.is_inactive, true);
  assert.equal(store.info().keys, 400);
  assert.equal((await store.reloadAsync(manifest2, dir)).status, 'unchanged');
});

test("shard files no manifest names any more are removed; the previous set's stay while a gateway may read them", () => {
  const dir = join(t.dir, 'gc');
  const named = () => {
    const m = readFileSync(join(dir, 'manifest.json'), 'utf8');
    return new Set((JSON.parse(m.slice(m.indexOf('"content":') + 10, -2)).shards as string[]).map((d) => `${d.slice(7)}.json`));
  };
  writeSample(dir, sampleContent(), 4);
  const v1 = named();
  writeSample(dir, sampleContent(400, ['key-00001']), 4);
  const v2 = named();
  assert.deepEqual(new Set(readdirSync(join(dir, 'shards'))), new Set([...v1, ...v2]), 'v1 (a gateway may still read it) and v2');
  const third = writeSample(dir, sampleContent(400, ['key-00001', 'key-00002']), 4);
  const v3 = named();
  assert.deepEqual(new Set(readdirSync(join(dir, 'shards'))), new Set([...v2, ...v3]), "v1's own files are gone");
  assert.equal(third.removed, [...v1].filter((f) => !v2.has(f) && !v3.has(f)).length);
  assert.ok(third.removed >= 1);
});

test('a missing, tampered or mixed-up shard is refused and the previous set serves on', async () => {
  const dir = join(t.dir, 'corrupt');
  writeSample(dir, sampleContent());
  const manifest1 = readFileSync(join(dir, 'manifest.json'));
  const store = await BundleStore.createSharded(manifest1, dir, here(dir), buildSnapshot, { buildSharded: buildShardedSnapshot });
  writeSample(dir, sampleContent(400, ['key-00001']));
  const manifest2 = readFileSync(join(dir, 'manifest.json'));
  const wanted = JSON.parse(manifest2.toString().slice(manifest2.indexOf('"content":') + 10, -2)).shards as string[];
  const before = JSON.parse(manifest1.toString().slice(manifest1.indexOf('"content":') + 10, -2)).shards as string[];
  const changed = wanted.find((d) => !before.includes(d))!;
  const path = join(dir, 'shards', `${changed.slice(7)}.json`);
  const good = readFileSync(path);
  const stillOld = () => assert.equal(store.current().key('key-00001')?.def.is_inactive, false, 'the previous set serves on');

  rmSync(path);
  let r = await store.reloadAsync(manifest2, dir);
  assert.equal(r.status, 'failed');
  assert.match(r.status === 'failed' ? r.error.message : '', /shard shards\/[0-9a-f]{64}\.json is missing; the manifest names it/);
  stillOld();

  // Bytes edited after compile: the shard's own digest no longer matches its content.
  writeFileSync(path, good.toString().replace('"key-00001"', '"key-0000X"'));
  r = await store.reloadAsync(manifest2, dir);
  assert.match(r.status === 'failed' ? r.error.message : '', /shard \d+ digest mismatch/);
  stillOld();

  // A well-formed shard, but not the one the manifest names (another version's, or forged with a fresh digest).
  const content = JSON.parse(good.toString().slice(good.indexOf('"content":') + 10, -2));
  content.keys.expires[content.keys.ids[0]] = '2099-01-01T00:00:00Z';
  const forged = serializeShard(content);
  writeFileSync(path, forged);
  r = await store.reloadAsync(manifest2, dir);
  assert.match(r.status === 'failed' ? r.error.message : '', /shard \d+ is sha256:[0-9a-f]{12}…, not sha256:[0-9a-f]{12}… as the manifest says/);
  stillOld();
  assert.ok(store.lastReloadError());

  writeFileSync(path, good);
  r = await store.reloadAsync(manifest2, dir);
  assert.equal(r.status, 'loaded');
  assert.equal(store.current().key('key-00001')?.def.is_inactive, true);
  assert.equal(store.lastReloadError(), null);
});

test('a shard holding a key of another shard, or a manifest holding keys, is refused', async () => {
  const wire: WireContent = encodeContent(sampleContent());
  const { base, shards } = splitWire(wire, 4);
  // Swap two shards' contents and name them in the manifest as they are: each digest matches, the keys are misplaced.
  const dir = join(t.dir, 'misplaced');
  const files = [shards[1], shards[0], shards[2], shards[3]].map(serializeShard);
  const digests = files.map(documentDigest);
  mkdirSync(join(dir, 'shards'), { recursive: true });
  files.forEach((f, i) => writeFileSync(join(dir, 'shards', `${digests[i].slice(7)}.json`), f));
  const manifest = serializeManifest({ ...base, shards: digests });
  await assert.rejects(loadShardSet(manifest, sha256(manifest), here(dir), new Map()), /shard 0: key "key-\d+" belongs to shard 1/);
  const withKeys = serializeManifest({ ...wire, shards: digests });
  await assert.rejects(loadShardSet(withKeys, sha256(withKeys), here(dir), new Map()), /must be empty in a manifest/);
});

test("signed as a whole: the manifest's signature covers every shard", async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const { privateKey: otherKey } = generateKeyPairSync('ed25519');
  const dir = join(t.dir, 'signed');
  writeShardedBundle(dir, encodeContent(sampleContent()), 8, privateKey);
  const manifest = readFileSync(join(dir, 'manifest.json'));
  const options = { buildSharded: buildShardedSnapshot, publicKey };
  const store = await BundleStore.createSharded(manifest, dir, here(dir), buildSnapshot, options);
  assert.equal(store.info().keys, 400);

  writeShardedBundle(dir, encodeContent(sampleContent(400, ['key-00001'])), 8, otherKey);
  let r = await store.reloadAsync(readFileSync(join(dir, 'manifest.json')), dir);
  assert.match(r.status === 'failed' ? r.error.message : '', /signed by key [0-9a-f]{16}, not by the --bundle-public-key key/);
  writeShardedBundle(dir, encodeContent(sampleContent(400, ['key-00001'])), 8);
  r = await store.reloadAsync(readFileSync(join(dir, 'manifest.json')), dir);
  assert.match(r.status === 'failed' ? r.error.message : '', /bundle is not signed/);
  assert.equal(store.current().key('key-00001')?.def.is_inactive, false);
  await assert.rejects(BundleStore.createSharded(readFileSync(join(dir, 'manifest.json')), dir, here(dir), buildSnapshot, options), /not signed/);
});

test('serve finds a sharded bundle from its directory or its manifest.json, and a single-file bundle as before', async () => {
  const { readInitialBundle } = await import('../runtime/bundle-source.ts');
  const dir = join(t.dir, 'sources');
  writeSample(dir, sampleContent(20), 2);
  const fromDir = await readInitialBundle(dir);
  assert.deepEqual(fromDir.shards, { kind: 'file', dir });
  assert.equal(fromDir.follow, join(dir, 'manifest.json'), 'the manifest is what is watched');
  const fromFile = await readInitialBundle(join(dir, 'manifest.json'));
  assert.deepEqual(fromFile.shards, { kind: 'file', dir });
  assert.deepEqual(fromFile.bytes, fromDir.bytes);
  const single = join(t.dir, 'single.json');
  writeFileSync(single, serializeWire(encodeContent(sampleContent(20))));
  assert.equal((await readInitialBundle(single)).shards, null);
  await assert.rejects(readInitialBundle(t.dir), /is a directory: serve takes a compiled bundle/);
});

/** `certs` with one more entry, `fp` bound to row `row`, in its sorted place (the shard stays well-formed on its own). */
function withCert(certs: WireContent['certs'], fp: string, row: number): WireContent['certs'] {
  const rows = Array.from({ length: hexCount(certs.hex) }, (_, i) => ({ hex: hexAt(certs.hex, i), key: certs.key[i], notAfter: certs.not_after[i] }));
  rows.push({ hex: fp, key: row, notAfter: null });
  rows.sort((a, b) => (a.hex < b.hex ? -1 : 1));
  return { hex: rows.map((r) => r.hex).join(''), key: rows.map((r) => r.key), not_after: rows.map((r) => r.notAfter), apis: certs.apis };
}

test('a certificate in two shards is refused: at a start, at a reload (the previous set serves on), by the tools', async () => {
  const dir = join(t.dir, 'cert-twice');
  const wire = encodeContent(sampleContent());
  writeShardedBundle(dir, wire, 16);
  const manifest1 = readFileSync(join(dir, 'manifest.json'));
  const store = await BundleStore.createSharded(manifest1, dir, here(dir), buildSnapshot, { buildSharded: buildShardedSnapshot });
  // Shard 1 also holds shard 0's first certificate, bound to its own first key: each shard is well-formed, each digest is right.
  const { base, shards } = splitWire(wire, 16);
  const fp = hexAt(shards[0].certs.hex, 0);
  const owner = store.current().namesOf(fp).key;
  assert.ok(owner);
  shards[1] = { ...shards[1], certs: withCert(shards[1].certs, fp, 0) };
  const files = shards.map(serializeShard);
  const digests = files.map(documentDigest);
  writeFileSync(join(dir, 'shards', `${digests[1].slice(7)}.json`), files[1]);
  const manifest2 = serializeManifest({ ...base, shards: digests });
  const twice = new RegExp(`certificate ${fp} is in shard (1 and in shard 0|0 and in shard 1): it identifies one key`);

  const r = await store.reloadAsync(manifest2, dir);
  assert.match(r.status === 'failed' ? r.error.message : JSON.stringify(r), twice);
  assert.equal(store.current().namesOf(fp).key, owner, 'the previous set serves on');
  await assert.rejects(loadShardSet(manifest2, sha256(manifest2), here(dir), new Map()), twice);
  assert.throws(() => mergeShards(base, shards), twice);
});
