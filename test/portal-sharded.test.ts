// The portal (and approve) writing into a sharded bundle (`compile --shards`): a new key
// rewrites its own shard and the manifest, keeps the shard count, signs the manifest when given
// a key, and the directory then says exactly what a full compile says.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readWireAt } from '../bundle/read-sharded.ts';
import { verifyBundleSignature } from '../bundle/sign.ts';
import { compileDir } from '../compiler/index.ts';
import { writeShardedBundle } from '../compiler/write-sharded.ts';
import { compilerFor, writeBundle } from '../portal/compile.ts';
import { syncBundle } from '../portal/issue-key.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('portal-sharded');
after(() => t.cleanup());

const api = (target: string) => `kind: api\nid: tok\nproxy:\n  listen_path: /tok/\n  target_url: ${target}\n`;
const key = (i: number) => `kind: key\nid: key-${i}\ntoken_sha256: "${createHash('sha256').update(`token-${i}`).digest('hex')}"\naccess_rights:\n  tok: {}\n`;

function config(dir: string, keys: number): string {
  const c = join(dir, 'config');
  mkdirSync(c, { recursive: true });
  writeFileSync(join(c, 'api.yaml'), api('http://127.0.0.1:9101'));
  for (let i = 0; i < keys; i++) writeFileSync(join(c, `k${i}.yaml`), key(i));
  return c;
}

/** The shard digests the manifest in `out` names. */
function manifestShards(out: string): string[] {
  const m = readFileSync(join(out, 'manifest.json'), 'utf8');
  return JSON.parse(m.slice(m.indexOf('"content":') + 10, -2)).shards;
}

test('a new key written into a sharded bundle rewrites its shard and the manifest; the set equals a full compile', async () => {
  const dir = join(t.dir, 'plain');
  const cfg = config(dir, 60);
  const out = join(dir, 'bundle');
  const first = await compileDir(cfg);
  writeShardedBundle(out, first.wire!, 8);
  const compile = compilerFor({ live: true });
  await syncBundle(cfg, out, compile);
  const before = new Set(readdirSync(join(out, 'shards')));
  writeFileSync(join(cfg, 'k-new.yaml'), key(1000));
  const compiled = await compile(cfg);
  assert.equal(compiled.errorCount, 0);
  await writeBundle(out, compiled);
  const added = readdirSync(join(out, 'shards')).filter((f) => !before.has(f));
  assert.equal(added.length, 1, 'one shard file written');
  const full = await compileDir(cfg);
  assert.deepEqual(readWireAt(out).wire, full.wire, 'the directory says what a full compile says');
  assert.equal(manifestShards(out).length, 8, 'the shard count is kept');
});

test('with --sign the portal signs the manifest it writes', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const dir = join(t.dir, 'signed');
  const cfg = config(dir, 10);
  const out = join(dir, 'bundle');
  writeShardedBundle(out, (await compileDir(cfg)).wire!, 4, privateKey);
  const compile = compilerFor({ live: true, signingKey: privateKey });
  writeFileSync(join(cfg, 'k-new.yaml'), key(2000));
  await writeBundle(out, await compile(cfg));
  assert.doesNotThrow(() => verifyBundleSignature(readFileSync(join(out, 'manifest.json')), publicKey));
  assert.ok(readWireAt(out).wire.keys.ids.includes('key-2000'));
});

test('writing the same directory again serializes only changed shards, yet every file holds exactly what a fresh write holds', async () => {
  const dir = join(t.dir, 'memo');
  const cfg = config(dir, 40);
  const out = join(dir, 'bundle');
  const fresh = join(dir, 'fresh');
  const compile = compilerFor({ live: true });
  writeShardedBundle(out, (await compile(cfg)).wire!, 6);
  const shardBytes = (d: string) => new Map(readdirSync(join(d, 'shards')).map((f) => [f, readFileSync(join(d, 'shards', f))]));
  for (let round = 0; round < 3; round++) {
    writeFileSync(join(cfg, `k-memo-${round}.yaml`), key(3000 + round));
    const compiled = await compile(cfg);
    // A shard file tampered with on disk (same name, other bytes) is written again, never trusted.
    const victim = manifestShards(out)[round];
    const victimPath = join(out, 'shards', `${victim.slice('sha256:'.length)}.json`);
    writeFileSync(victimPath, '{"tampered":true}');
    writeShardedBundle(out, compiled.wire!, 6);
    // A process with no memory of earlier writes (the other directory) makes the same files.
    const reference = writeShardedBundle(join(fresh, String(round)), (await compileDir(cfg)).wire!, 6);
    assert.deepEqual(readFileSync(join(out, 'manifest.json')), reference.manifest, `round ${round}: manifest bytes`);
    const written = shardBytes(join(fresh, String(round)));
    const kept = shardBytes(out);
    for (const [name, bytes] of written) assert.deepEqual(kept.get(name), bytes, `round ${round}: shard ${name}`);
    assert.deepEqual(readWireAt(out).wire, (await compileDir(cfg)).wire, `round ${round}: the set equals a full compile`);
  }
});
