import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serializeBundle } from '../bundle/write.ts';
import { loadBundle, BundleError } from '../bundle/read.ts';
import type { BundleContent } from '../bundle/types.ts';

const empty: BundleContent = {
  apis: {},
  keys: {},
  cas: {},
  not_after: {},
  revocation: { crl_urls: [], crls: {}, denied: [] },
  index: { certs: {}, tokens: {}, matches: {}, routes: {} },
};

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
