// Request bodies that trickle (docs/security.md section 24): a body slower on average than the
// minimum rate (here 1000 bytes/s after a 2 s grace period; the default is Kestrel's 240 after
// 5 s) is cut with 408 client.body_too_slow and its upstream request aborted, on both upstream
// paths (the undici pool, a proxy.http2 upstream), for HTTP/1.1 and HTTP/2 clients. One that
// stops entirely still gets the idle timeout (here 1.5 s); a slow upload above the rate
// passes. Real clients over TLS: a raw TLS socket writing HTTP/1.1, node:http2.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { serveConfig } from '../cli/commands/serve.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { makePki, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { recorder, resetter, type Seen, startUpstreams, upload } from './helpers/slow-uploads.ts';

const RATE = 1_000;
const GRACE_MS = 2_000;
const IDLE_MS = 1_500;
/** The body watch's longest tick. */
const TICK_MS = 1_000;
/** Room for a loaded machine (2 cores shared by several test runs). */
const SLACK_MS = 2_000;

describe('slow request bodies: the minimum body rate and the idle timeout', () => {
  let pki: TestPki;
  let cleanup: () => void;
  const seen: Seen[] = [];
  let upstreams: Awaited<ReturnType<typeof startUpstreams>>;
  /** Upstreams that read the first chunk of a body and then nothing for a minute. */
  let holding: Awaited<ReturnType<typeof startUpstreams>>;
  /** Upstreams that read the first chunk of a body and fail the request half a second later. */
  let failing: Awaited<ReturnType<typeof startUpstreams>>;
  let gw: TestGateway;

  before(async () => {
    ({ pki, cleanup } = await makePki());
    upstreams = await startUpstreams(recorder(seen));
    holding = await startUpstreams(recorder([], 60_000));
    failing = await startUpstreams(resetter([], 500));
    const both = (id: string, u: typeof upstreams) => [
      { id: `${id}-pool`, listen_path: `/${id}-pool/`, strip_listen_path: false, target_url: u.h1Url, use_keyless: true },
      { id: `${id}-h2`, listen_path: `/${id}-h2/`, strip_listen_path: false, target_url: u.h2cUrl, upstream_http2: true, use_keyless: true },
    ];
    gw = await startTestGateway(
      pki,
      buildBundle([
        { id: 'pool', listen_path: '/pool/', strip_listen_path: false, target_url: upstreams.h1Url, use_keyless: true },
        { id: 'h2', listen_path: '/h2/', strip_listen_path: false, target_url: upstreams.h2cUrl, upstream_http2: true, use_keyless: true },
        ...both('held', holding),
        ...both('fail', failing),
      ]),
      { clientIdleTimeoutMs: IDLE_MS, minBodyRate: { bytesPerSecond: RATE, graceMs: GRACE_MS } },
    );
  });
  after(async () => {
    await gw.close();
    for (const u of [upstreams, holding, failing]) u.close();
    cleanup();
  });

  const seenAt = (path: string) => waitFor(`the upstream to see ${path}`, () => seen.find((s) => s.path === path), 15_000);
  const recordOf = (path: string) => waitFor(`the log record of ${path}`, () => gw.records.find((r) => r.path === path), 15_000);

  it('bodies trickling below the rate get 408 client.body_too_slow within the grace period and a tick; their upstream requests are aborted (HTTP/1.1 and HTTP/2, both upstream paths)', async () => {
    // One byte every 100 ms: 10 bytes/s, never idle for 1.5 s. Before: it went on for as long as the client liked.
    const cases = ['/pool/h1-trickle', '/pool/h2-trickle', '/h2/h1-trickle', '/h2/h2-trickle'];
    const uploads = cases.map((path) => upload(gw.port, pki, path, path.endsWith('h2-trickle'), { total: 100_000, chunk: 1, everyMs: 100 }));
    try {
      for (const [i, path] of cases.entries()) {
        const u = uploads[i];
        await waitFor(`an answer to ${path}`, () => u.status !== null, GRACE_MS + TICK_MS + SLACK_MS + 10_000);
        assert.equal(u.status, 408, `${path}: ${u.body}`);
        assert.match(u.body, /client\.body_too_slow/, path);
        assert.ok(u.answeredAfter >= GRACE_MS, `${path}: answered after ${u.answeredAfter} ms, before the grace period`);
        assert.ok(u.answeredAfter < GRACE_MS + TICK_MS + SLACK_MS, `${path}: answered after ${u.answeredAfter} ms`);
        const s = await seenAt(path);
        await waitFor(`the upstream request of ${path} to be aborted`, () => s.abandoned, 10_000);
        assert.equal(s.ended, false, path);
        const record = await recordOf(path);
        assert.deepEqual([record.status, record.code], [408, 'client.body_too_slow'], path);
      }
    } finally {
      for (const u of uploads) u.stop();
    }
  });

  it('a body the gateway still holds unread when it answers (the idle timeout while the upstream reads nothing; the upstream failing mid-body) ends the exchange at once: its record is written, for HTTP/1.1 and HTTP/2 clients on both upstream paths', async () => {
    // 200 KB at once, then nothing: the upstream takes the first chunk only, so the rest backs
    // up in the gateway. Before: an HTTP/2 client's stream stayed open after the 408 or 502,
    // its unread body paused, and the exchange went unlogged until the client's session ended.
    const cases = [
      ['/held-pool/h1', 408],
      ['/held-pool/h2', 408],
      ['/held-h2/h1', 408],
      ['/held-h2/h2', 408],
      ['/fail-pool/h1', 502],
      ['/fail-pool/h2', 502],
      ['/fail-h2/h1', 502],
      ['/fail-h2/h2', 502],
    ] as const;
    const uploads = cases.map(([path]) =>
      upload(gw.port, pki, path, path.endsWith('h2'), { total: 1_000_000, chunk: 1, everyMs: 1_000, burst: 200_000, stallAfter: 200_000 }),
    );
    try {
      for (const [i, [path, status]] of cases.entries()) {
        const u = uploads[i];
        await waitFor(`an answer to ${path}`, () => u.status !== null, IDLE_MS + TICK_MS + SLACK_MS + 10_000);
        assert.equal(u.status, status, `${path}: ${u.body}`);
        // Seconds after the answer, the client still connected and silent: only the gateway can end the exchange.
        const record = await waitFor(`the log record of ${path}`, () => gw.records.find((r) => r.path === path), 2 * SLACK_MS);
        assert.equal(record.status, status, path);
      }
    } finally {
      for (const u of uploads) u.stop();
    }
  });

  it('a slow upload above the rate passes, for several seconds, while a trickle beside it is refused', async () => {
    // 250 bytes every 100 ms: 2500 bytes/s, 10,000 bytes in about 4 s.
    const total = 10_000;
    const slow = [
      ['/pool/h1-slow', false],
      ['/pool/h2-slow', true],
      ['/h2/h1-slow', false],
      ['/h2/h2-slow', true],
    ] as const;
    const uploads = slow.map(([path, http2]) => upload(gw.port, pki, path, http2, { total, chunk: 250, everyMs: 100 }));
    const trickle = upload(gw.port, pki, '/pool/beside', false, { total: 100_000, chunk: 2, everyMs: 100 });
    try {
      await waitFor('the trickle to be refused', () => trickle.status !== null, 20_000);
      assert.equal(trickle.status, 408);
      for (const [i, [path]] of slow.entries()) {
        const u = uploads[i];
        await waitFor(`an answer to ${path}`, () => u.status !== null, 30_000);
        assert.equal(u.status, 200, `${path}: ${u.body}`);
        await waitFor(`all of the answer to ${path}`, () => u.body.includes(`got ${total}`), 5_000);
        assert.ok(u.answeredAfter > GRACE_MS + TICK_MS, `${path} took ${u.answeredAfter} ms: not slow enough to test anything`);
        const record = await recordOf(path);
        assert.deepEqual([record.status, record.code], [200, null], path);
      }
    } finally {
      for (const u of [...uploads, trickle]) u.stop();
    }
  });

  it('a body that stops entirely gets the idle timeout, not the rate, on both upstream paths (HTTP/1.1 and HTTP/2)', async () => {
    // 5000 bytes at once (above the rate until 5 s), then nothing: the timer that now watches
    // the rate still cuts a stalled body at the idle timeout, with the idle timeout's code.
    const cases = ['/pool/h1-stop', '/pool/h2-stop', '/h2/h1-stop', '/h2/h2-stop'];
    const uploads = cases.map((path) => upload(gw.port, pki, path, path.endsWith('h2-stop'), { total: 100_000, chunk: 5_000, everyMs: 10, stallAfter: 5_000 }));
    try {
      for (const [i, path] of cases.entries()) {
        const u = uploads[i];
        await waitFor(`an answer to ${path}`, () => u.status !== null, IDLE_MS + TICK_MS + SLACK_MS + 10_000);
        assert.equal(u.status, 408, `${path}: ${u.body}`);
        assert.match(u.body, /client\.idle_timeout/, path);
        assert.ok(u.answeredAfter < IDLE_MS + TICK_MS + SLACK_MS, `${path}: answered after ${u.answeredAfter} ms`);
        const s = await seenAt(path);
        await waitFor(`the upstream request of ${path} to be aborted`, () => s.abandoned, 10_000);
        assert.equal((await recordOf(path)).code, 'client.idle_timeout', path);
      }
    } finally {
      for (const u of uploads) u.stop();
    }
  });
});

describe('serve flags', () => {
  const base = ['--bundle', 'b.json', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'];
  it('--min-body-rate BYTES|off and --min-body-rate-grace DURATION (or their variables); bad values name the flag', () => {
    assert.deepEqual(serveConfig(base, {}).config.minBodyRate, { bytesPerSecond: 240, graceMs: 5_000 });
    assert.deepEqual(serveConfig([...base, '--min-body-rate', '1000', '--min-body-rate-grace', '2s'], {}).config.minBodyRate, {
      bytesPerSecond: 1000,
      graceMs: 2_000,
    });
    assert.equal(serveConfig([...base, '--min-body-rate', 'off'], {}).config.minBodyRate, null);
    assert.deepEqual(serveConfig(base, { MTLSGATE_MIN_BODY_RATE: '500', MTLSGATE_MIN_BODY_RATE_GRACE: '10s' }).config.minBodyRate, {
      bytesPerSecond: 500,
      graceMs: 10_000,
    });
    assert.throws(
      () => serveConfig([...base, '--min-body-rate', '1k'], {}),
      /--min-body-rate must be a number of bytes per second \(e\.g\. 240\) or off, not "1k"/,
    );
    assert.throws(() => serveConfig([...base, '--min-body-rate', '0'], {}), /--min-body-rate\b.*"0"/);
    assert.throws(() => serveConfig(base, { MTLSGATE_MIN_BODY_RATE_GRACE: 'soon' }), /MTLSGATE_MIN_BODY_RATE_GRACE\b.*"soon"/);
  });
});
