// A WebSocket tunnel the gateway ends itself (docs/security.md section 57) ends with a close
// frame to each side, at a frame boundary: 1008 and the refusal's code when the certificate is
// revoked while the tunnel is open, 1001 for --websocket-idle-timeout and for a drain. Before,
// the gateway destroyed both sockets: the `ws` client saw 1006 (abnormal closure) and no reason,
// the upstream's `ws` server the same. Real `ws` clients and servers through a real gateway.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { loadBundle } from '../bundle/read.ts';
import { serializeBundle } from '../bundle/write.ts';
import { FrameBoundaries } from '../runtime/websocket-frames.ts';
import { bundleContent, buildBundle } from './helpers/bundle-builder.ts';
import { makePki, rawTlsClient, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

interface Closed {
  code: number;
  reason: string;
}

function closedOf(ws: WebSocket): Promise<Closed> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe('WebSocket: a tunnel the gateway closes ends with a close frame both ways', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let wss: WebSocketServer;
  let target: string;
  /** What the upstream's side of each tunnel saw close, by the path it was opened on. */
  const upstreamClosed = new Map<string, Closed>();
  const gateways: TestGateway[] = [];

  before(async () => {
    ({ pki, cleanup } = await makePki());
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (socket, req) => {
      const path = req.url ?? '';
      socket.on('close', (code, reason) => upstreamClosed.set(path, { code, reason: reason.toString() }));
      socket.on('error', () => {});
      socket.send('hello');
      // /stream/: messages of 64 KiB, one after the other, for as long as the tunnel lasts:
      // the gateway's close comes while frames are under way, and must fall between two.
      if (path.includes('/stream/')) {
        const message = Buffer.alloc(64 * 1024, 97);
        const pump = () => {
          if (socket.readyState !== WebSocket.OPEN) return;
          socket.send(message, () => setImmediate(pump));
        };
        pump();
      } else socket.on('message', (m) => socket.send(m));
    });
    target = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const gw of gateways) await gw.close();
    wss.close();
    cleanup();
  });

  const alice = () => ({ ca: pki.ca.certPem, cert: pki.clients.alice.certPem, key: pki.clients.alice.keyPem });
  const open = async (gw: TestGateway, path: string): Promise<WebSocket> => {
    const ws = new WebSocket(`wss://localhost:${gw.port}${path}`, alice());
    ws.on('error', () => {});
    await new Promise((resolve, reject) => {
      ws.once('message', resolve);
      ws.once('unexpected-response', () => reject(new Error('no 101')));
    });
    return ws;
  };
  const apis = () => [
    { id: 'ws', listen_path: '/ws/', target_url: target, use_certificate: true },
    { id: 'open', listen_path: '/open/', target_url: target, use_keyless: true },
  ];
  const keys = () => [{ id: 'alice', certificates: [pki.clients.alice.fingerprint], access_rights: { ws: { allowed_urls: null } } }];

  it('a certificate revoked while its tunnel is open: 1008 and mtls.cert_revoked to the client and the upstream, between two frames of a stream of messages (before: 1006)', async () => {
    const gw = await startTestGateway(pki, buildBundle(apis(), keys()));
    gateways.push(gw);
    const quiet = await open(gw, '/ws/quiet/revoked');
    const streaming = await open(gw, '/ws/stream/revoked');
    let received = 0;
    streaming.on('message', (m: Buffer) => {
      // A close frame written into a message would have ended it early or broken the framing (ws: 1002).
      assert.equal(m.length, 64 * 1024);
      received++;
    });
    const quietClosed = closedOf(quiet);
    const streamingClosed = closedOf(streaming);
    await waitFor('messages to flow', () => received > 10, 10_000);
    const revoked = bundleContent(apis(), keys());
    revoked.revocation.denied = [pki.clients.alice.fingerprint];
    gw.use(loadBundle(serializeBundle(revoked)));
    for (const closed of [await quietClosed, await streamingClosed]) assert.deepEqual(closed, { code: 1008, reason: 'mtls.cert_revoked' });
    for (const path of ['/quiet/revoked', '/stream/revoked']) {
      const up = await waitFor(`the upstream to see ${path} close`, () => upstreamClosed.get(path), 5_000);
      assert.deepEqual(up, { code: 1008, reason: 'mtls.cert_revoked' });
    }
    assert.equal(gw.gateway.openWebSockets(), 0);
    await waitFor(() => gw.records.filter((r) => r.code === 'access.revoked_in_flight').length === 2, 5_000);
  });

  it('--websocket-idle-timeout: 1001 "idle timeout" to both sides (before: 1006)', async () => {
    const gw = await startTestGateway(pki, buildBundle(apis(), keys()), { websocketIdleTimeoutMs: 600 });
    gateways.push(gw);
    const ws = await open(gw, '/ws/quiet/idle');
    assert.deepEqual(await closedOf(ws), { code: 1001, reason: 'idle timeout' });
    const up = await waitFor('the upstream to see it close', () => upstreamClosed.get('/quiet/idle'), 5_000);
    assert.deepEqual(up, { code: 1001, reason: 'idle timeout' });
  });

  it('a drain (SIGTERM): 1001 "server draining" at once, not a cut at the end of the drain timeout (before: 1006 after it)', async () => {
    const gw = await startTestGateway(pki, buildBundle(apis(), keys()));
    const ws = await open(gw, '/ws/quiet/drain');
    const closed = closedOf(ws);
    const startedAt = Date.now();
    const drained = gw.gateway.close(20_000);
    assert.deepEqual(await closed, { code: 1001, reason: 'server draining' });
    assert.ok(Date.now() - startedAt < 5_000, `closed after ${Date.now() - startedAt} ms`);
    await drained;
    const up = await waitFor('the upstream to see it close', () => upstreamClosed.get('/quiet/drain'), 5_000);
    assert.deepEqual(up, { code: 1001, reason: 'server draining' });
  });

  it('a frame whose end never comes: the tunnel is closed within the bound, without a close frame inside the frame', async () => {
    const gw = await startTestGateway(pki, buildBundle(apis(), keys()), { websocketIdleTimeoutMs: 600 });
    gateways.push(gw);
    const c = await rawTlsClient(pki, gw.port);
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    c.socket.write(
      `GET /open/quiet/partial HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
    );
    await waitFor('the 101 and the hello', () => c.received().includes('hello'), 10_000);
    // A masked binary frame announcing 1 MiB, of which 10 bytes are sent: the client→upstream
    // direction stays inside a frame, so no close frame can go to the upstream.
    const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4]);
    c.socket.write(Buffer.concat([header, Buffer.alloc(10)]));
    const startedAt = Date.now();
    await waitFor('the connection to close', c.closed, 10_000);
    // The idle timeout (600 ms) and the bound (1 s).
    assert.ok(Date.now() - startedAt < 4_000, `closed after ${Date.now() - startedAt} ms`);
    // The client's side was between frames: it got its close frame.
    assert.ok(c.received().includes('\x88\x0e\x03\xe9idle timeout'), JSON.stringify(c.received().slice(-40)));
    const up = await waitFor('the upstream to see it close', () => upstreamClosed.get('/quiet/partial'), 5_000);
    assert.equal(up.code, 1006, 'no close frame reached the upstream inside a frame');
  });
});

describe('FrameBoundaries: where frames begin, headers split anywhere', () => {
  it('every frame start and no other byte is a boundary, fed one byte at a time (7-, 16- and 64-bit lengths, masked or not, empty frames)', () => {
    const parts: Buffer[] = [];
    const starts = new Set<number>([0]);
    let offset = 0;
    for (const [payload, masked] of [
      [0, false],
      [125, true],
      [126, false],
      [65_535, true],
      [65_536, false],
      [3, true],
      [70_000, true],
    ] as const) {
      const length7 = payload < 126 ? payload : payload < 65_536 ? 126 : 127;
      const header = Buffer.alloc(2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + (masked ? 4 : 0));
      header[0] = 0x82;
      header[1] = (masked ? 0x80 : 0) | length7;
      if (length7 === 126) header.writeUInt16BE(payload, 2);
      if (length7 === 127) header.writeUInt32BE(payload, 6);
      parts.push(header, Buffer.alloc(payload, 0x88)); // payload bytes that look like close frames
      offset += header.length + payload;
      starts.add(offset);
    }
    const bytes = Buffer.concat(parts);
    const frames = new FrameBoundaries();
    const found = new Set<number>();
    for (let i = 0; i < bytes.length; i++) {
      const one = bytes.subarray(i, i + 1);
      if (frames.follow(one, true) === 0) {
        found.add(i);
        frames.follow(one);
      }
    }
    if (frames.atBoundary) found.add(bytes.length);
    assert.deepEqual(
      [...found].sort((a, b) => a - b),
      [...starts].sort((a, b) => a - b),
    );
  });
});
