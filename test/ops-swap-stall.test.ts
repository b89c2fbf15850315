// Big bundles reload through a worker thread (runtime/bundle-worker*.ts) so the event loop keeps
// serving: the compact snapshot answers every lookup as a parsed one does, refusals carry the
// messages of an in-thread reload, and the single-file build's worker (dist/bundle-worker.mjs)
// reloads a served bundle. Functional checks only (the stall itself is measured in bench/).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from '../runtime/bundle-worker-client.ts';
import { loadBundle } from '../bundle/read.ts';
import { serializeBundle } from '../bundle/write.ts';
import type { BundleContent, BundleKey } from '../bundle/types.ts';
import { buildCompactSnapshot, buildSnapshot, type Snapshot } from '../runtime/snapshot.ts';
import { BundleStore, type StoreOptions } from '../runtime/store.ts';
import { bundleContent, sha256Hex, type KeySpec } from './helpers/bundle-builder.ts';
import { bundleOf, openApi, tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { spawnDemoGateway } from './helpers/demo-gateway.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

const t = tempDir('swap-stall');
after(() => t.cleanup());

const KEYS = 12000;
const certOf = (i: number) => sha256Hex(`cert-${i}`);
const tokenOf = (i: number) => sha256Hex(`token-${i}`);
/** Pinned by the API, identifies no key. */
const pinnedOnly = sha256Hex('pinned-only');
/**
 * Ids that test ordering and lookups: integer-like, every punctuation an id may hold. (The one
 * prototype name an id can be, 'constructor', is asserted missing below; ids the compiler never
 * writes, non-ASCII or upper-case ones, are refused by the bundle's shape check since session 18:
 * test/security-attacker-certs.)
 */
const oddIds = ['42', '0.9_z-'];
/** Their tokens: not tokenOf(i), which for '42' would be key-00042's token (a duplicate the compiler refuses). */
const oddTokenOf = (id: string) => sha256Hex(`odd-token-${id}`);

function bigContent(inactive: string | null = null): BundleContent {
  const keys: KeySpec[] = [];
  for (let i = 0; i < KEYS; i++) {
    keys.push({
      id: `key-${String(i).padStart(5, '0')}`,
      certificates: i % 3 === 2 ? [] : [certOf(i)],
      token_sha256: i % 2 === 0 ? tokenOf(i) : null,
      access_rights: { api: { allowed_urls: i % 4 === 0 ? [{ url: `^/k${i % 7}/`, methods: ['GET'] }] : null } },
      rate: i % 5 === 0 ? { rate: 10, per: 1 } : null,
      expires: i % 6 === 0 ? '2999-01-01T00:00:00.000Z' : null,
      policies: ['p'],
    });
  }
  for (const id of oddIds) keys.push({ id, token_sha256: oddTokenOf(id), access_rights: { api: { allowed_urls: null } } });
  const content = bundleContent(
    [{ id: 'api', listen_path: '/api/', target_url: 'http://127.0.0.1:1/', use_certificate: true, client_certificates: [certOf(0), pinnedOnly] }],
    keys,
  );
  if (inactive !== null) content.keys[inactive] = { ...content.keys[inactive], is_inactive: true };
  return content;
}

const small = bundleOf([openApi('one', '/one/', 'http://127.0.0.1:1')]);
const big = serializeBundle(bigContent());

function store(options: StoreOptions<Snapshot> = {}) {
  let compactBuilds = 0;
  const s = BundleStore.create(small, 'b.json', buildSnapshot, {
    buildCompact: (c) => (compactBuilds++, buildCompactSnapshot(c)),
    ...options,
  });
  return { store: s, compactBuilds: () => compactBuilds };
}

const defOf = (s: Snapshot, lookup: (s: Snapshot) => { def: BundleKey } | undefined) => lookup(s)?.def;

test('a bundle over 1 MiB reloads through the worker; its snapshot answers as a parsed one does', async () => {
  assert.ok(big.length > 1 << 20, `the test bundle is ${big.length} bytes, under the worker threshold`);
  const { store: s, compactBuilds } = store();
  const r = await s.reloadAsync(big, 'b.json');
  assert.equal(r.status, 'loaded');
  assert.equal(compactBuilds(), 1, 'verified in the worker');
  assert.equal(r.status === 'loaded' && r.keys, KEYS + oddIds.length);
  assert.equal(s.info().digest, loadBundle(big).digest);
  const compact = s.current();
  const parsed = buildSnapshot(loadBundle(big));
  for (const i of [0, 1, 2, 3, 4, 1234, KEYS - 1]) {
    const id = `key-${String(i).padStart(5, '0')}`;
    assert.deepEqual(
      defOf(compact, (x) => x.key(id)),
      defOf(parsed, (x) => x.key(id)),
      id,
    );
    assert.deepEqual(
      defOf(compact, (x) => x.keyByCert(certOf(i))),
      defOf(parsed, (x) => x.keyByCert(certOf(i))),
      `certificate of ${id}`,
    );
    assert.deepEqual(
      defOf(compact, (x) => x.keyByToken(tokenOf(i))),
      defOf(parsed, (x) => x.keyByToken(tokenOf(i))),
      `token of ${id}`,
    );
  }
  for (const id of oddIds) {
    assert.equal(compact.key(id)?.id, id);
    assert.equal(compact.keyByToken(oddTokenOf(id))?.id, id);
  }
  const limited = compact.key('key-00000')!;
  assert.equal(limited.limited, true);
  assert.equal(limited.expiresAt, Date.parse('2999-01-01T00:00:00.000Z'));
  const pattern = limited.rights.get('api')![0].pattern;
  assert.deepEqual([pattern.test('/k0/x'), pattern.test('/k1/x')], [true, false]);
  assert.equal(compact.key('key-00000'), limited, 'a key is prepared once');
  for (const missing of ['', 'key-99999', 'constructor', 'key-0000']) assert.equal(compact.key(missing), undefined, missing);
  assert.equal(compact.keyByCert(pinnedOnly), undefined, 'a pinned certificate without a key');
  assert.equal(compact.keyByCert(certOf(2)), undefined);
  assert.equal(compact.keyByCert('abc'), undefined);
  assert.equal(compact.keyByToken(tokenOf(1)), undefined);
  assert.deepEqual(compact.bundle, loadBundle(big), 'the whole bundle, when asked for');
  assert.equal(compact.routes.anyHost.get('/api/')?.id, 'api');

  assert.equal((await s.reloadAsync(Buffer.from(big), 'b.json')).status, 'unchanged');
  assert.equal(s.current(), compact);
  const back = await s.reloadAsync(small, 'b.json');
  assert.equal(back.status, 'loaded', 'a small bundle reloads on the main thread');
  assert.equal(compactBuilds(), 1);
});

test('through the worker, a refused bundle leaves the old one serving, with the message of an in-thread reload', async () => {
  const content = bigContent();
  const badKey = {
    ...content,
    keys: { ...content.keys, 'key-00004': { ...content.keys['key-00004'], access_rights: { api: { allowed_urls: [{ url: '^/(unclosed', methods: [] }] } } } },
  };
  const badKeyAndApi = { ...badKey, apis: { api: { ...badKey.apis.api, target_url: 'ftp://x/' } } };
  const badExpiry = { ...content, keys: { ...content.keys, 'key-00006': { ...content.keys['key-00006'], expires: 'soon' } } };
  const cases: Array<[string, Buffer]> = [
    ['truncated', big.subarray(0, big.length - 40)],
    ['edited', Buffer.from(big.toString().replace('"key-00001"', '"key-0000x"'))],
    ['bad pattern', serializeBundle(badKey)],
    ['bad pattern and bad target (the API is reported first)', serializeBundle(badKeyAndApi)],
    ['bad expiry', serializeBundle(badExpiry)],
    ['not a bundle', Buffer.from('nope')],
  ];
  const { store: viaWorker, compactBuilds } = store({ workerMinBytes: 0 });
  const inThread = BundleStore.create(small, 'b.json', buildSnapshot);
  const serving = viaWorker.current();
  // With workerMinBytes 0 the small initial bundle is served from its columns too.
  const initialBuilds = compactBuilds();
  for (const [what, bytes] of cases) {
    const r = await viaWorker.reloadAsync(bytes, 'b.json');
    const expected = inThread.reload(bytes, 'b.json');
    assert.equal(r.status, 'failed', what);
    assert.equal(expected.status, 'failed', what);
    assert.equal(r.status === 'failed' && r.error.message, expected.status === 'failed' && expected.error.message, what);
    assert.equal(viaWorker.lastReloadError()?.source, 'b.json');
    assert.equal(viaWorker.current(), serving, what);
  }
  assert.equal(compactBuilds() - initialBuilds, 3, 'the bad keys are reported after the APIs are built, as in-thread');
  assert.equal((await viaWorker.reloadAsync(big, 'b.json')).status, 'loaded');
  assert.equal(viaWorker.lastReloadError(), null);
});

test('reloads asked for together swap in order', async () => {
  const { store: s } = store({ workerMinBytes: 0 });
  const second = serializeBundle(bigContent('key-00001'));
  const results = await Promise.all([s.reloadAsync(big, 'b.json'), s.reloadAsync(second, 'b.json'), s.reloadAsync(second, 'b.json')]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['loaded', 'loaded', 'unchanged'],
  );
  assert.equal(s.info().digest, loadBundle(second).digest);
  assert.equal(s.current().key('key-00001')?.def.is_inactive, true);
});

test('dist build: dist/bundle-worker.mjs verifies a bundle, and serve reloads a big one', async () => {
  // The worker entry itself (the store falls back to verifying in-thread if it cannot start one).
  const worker = new Worker(join(import.meta.dirname, '..', 'dist', 'bundle-worker.mjs'));
  try {
    const reply = new Promise<WorkerReply>((resolve, reject) => (worker.once('message', resolve), worker.once('error', reject)));
    worker.postMessage({ kind: 'bundle', bytes: new Uint8Array(big), servingSha256: '' } satisfies WorkerRequest);
    const verdict = await reply;
    assert.equal(verdict.status, 'verified');
    assert.equal(verdict.status === 'verified' && buildCompactSnapshot(verdict.bundle).key('0.9_z-')?.id, '0.9_z-');
  } finally {
    await worker.terminate();
  }

  const pki = await demoPki(t.dir);
  const file = join(t.dir, 'big.json');
  writeFileSync(file, big);
  const s = spawnDemoGateway(file, pki, { admin: 'loopback', extra: ['--log-level', 'info'] });
  try {
    await s.serving();
    const next = serializeBundle(bigContent('key-00003'));
    writeFileSync(file + '.tmp', next);
    renameSync(file + '.tmp', file);
    s.child.kill('SIGHUP');
    const digest = loadBundle(next).digest;
    const reloaded = await waitFor('bundle reloaded', () => s.lines().find((l) => l.msg === 'bundle reloaded' && l.digest === digest), 60_000, 50);
    assert.equal(reloaded.keys, KEYS + oddIds.length);
    assert.deepEqual(
      s.lines().filter((l) => l.msg === 'bundle refused'),
      [],
    );
  } finally {
    s.kill();
    await s.exited;
  }
});
