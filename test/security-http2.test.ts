// HTTP/2 attacked with node:http2 as the client: streams reset as soon as they are opened
// ("rapid reset") must not leave upstream connections behind, and the same header rules hold
// as on HTTP/1.1. An answer cut short reaches the client as cut (curl as the client).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { connect, constants } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { closeGatewayTest, keylessOpenBundle, startGatewayTest } from './helpers/config-gateway.ts';
import { curl, makePki, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

describe('HTTP/2 streams reset by the client', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  const upstreamSockets = new Set<Socket>();

  before(async () => {
    ({ pki, cleanup, echo, gw } = await startGatewayTest(({ echo }) => {
      echo.slowMs = 1_000;
      echo.server.on('connection', (socket: Socket) => {
        upstreamSockets.add(socket);
        socket.once('close', () => upstreamSockets.delete(socket));
      });
      return keylessOpenBundle(echo);
    }));
  });
  after(() => closeGatewayTest({ gw, echo, cleanup }));

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

describe('an answer the upstream cuts mid-body', () => {
  it('reaches an HTTP/2 client as a reset stream, not as a complete answer (and HTTP/1.1 as a closed connection)', async () => {
    const { pki, cleanup } = await makePki();
    // Chunked, no length: only the way the stream ends tells the client the answer is short.
    const upstream = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial '.repeat(100));
      setTimeout(() => res.socket?.destroy(), 200);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const gw = await startTestGateway(
      pki,
      buildBundle([{ id: 'open', listen_path: '/', target_url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, use_keyless: true }]),
    );
    const curlExit = (flag: string) =>
      new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(
          'curl',
          ['-sS', '-o', '/dev/null', '--max-time', '20', '--cacert', pki.certFile('ca'), flag, `https://localhost:${gw.port}/cut`],
          (err, _out, stderr) => resolve({ code: typeof err?.code === 'number' ? err.code : 0, stderr }),
        ),
      );
    try {
      // Before: RST_STREAM(NO_ERROR), and curl --http2 took the first 800 bytes as the whole answer (exit 0).
      const h2 = await curlExit('--http2');
      assert.notEqual(h2.code, 0, 'HTTP/2: the cut answer is not taken as complete');
      assert.match(h2.stderr, /INTERNAL_ERROR|not closed cleanly/);
      assert.equal((await curlExit('--http1.1')).code, 18, 'HTTP/1.1: transfer closed with outstanding read data remaining');
      await waitFor(() => gw.records.filter((r) => r.path === '/cut').length === 2, 10_000);
      for (const r of gw.records.filter((r) => r.path === '/cut')) assert.equal(r.code, 'proxy.upstream_error');
    } finally {
      await gw.close();
      upstream.closeAllConnections();
      upstream.close();
      cleanup();
    }
  });
});
