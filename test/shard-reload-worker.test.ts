// The reload worker of a sharded bundle at start-up (runtime/bundle-worker.ts, runtime/shard-warm.ts):
// what makes a change made right after start wait. Its warm-up gives way to a reload that is
// waiting, and its code does not load the HTTP client (undici, most of the worker's code) unless
// a shard is fetched from a URL. The latency itself is the shards bench's (bench/first-change.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { encodeContent } from '../bundle/wire.ts';
import { writeShardedBundle } from '../compiler/write-sharded.ts';
import { WARM_PASSES, warmShardLoading } from '../runtime/shard-warm.ts';
import { bundleContent, sha256Hex } from './helpers/bundle-builder.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('shard-reload-worker');
after(() => t.cleanup());

function writeBundle(dir: string): { manifest: Buffer; bytesSha256: string } {
  const keys = Array.from({ length: 200 }, (_, i) => ({
    id: `key-${i}`,
    certificates: [sha256Hex(`cert-${i}`)],
    access_rights: { pay: { allowed_urls: null } },
  }));
  writeShardedBundle(
    dir,
    encodeContent(bundleContent([{ id: 'pay', listen_path: '/pay/', target_url: 'http://127.0.0.1:9101', use_certificate: true }], keys)),
    4,
  );
  const manifest = readFileSync(join(dir, 'manifest.json'));
  return { manifest, bytesSha256: createHash('sha256').update(manifest).digest('hex') };
}

test('the warm-up asks before every pass whether a reload waits, and stops at once when one does', async () => {
  const dir = join(t.dir, 'warm');
  const { manifest, bytesSha256 } = writeBundle(dir);
  const location = { kind: 'file' as const, dir };
  assert.equal(await warmShardLoading(manifest, bytesSha256, location, () => false), WARM_PASSES, 'nothing waits: every pass');
  assert.equal(await warmShardLoading(manifest, bytesSha256, location, () => true), 0, 'a reload waits before the first pass');
  let asked = 0;
  const afterOne = () => ++asked > 1;
  assert.equal(await warmShardLoading(manifest, bytesSha256, location, afterOne), 1, 'a reload arrives during the first pass');
  assert.equal(asked, 2);
});

test("the reload worker's code does not load the HTTP client (undici) at start: only a shard fetched from a URL needs it", async () => {
  // The worker entry from source, as runtime/bundle-worker-client.ts starts it in tests; then a
  // look at the global undici's first load sets (lib/global.js: the global dispatcher).
  const entry = new URL('../runtime/bundle-worker.ts', import.meta.url).href;
  const loader = new URL('../scripts/ts-loader.mjs', import.meta.url).href;
  const code = `import(${JSON.stringify(loader)}).then(async () => {
    await import(${JSON.stringify(entry)});
    const { parentPort } = await import('node:worker_threads');
    parentPort.postMessage(Object.getOwnPropertySymbols(globalThis).map(String).filter((s) => s.includes('undici')));
  })`;
  const worker = new Worker(code, { eval: true, execArgv: [] });
  try {
    const seen = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.deepEqual(seen, []);
  } finally {
    await worker.terminate();
  }
});
