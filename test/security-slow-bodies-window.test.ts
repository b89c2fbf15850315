// The minimum body rate is a rate over a sliding window (docs/security.md section 24): a burst
// at the start buys one window (the grace period, here 2 s) at most, after which a trickle below
// the rate is cut with 408 client.body_too_slow; a steady body above the rate passes; time in
// which the upstream reads nothing (backpressure) is not counted against the client. Both
// upstream paths (the undici pool, a proxy.http2 upstream), HTTP/1.1 and HTTP/2 clients over TLS.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { makePki, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { recorder, type Seen, startUpstreams, upload } from './helpers/slow-uploads.ts';

const RATE = 1_000;
/** The grace period, and the window the rate is measured over. */
const GRACE_MS = 2_000;
/** The body watch's longest tick. */
const TICK_MS = 1_000;
/** Room for a loaded machine (2 cores shared by several test runs). */
const SLACK_MS = 2_000;
/** How long the stalling upstream reads nothing: longer than a window and two ticks, shorter than the idle timeout. */
const STALL_MS = 4_500;
const CASES = ['/pool/h1', '/pool/h2', '/h2/h1', '/h2/h2'] as const;
const isHttp2Client = (path: string) => path.endsWith('/h2');

describe('the minimum body rate over a sliding window', () => {
  let pki: TestPki;
  let cleanup: () => void;
  const seen: Seen[] = [];
  const stalled: Seen[] = [];
  let upstreams: Awaited<ReturnType<typeof startUpstreams>>;
  let stalling: Awaited<ReturnType<typeof startUpstreams>>;
  /** Idle timeout 1.5 s (as test/security-slow-bodies.test.ts). */
  let gw: TestGateway;
  /** Idle timeout 10 s: longer than the upstream's stall. */
  let patient: TestGateway;

  before(async () => {
    ({ pki, cleanup } = await makePki());
    upstreams = await startUpstreams(recorder(seen));
    stalling = await startUpstreams(recorder(stalled, STALL_MS));
    const apis = (u: typeof upstreams) =>
      buildBundle([
        { id: 'pool', listen_path: '/pool/', strip_listen_path: false, target_url: u.h1Url, use_keyless: true },
        { id: 'h2', listen_path: '/h2/', strip_listen_path: false, target_url: u.h2cUrl, upstream_http2: true, use_keyless: true },
      ]);
    const minBodyRate = { bytesPerSecond: RATE, graceMs: GRACE_MS };
    gw = await startTestGateway(pki, apis(upstreams), { clientIdleTimeoutMs: 1_500, minBodyRate });
    patient = await startTestGateway(pki, apis(stalling), { clientIdleTimeoutMs: 10_000, minBodyRate });
  });
  after(async () => {
    await gw.close();
    await patient.close();
    upstreams.close();
    stalling.close();
    cleanup();
  });

  it('a burst buys one window at most: 64 KB at once, then a trickle below the rate, gets 408 client.body_too_slow a window and a tick after the burst; a burst then a steady rate above the minimum passes', async () => {
    // 64 KB, then 100 bytes every 200 ms (500 bytes/s). Before: the average over the whole body
    // stayed above 1000 bytes/s for over two minutes (at the default 240 bytes/s, 1 MB bought 70).
    const trickles = CASES.map((path) =>
      upload(gw.port, pki, `${path}-trickle`, isHttp2Client(path), { total: 1_000_000, burst: 65_536, chunk: 100, everyMs: 200 }),
    );
    // 64 KB, then 250 bytes every 100 ms (2500 bytes/s): 10,000 more bytes in about 4 s.
    const total = 65_536 + 10_000;
    const steady = CASES.map((path) => upload(gw.port, pki, `${path}-steady`, isHttp2Client(path), { total, burst: 65_536, chunk: 250, everyMs: 100 }));
    try {
      for (const [i, path] of CASES.entries()) {
        const u = trickles[i];
        await waitFor(`an answer to ${path}-trickle`, () => u.status !== null, GRACE_MS + 2 * TICK_MS + SLACK_MS + 5_000);
        assert.equal(u.status, 408, `${path}-trickle: ${u.body}`);
        assert.match(u.body, /client\.body_too_slow/, path);
        assert.ok(u.answeredAfter >= GRACE_MS, `${path}-trickle: answered after ${u.answeredAfter} ms, before the grace period`);
        assert.ok(u.answeredAfter < GRACE_MS + 2 * TICK_MS + SLACK_MS, `${path}-trickle: answered after ${u.answeredAfter} ms`);
        const s = await waitFor(`the upstream to see ${path}-trickle`, () => seen.find((x) => x.path === `${path}-trickle`), 15_000);
        await waitFor(`the upstream request of ${path}-trickle to be aborted`, () => s.abandoned, 10_000);
        const record = await waitFor(`the record of ${path}-trickle`, () => gw.records.find((r) => r.path === `${path}-trickle`), 15_000);
        assert.deepEqual([record.status, record.code], [408, 'client.body_too_slow'], path);
      }
      for (const [i, path] of CASES.entries()) {
        const u = steady[i];
        await waitFor(`an answer to ${path}-steady`, () => u.status !== null, 30_000);
        assert.equal(u.status, 200, `${path}-steady: ${u.body}`);
        await waitFor(`all of the answer to ${path}-steady`, () => u.body.includes(`got ${total}`), 5_000);
        assert.ok(u.answeredAfter > GRACE_MS + 2 * TICK_MS, `${path}-steady took ${u.answeredAfter} ms: not long enough to test anything`);
      }
    } finally {
      for (const u of [...trickles, ...steady]) u.stop();
    }
  });

  it('time in which the upstream reads nothing is not counted against the client: a fast body the upstream stops reading for 4.5 s passes', async () => {
    // 16 MB: more than the kernel's buffers take on the way, so the client is held back too.
    const size = 16 << 20;
    const uploads = CASES.map((path) =>
      upload(patient.port, pki, `${path}-stalled`, isHttp2Client(path), { total: size, burst: size, chunk: 0, everyMs: 100 }),
    );
    try {
      for (const [i, path] of CASES.entries()) {
        const u = uploads[i];
        await waitFor(`an answer to ${path}-stalled`, () => u.status !== null, STALL_MS + 20_000);
        assert.equal(u.status, 200, `${path}-stalled: ${u.body}`);
        await waitFor(`all of the answer to ${path}-stalled`, () => u.body.includes(`got ${size}`), 5_000);
        // The client could not send all of it while the upstream stalled: the gateway's writes backed up (else this tests nothing).
        assert.ok(u.flushedAfter >= STALL_MS - 500, `${path}-stalled: the whole body was sent after ${u.flushedAfter} ms, no backpressure`);
        assert.ok(u.answeredAfter >= STALL_MS, `${path}-stalled answered after ${u.answeredAfter} ms: the upstream did not stall`);
      }
    } finally {
      for (const u of uploads) u.stop();
    }
  });
});
