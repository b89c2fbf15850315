import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BundleStore } from '../runtime/store.ts';
import { loadBundle } from '../bundle/read.ts';
import { BUNDLE_FORMAT, type Bundle } from '../bundle/types.ts';
import { bundleOf, openApi } from './helpers/ops-fixtures.ts';

const first = bundleOf([openApi('one', '/one/', 'http://127.0.0.1:1')]);
const second = bundleOf([openApi('one', '/one/', 'http://127.0.0.1:1'), openApi('two', '/two/', 'http://127.0.0.1:2')]);
const identity = (b: Bundle) => b;

test('a reload swaps the snapshot in one step; a holder of the old one keeps it', () => {
  const store = BundleStore.create(first, 'a.json', identity);
  const held = store.current();
  const r = store.reload(second, 'a.json');
  assert.equal(r.status, 'loaded');
  assert.equal(r.status === 'loaded' && r.previousDigest, loadBundle(first).digest);
  assert.deepEqual(Object.keys(store.current().content.apis), ['one', 'two']);
  assert.deepEqual(Object.keys(held.content.apis), ['one'], 'the snapshot a request started with does not change under it');
  assert.equal(store.info().apis, 2);
  assert.equal(store.lastReloadError(), null);
});

test('identical bytes are a no-op', () => {
  let builds = 0;
  const store = BundleStore.create(first, 'a.json', (b) => (builds++, b));
  const before = store.current();
  assert.equal(store.reload(Buffer.from(first), 'a.json').status, 'unchanged');
  assert.equal(builds, 1);
  assert.equal(store.current(), before);
});

test('corrupt, truncated and unbuildable bundles are refused and the old one keeps serving', () => {
  const store = BundleStore.create(first, 'a.json', (b) => {
    if (b.content.apis.bad) throw new Error('snapshot: API bad has an invalid regex');
    return b;
  });
  const serving = store.current();
  const cases: Array<[Buffer, RegExp]> = [
    [second.subarray(0, second.length - 40), /truncated|digest mismatch/],
    [Buffer.from(`{"format":"${BUNDLE_FORMAT}",garbage`), /malformed/],
    [Buffer.from(second.toString().replace('"two"', '"twx"')), /digest mismatch/],
    [bundleOf([openApi('bad', '/bad/', 'http://127.0.0.1:3')]), /invalid regex/],
  ];
  for (const [bytes, message] of cases) {
    const r = store.reload(bytes, 'a.json');
    assert.equal(r.status, 'failed');
    assert.match(store.lastReloadError()!.message, message);
    assert.equal(store.lastReloadError()!.source, 'a.json');
    assert.ok(!Number.isNaN(Date.parse(store.lastReloadError()!.at)));
    assert.equal(store.current(), serving);
  }
  assert.equal(store.reload(second, 'a.json').status, 'loaded');
  assert.equal(store.lastReloadError(), null, 'a good bundle clears the error');
});

test('the first load throws: there is nothing to fall back to', () => {
  assert.throws(() => BundleStore.create(Buffer.from('nope'), 'a.json', identity), /not an mtlsgate bundle/);
});
