// HTTP/2 attacked with node:http2 as the client: streams reset as soon as they are opened
// ("rapid reset") must not leave upstream connections behind, and the same header rules hold
// as on HTTP/1.1.
import assert from 'node:assert/strict';
import { connect, constants } from 'node:http2';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { curl, makePki, startEcho, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

describe('HTTP/2 streams reset by the client', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  const upstreamSockets = new Set<Socket>();

  before(async () => {
    ({ pki, cleanup } = await makePki());
    echo = await startEcho();
    echo.slowMs = 1_000;
    echo.server.on('connection', (socket: Socket) => {
      upstreamSockets.add(socket);
      socket.once('close', () => upstreamSockets.delete(socket));
    });
    gw = await startTestGateway(pki, buildBundle([{ id: 'open', listen_path: '/', target_url: echo.url, use_keyless: true }]));
  });
  after(async () => {
    await gw.close();
    await echo.close();
    cleanup();
  });

  it('requests reset while waiting for an upstream connection are aborted when they get one: no connection is held, others are served', async () => {
    const session = connect(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    await new Promise((r) => session.once('connect', r));
    // Each stream: HEADERS without END_STREAM (a body is coming), then RST_STREAM at once.
    for (let i = 0; i < 1_500 && !session.closed && !session.destroyed; i++) {
      try {
        const stream = session.request({ ':method': 'POST', ':path': '/slow/x' }, { endStream: false });
        stream.on('error', () => {});
        stream.close(constants.NGHTTP2_CANCEL);
      } catch {
        break; // the gateway sent GOAWAY (node:http2's own flood limit)
      }
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    session.destroy();
    await waitFor('every reset request to be recorded', () => gw.gateway.inFlight() === 0, 30_000);
    assert.ok(gw.records.length > 0);
    // Before: each of these requests kept an upstream connection, writing a body that never
    // came, for good; once the pool's 256 connections were taken, nobody was served again.
    await waitFor(`the upstream connections to close (${upstreamSockets.size} open)`, () => upstreamSockets.size === 0, 30_000);
    const fresh = await curl(pki, gw.port, '/x', { extra: ['--http2'] });
    assert.equal(fresh.status, 200);
  });
});
