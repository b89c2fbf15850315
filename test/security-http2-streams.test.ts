// docs/security.md section 31: what one HTTP/2 connection may hold. node:http2 as a client that
// follows the protocol, and test/helpers/raw-h2.ts as one that does not (streams beyond the
// SETTINGS, streams opened and reset at once: CVE-2023-44487).
// Before: the gateway advertised SETTINGS_MAX_CONCURRENT_STREAMS 4294967295 and took every
// stream a client opened (one connection held ~15.7k requests to a slow upstream); header lists
// of 64 KiB (HTTP/1.1: 16 KiB); a client could open and reset 1,000 streams per connection
// before nghttp2 closed it, each decided by the stages and perhaps sent upstream.
import assert from 'node:assert/strict';
import { connect, constants } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import type { RefusedReason } from '../runtime/tls-front.ts';
import { closeGatewayTest, keylessOpenBundle, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { H2_ERROR, rawH2, type RawH2 } from './helpers/raw-h2.ts';

let pki: TestPki;
let cleanup: () => void;
let echo: EchoUpstream;
before(async () => {
  ({ pki, cleanup, echo } = await startPkiAndEcho());
  echo.slowMs = 600;
});
after(() => closeGatewayTest({ echo, cleanup }));

const bundle = () => keylessOpenBundle(echo);

/** The most requests the gateway held at once while `during` ran (sampled every 5 ms). */
async function peakInFlight(gw: TestGateway, during: () => Promise<unknown>): Promise<number> {
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, gw.gateway.inFlight())), 5);
  try {
    await during();
  } finally {
    clearInterval(sampler);
  }
  return Math.max(peak, gw.gateway.inFlight());
}

describe('streams per connection are bounded', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(pki, bundle());
  });
  after(() => gw.close());

  it('a node:http2 client is told 100 streams (the default) and waits: of 250 requests at most 100 are in flight, all are answered', async () => {
    const session = connect(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    await new Promise((r) => session.once('remoteSettings', r));
    assert.equal(session.remoteSettings.maxConcurrentStreams, 100);
    const statuses: number[] = [];
    const peak = await peakInFlight(gw, () =>
      Promise.all(
        Array.from(
          { length: 250 },
          (_, i) =>
            new Promise<void>((resolve, reject) => {
              const req = session.request({ ':path': `/slow/${i}` });
              req.on('response', (h) => statuses.push(Number(h[':status'])));
              req.on('error', reject);
              req.resume();
              req.on('close', () => resolve());
            }),
        ),
      ),
    );
    session.close();
    assert.ok(peak <= 100, `${peak} requests in flight on one connection`);
    assert.ok(peak >= 80, `the cap is used, not undershot (${peak})`);
    assert.equal(statuses.length, 250);
    assert.ok(statuses.every((s) => s === 200));
  });

  it('header lists are HTTP/1.1-sized: 20 KB of headers are refused on HTTP/2 as on HTTP/1.1 (431), 12 KB pass', async () => {
    const session = connect(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    const send = (bytes: number) =>
      new Promise<{ status: number } | { reset: number }>((resolve) => {
        const req = session.request({ ':path': '/headers', 'x-big': 'a'.repeat(bytes) });
        req.on('response', (h) => resolve({ status: Number(h[':status']) }));
        req.on('error', () => {});
        req.on('close', () => resolve({ reset: req.rstCode ?? -1 }));
        req.resume();
      });
    assert.deepEqual(await send(12_000), { status: 200 });
    const big = await send(20_000);
    assert.ok('reset' in big && big.reset !== 0, `20 KB of headers: ${JSON.stringify(big)}`);
    session.close();
    const h1 = await curl(pki, gw.port, '/headers', { extra: ['--http1.1', '-H', `x-big: ${'a'.repeat(20_000)}`] } as never);
    assert.equal(h1.status, 431);
  });
});

describe('a client that ignores the SETTINGS, or resets streams as fast as it opens them', () => {
  let gw: TestGateway;
  const refused: RefusedReason[] = [];
  const clients: RawH2[] = [];
  before(async () => {
    gw = await startTestGateway(pki, bundle(), { http2MaxStreams: 20, onConnectionRefused: (r) => refused.push(r) });
  });
  after(async () => {
    for (const c of clients) c.close();
    await gw.close();
  });
  const open = async () => {
    const c = await rawH2({ port: gw.port, ca: pki.ca.certPem });
    clients.push(c);
    return c;
  };

  it('streams beyond --http2-max-streams are refused (REFUSED_STREAM, or GOAWAY once the SETTINGS were acknowledged); no more than the cap reach the gateway', async () => {
    const c = await open();
    const peak = await peakInFlight(gw, async () => {
      for (let i = 0; i < 500 && !c.closed; i++) c.open(2 * i + 1, 'GET', `/slow/${i}`);
      await c.flushed();
      await waitFor('every stream refused, or the connection', () => c.resets.size >= 480 || c.goaway !== null, 15_000);
      await new Promise((r) => setTimeout(r, 200));
    });
    assert.equal(c.settings.get(3), 20, 'SETTINGS_MAX_CONCURRENT_STREAMS');
    assert.ok(peak <= 20, `${peak} requests in flight on one connection`);
    const refusedStreams = [...c.resets.values()].filter((code) => code === H2_ERROR.REFUSED_STREAM).length;
    assert.ok(refusedStreams > 0 || c.goaway !== null, 'the extra streams were refused');
    c.close();
  });

  it('streams reset in the same write as their HEADERS: the connection gets GOAWAY(ENHANCE_YOUR_CALM) after ~100, long before nghttp2 would (1,000)', async () => {
    const before = gw.records.length;
    const c = await open();
    for (let i = 0; i < 600 && !c.closed; i++) {
      c.openAndReset(2 * i + 1, `/slow/rr${i}`);
      if (i % 50 === 49) await c.flushed();
    }
    await waitFor('GOAWAY', () => c.goaway !== null, 15_000);
    assert.equal(c.goaway, H2_ERROR.ENHANCE_YOUR_CALM);
    await waitFor('the connection to close', () => c.closed, 15_000);
    await waitFor('nothing in flight', () => gw.gateway.inFlight() === 0, 15_000);
    const decided = gw.records.length - before;
    assert.ok(decided < 400, `${decided} of 600 reset streams reached the stages`);
    assert.ok(refused.includes('http2_rapid_reset'));
  });

  it('streams reset after the gateway sent them upstream: cut after ~100 as well, not every one an upstream request', async () => {
    const abandonedBefore = echo.abandoned;
    const before = gw.records.length;
    const c = await open();
    for (let batch = 0; batch < 30 && !c.closed; batch++) {
      const ids = Array.from({ length: 20 }, (_, i) => 2 * (batch * 20 + i) + 1);
      for (const id of ids) c.open(id, 'GET', `/slow/late${id}`);
      await c.flushed();
      await new Promise((r) => setTimeout(r, 40)); // the requests go upstream meanwhile
      for (const id of ids) c.reset(id);
      await c.flushed();
    }
    await waitFor('GOAWAY', () => c.goaway !== null, 15_000);
    assert.equal(c.goaway, H2_ERROR.ENHANCE_YOUR_CALM);
    await waitFor('nothing in flight', () => gw.gateway.inFlight() === 0, 15_000);
    const decided = gw.records.length - before;
    assert.ok(decided <= 140, `${decided} of 600 late-reset streams were decided`);
    await waitFor('the upstream to see the abandoned requests', () => echo.abandoned - abandonedBefore >= 20, 15_000);
    assert.ok(echo.abandoned - abandonedBefore <= 140, `${echo.abandoned - abandonedBefore} upstream requests abandoned`);
  });

  it('a client that cancels a few dozen slow requests, as a browser leaving a page does, keeps its connection', async () => {
    const session = connect(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    await new Promise((r) => session.once('remoteSettings', r));
    for (let round = 0; round < 3; round++) {
      const streams = Array.from({ length: 20 }, (_, i) => session.request({ ':path': `/slow/cancel${round}-${i}` }));
      for (const s of streams) s.on('error', () => {});
      await new Promise((r) => setTimeout(r, 50));
      for (const s of streams) s.close(constants.NGHTTP2_CANCEL);
      await Promise.all(streams.map((s) => new Promise((r) => s.once('close', r))));
    }
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': '/after' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.resume();
    });
    assert.equal(status, 200);
    assert.equal(session.closed, false);
    session.close();
  });
});

it('serve flags: --http2-max-streams (or MTLSGATE_HTTP2_MAX_STREAMS) is a whole number from 1 to 4294967295, default 100', async () => {
  const { serveConfig } = await import('../cli/commands/serve.ts');
  const base = ['--bundle', 'b.json', '--tls-cert', 'c', '--tls-key', 'k'];
  assert.equal(serveConfig(base, {}).config.http2MaxStreams, 100);
  assert.equal(serveConfig([...base, '--http2-max-streams', '128'], {}).config.http2MaxStreams, 128);
  assert.equal(serveConfig(base, { MTLSGATE_HTTP2_MAX_STREAMS: '4294967295' }).config.http2MaxStreams, 4_294_967_295);
  assert.throws(() => serveConfig([...base, '--http2-max-streams', '0'], {}), /--http2-max-streams must be a positive whole number/);
  assert.throws(() => serveConfig(base, { MTLSGATE_HTTP2_MAX_STREAMS: '4294967296' }), /MTLSGATE_HTTP2_MAX_STREAMS must be at most 4294967295/);
});
