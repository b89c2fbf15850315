import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serializeBundle } from '../bundle/write.ts';
import { BundleError } from '../bundle/bundle-error.ts';
import { loadBundle } from '../bundle/read.ts';
import type { BundleContent } from '../bundle/types.ts';
import { createHash } from 'node:crypto';
import { buildIndex } from '../compiler/emit.ts';
import { apiWithDefaults, bundleContent, emptyBundleContent, keyWithDefaults } from './helpers/bundle-builder.ts';

const empty = emptyBundleContent();

test('serializeBundle is deterministic and loadBundle verifies it', () => {
  const a = serializeBundle(empty);
  const b = serializeBundle(JSON.parse(JSON.stringify(empty)));
  assert.deepEqual(a, b);
  const loaded = loadBundle(a);
  assert.match(loaded.digest, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(loaded.content, empty);
});

test('loadBundle refuses truncated, edited and foreign input', () => {
  const bytes = serializeBundle(empty);
  assert.throws(() => loadBundle(bytes.subarray(0, bytes.length - 5)), BundleError);
  const edited = Buffer.from(bytes.toString('utf8').replace('"apis":{}', '"apis": {}'));
  assert.throws(() => loadBundle(edited), /digest mismatch/);
  assert.throws(() => loadBundle('{"format":"other/v9"}'), /unsupported bundle format/);
  assert.throws(() => loadBundle('hello'), /not an mtlsgate bundle/);
  assert.throws(() => loadBundle(''), /empty/);
});

/** `n` keys on certificates, applying one of 10 policies over 20 APIs (as a compiled config shares them). */
function manyKeys(n: number, order: 'up' | 'down'): BundleContent {
  const apis = Array.from({ length: 20 }, (_, a) => apiWithDefaults(`api-${a}`, { use_certificate: true }));
  const sessions = Array.from({ length: 10 }, (_, p) => ({
    policies: [`policy-${p}`],
    access_rights: Object.fromEntries([p, p + 10].map((a) => [`api-${a}`, { allowed_urls: p % 2 ? null : [{ url: '^/v1/', methods: ['GET'] }] }])),
    rate: { rate: 100 + p, per: 1 },
    quota: { max: 10_000, renewal: 3600 },
    // A policy asking to deny on a limiter outage: present on its keys only.
    ...(p === 3 ? { on_limiter_error: 'deny' as const } : {}),
  }));
  const ids = Array.from({ length: n }, (_, i) => i);
  if (order === 'down') ids.reverse();
  const keys = ids.map((i) =>
    keyWithDefaults(`key-${String(i).padStart(6, '0')}`, {
      ...structuredClone(sessions[i % 10]),
      certificates: [createHash('sha256').update(`cert ${i}`).digest('hex')],
      expires: i % 100 === 0 ? '2030-01-01T00:00:00.000Z' : null,
      is_inactive: i % 250 === 0,
      token_sha256: i % 3 === 0 ? createHash('sha256').update(`token ${i}`).digest('hex') : null,
    }),
  );
  const content = bundleContent([], []);
  content.apis = Object.fromEntries(apis.map((a) => [a.id, a]));
  content.keys = Object.fromEntries(keys.map((k) => [k.id, k]));
  content.index = buildIndex(apis, keys);
  content.not_after = Object.fromEntries(keys.map((k) => [k.certificates[0], 1_900_000_000 + Number(k.id.slice(4))]));
  return content;
}

test('a bundle of many keys: compact (shared sessions once), deterministic, and read back as it was written', () => {
  const content = manyKeys(3000, 'up');
  const bytes = serializeBundle(content);
  // Built in another order, with every session object a separate copy: the same bytes.
  assert.deepEqual(serializeBundle(manyKeys(3000, 'down')), bytes);
  assert.deepEqual(loadBundle(bytes).content, content);
  // A key costs its id (~10 bytes), a session number, its fingerprint (64) and notAfter (10),
  // not its access rights and limits again.
  const perKey = bytes.length / 3000;
  assert.ok(perKey < 150, `${perKey.toFixed(0)} bytes per key`);
  const wire = JSON.parse(bytes.toString('utf8').slice(bytes.indexOf('"content":') + 10, -2));
  assert.equal(wire.sessions.length, 10);
});
