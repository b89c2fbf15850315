// URL bundles: conditional GETs with ETag against a real HTTP server on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchBundle, pollUrl } from '../runtime/poll-url.ts';
import { bundleOf, openApi, waitFor } from './helpers/ops-fixtures.ts';

/** Serves `current.bytes` with a strong ETag; records each request's If-None-Match and answer. */
async function bundleServer() {
  const state = {
    bytes: bundleOf([openApi('one', '/one/', 'http://127.0.0.1:1')]),
    failWith: 0,
    log: [] as Array<{ ifNoneMatch: string | null; status: number }>,
  };
  const etagOf = (b: Buffer) => `"${createHash('sha256').update(b).digest('hex').slice(0, 16)}"`;
  const server = createServer((req, res) => {
    const ifNoneMatch = (req.headers['if-none-match'] as string | undefined) ?? null;
    const etag = etagOf(state.bytes);
    const status = state.failWith || (ifNoneMatch === etag ? 304 : 200);
    state.log.push({ ifNoneMatch, status });
    if (status === 200) res.writeHead(200, { etag, 'content-type': 'application/json' }).end(state.bytes);
    else res.writeHead(status, { etag }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundle.json`;
  const close = () => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections()));
  return { state, url, close, etagOf };
}

test('fetchBundle: 200 with ETag, then 304 when If-None-Match matches, clear errors otherwise', async () => {
  const srv = await bundleServer();
  try {
    const first = await fetchBundle(srv.url, null, 2_000);
    assert.equal(first.status, 'modified');
    assert.ok(first.status === 'modified' && first.bytes.equals(srv.state.bytes));
    const etag = first.status === 'modified' ? first.etag : null;
    assert.equal(etag, srv.etagOf(srv.state.bytes));
    assert.deepEqual(await fetchBundle(srv.url, etag, 2_000), { status: 'not-modified' });
    srv.state.failWith = 500;
    await assert.rejects(fetchBundle(srv.url, etag, 2_000), /cannot fetch bundle from http:\/\/127\.0\.0\.1:\d+\/bundle\.json: HTTP 500/);
    await assert.rejects(fetchBundle('http://127.0.0.1:1/bundle.json', null, 2_000), /cannot fetch bundle from/);
  } finally {
    await srv.close();
  }
});

test('pollUrl takes new bundles, skips 304s, keeps going through failures', async () => {
  const srv = await bundleServer();
  const taken: Buffer[] = [];
  const errors: string[] = [];
  let notModified = 0;
  let accept = true;
  const first = await fetchBundle(srv.url, null, 2_000);
  assert.equal(first.status, 'modified');
  const poll = pollUrl(srv.url, {
    intervalMs: 40,
    etag: first.status === 'modified' ? first.etag : null,
    onBundle: (bytes) => (taken.push(bytes), accept),
    onNotModified: () => notModified++,
    onError: (err) => errors.push(err.message),
  });
  try {
    await waitFor('a 304 answer', () => notModified >= 2);
    assert.equal(taken.length, 0, 'an unchanged bundle is not downloaded again');
    assert.ok(srv.state.log.slice(1).every((r) => r.ifNoneMatch === srv.etagOf(srv.state.bytes)));

    srv.state.failWith = 503;
    await waitFor('a failed poll', () => errors.length >= 1);
    assert.match(errors[0], /HTTP 503/);
    srv.state.failWith = 0;

    // A bundle the caller refuses is fetched again on the next poll (its ETag is not kept).
    accept = false;
    srv.state.bytes = bundleOf([openApi('two', '/two/', 'http://127.0.0.1:2')]);
    await waitFor('the refused bundle offered twice', () => taken.length >= 2);
    accept = true;
    const offered = taken.length;
    await waitFor('the bundle taken', () => taken.length > offered);
    const before = taken.length;
    const notModifiedBefore = notModified;
    await waitFor('a 304 after the new bundle', () => notModified > notModifiedBefore + 1);
    assert.equal(taken.length, before, 'a taken bundle is not downloaded again');
    await poll.pollNow();
  } finally {
    poll.close();
    await srv.close();
  }
});

test('a 304 to a poll sent without If-None-Match is no answer: the poll fails (section 46)', async () => {
  // The serving bundle came without an ETag, so polls ask unconditionally. Before, a 304 (from the
  // server or whoever is on the path to an http:// URL) was "not modified": the store's last
  // reload error was cleared, /health said ok, though nothing had confirmed the bundle serving.
  const srv = await bundleServer();
  const errors: string[] = [];
  let notModified = 0;
  srv.state.failWith = 304;
  const poll = pollUrl(srv.url, {
    intervalMs: 40,
    etag: null,
    onBundle: () => true,
    onNotModified: () => notModified++,
    onError: (err) => errors.push(err.message),
  });
  try {
    await waitFor('a poll answered', () => errors.length + notModified >= 1);
    assert.equal(notModified, 0);
    assert.match(errors[0], /cannot fetch bundle from http:\/\/127\.0\.0\.1:\d+\/bundle\.json: HTTP 304 to a request without If-None-Match/);
    assert.equal(srv.state.log[0].ifNoneMatch, null);
  } finally {
    poll.close();
    await srv.close();
  }
});
