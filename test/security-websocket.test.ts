// WebSocket tunnels attacked as a client would (raw TLS sockets, `ws`): a tunnel is opened only
// when the upstream accepts the upgrade, talks to the upstream as every other request does
// (proxy.upstream_tls), and is decided again while it is open, not only on a bundle reload.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Server as NetServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import { createServerCert, issueCert } from '../cli/pki.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { closeGatewayTest, startGatewayTest } from './helpers/config-gateway.ts';
import { makePki, rawTlsClient, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

const UPGRADE =
  'GET /public/chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
const SMUGGLED = 'GET /admin/secret HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Client-Cert: Hash=forged\r\n\r\n';

describe('WebSocket: no tunnel unless the upstream switches protocols', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  /** Every path the upstream was asked for. */
  const seen: string[] = [];

  before(async () => {
    ({ pki, cleanup, echo, gw } = await startGatewayTest(({ pki, echo }) => {
      echo.server.prependListener('request', (req: IncomingMessage) => seen.push(req.url ?? ''));
      // One upstream behind two APIs: an open one, and an admin one only alice's certificate reaches.
      return buildBundle([
        { id: 'public', listen_path: '/public/', target_url: `${echo.url}/public`, use_keyless: true },
        {
          id: 'admin',
          listen_path: '/admin/',
          target_url: `${echo.url}/admin`,
          use_keyless: true,
          use_mutual_tls_auth: true,
          client_certificates: [pki.clients.alice.fingerprint],
        },
      ]);
    }));
  });
  after(() => closeGatewayTest({ gw, echo, cleanup }));

  it('an upstream that answers the upgrade with a plain response: the client gets it, the connection ends, later bytes never reach the upstream', async () => {
    seen.length = 0;
    const c = await rawTlsClient(pki, gw.port);
    c.socket.write(UPGRADE);
    await waitFor('the upstream answer', () => c.received().includes('\r\n\r\n'), 15_000);
    assert.match(c.received(), /^HTTP\/1\.1 200 /);
    assert.match(c.received(), /"path":"\/public\/chat"/);
    // The old tunnel carried this straight to the upstream, past every stage.
    if (!c.closed()) c.socket.write(SMUGGLED);
    await waitFor('the connection to close', c.closed, 15_000);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(seen, ['/public/chat']);
    assert.doesNotMatch(c.received(), /admin\/secret/);
    await waitFor('the record', () => gw.records.some((r) => r.path === '/public/chat' && r.status === 200), 15_000);
  });

  it('bytes pipelined behind the upgrade request are held until a 101, so never reach a non-WebSocket upstream', async () => {
    seen.length = 0;
    const c = await rawTlsClient(pki, gw.port);
    c.socket.write(UPGRADE + SMUGGLED);
    await waitFor('the connection to close', c.closed, 15_000);
    assert.deepEqual(seen, ['/public/chat']);
    assert.match(c.received(), /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(c.received(), /admin\/secret/);
  });

  it('an upgrade declaring a body: the body is not sent to the upstream as a request', async () => {
    seen.length = 0;
    const c = await rawTlsClient(pki, gw.port);
    c.socket.write(UPGRADE.replace('\r\n\r\n', `\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n`) + SMUGGLED);
    await waitFor('the connection to close', c.closed, 15_000);
    // Since section 40 the handshake itself is refused (it has no body, RFC 6455 4.1), so nothing reaches the upstream.
    assert.deepEqual(seen, []);
    assert.match(c.received(), /^HTTP\/1\.1 400 [\s\S]*"code":"request\.upgrade_with_body"/);
    assert.doesNotMatch(c.received(), /admin\/secret/);
  });

  // Section 40: node:http hands an upgrade's connection over at the end of its headers, so a body
  // is never read as one. An Upgrade other than websocket is served as a plain request, which
  // reached the upstream with an empty body: a POST of "amount=100" arrived as a POST of nothing.
  it('any Upgrade declaring a body (h2c, Content-Length or chunked): 400 request.upgrade_with_body, nothing forwarded', async () => {
    for (const [framing, body] of [
      ['Content-Length: 10', 'amount=100'],
      ['Transfer-Encoding: chunked', 'a\r\namount=100\r\n0\r\n\r\n'],
      [`Content-Length: ${SMUGGLED.length}`, SMUGGLED],
    ]) {
      seen.length = 0;
      const c = await rawTlsClient(pki, gw.port);
      c.socket.write(
        `POST /public/pay HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n${framing}\r\n\r\n${body}`,
      );
      await waitFor('the connection to close', c.closed, 15_000);
      assert.match(c.received(), /^HTTP\/1\.1 400 [\s\S]*"code":"request\.upgrade_with_body"/, framing);
      assert.deepEqual(seen, [], framing);
    }
    await waitFor('the record', () => gw.records.at(-1)?.code === 'request.upgrade_with_body', 15_000);
  });

  it('held: an Upgrade other than websocket without a body is served as a plain request, without the upgrade headers', async () => {
    seen.length = 0;
    const c = await rawTlsClient(pki, gw.port);
    c.socket.write(
      'GET /public/plain HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: 0\r\n\r\n',
    );
    await waitFor('the connection to close', c.closed, 15_000);
    assert.match(c.received(), /^HTTP\/1\.1 200 /);
    assert.deepEqual(seen, ['/public/plain']);
    assert.doesNotMatch(c.received(), /"upgrade"|"http2-settings"/);
  });
});

describe('WebSocket: the upstream connection follows proxy.upstream_tls', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let https: HttpsServer;
  let wss: WebSocketServer;
  let gw: TestGateway;
  let upstreamUrl: string;
  let serverFingerprint: string;
  let clientCertFile: string;
  let clientKeyFile: string;

  before(async () => {
    ({ pki, cleanup } = await makePki());
    // A private-CA upstream under a name that is not its address, asking for a client certificate.
    const serverCert = await createServerCert(pki.ca, { dns: ['backend.internal'] });
    serverFingerprint = serverCert.fingerprint;
    const gatewayIdentity = await issueCert(pki.ca, 'mtlsgate-gateway');
    clientCertFile = pki.file('gw-client.pem', gatewayIdentity.certPem);
    clientKeyFile = pki.file('gw-client-key.pem', gatewayIdentity.keyPem);
    https = createHttpsServer({ cert: serverCert.certPem, key: serverCert.keyPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true });
    wss = new WebSocketServer({ server: https });
    wss.on('connection', (socket, req) => socket.send(`hello ${(req.socket as TLSSocket).getPeerX509Certificate()?.subject.replace(/\n/g, ',')}`));
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    upstreamUrl = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
    gw = await startTestGateway(pki, buildBundle([]));
  });
  after(async () => {
    await gw.close();
    wss.close();
    https.close();
    cleanup();
  });

  const use = (pins: string[]) =>
    gw.use(
      buildBundle([
        {
          id: 'ws',
          listen_path: '/ws/',
          target_url: upstreamUrl,
          use_keyless: true,
          upstream_tls: {
            ca_pem: pki.ca.certPem,
            pinned_sha256: pins,
            server_name: 'backend.internal',
            client_certificate_file: clientCertFile,
            client_key_file: clientKeyFile,
          },
        },
      ]),
    );

  const open = () => new WebSocket(`wss://localhost:${gw.port}/ws/chat`, { ca: pki.ca.certPem });

  it('CA, server_name and the client certificate of upstream_tls are used for the tunnel', async () => {
    use([serverFingerprint]);
    const ws = open();
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (m) => resolve(String(m)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
    assert.match(first, /^hello .*CN=mtlsgate-gateway/);
    ws.close();
  });

  it('an upstream certificate that is not pinned: 502, no tunnel', async () => {
    use(['0'.repeat(64)]);
    const ws = open();
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
      ws.once('error', () => resolve(-1));
    });
    assert.equal(status, 502);
  });
});

describe('WebSocket: an open tunnel is decided again without a bundle reload', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let wss: WebSocketServer;
  let gw: TestGateway;

  before(async () => {
    ({ pki, cleanup } = await makePki());
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (socket) => socket.send('hello'));
  });
  after(async () => {
    await gw?.close();
    wss.close();
    cleanup();
  });

  it('a tunnel whose key expires while it is open is closed', async () => {
    const expires = new Date(Date.now() + 3_000).toISOString();
    gw = await startTestGateway(
      pki,
      buildBundle(
        [{ id: 'ws', listen_path: '/ws/', target_url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, use_certificate: true }],
        [{ id: 'alice', certificates: [pki.clients.alice.fingerprint], access_rights: { ws: { allowed_urls: null } }, expires }],
      ),
    );
    const ws = new WebSocket(`wss://localhost:${gw.port}/ws/chat`, { ca: pki.ca.certPem, cert: pki.clients.alice.certPem, key: pki.clients.alice.keyPem });
    await new Promise((resolve, reject) => {
      ws.once('message', resolve);
      ws.once('error', reject);
    });
    let closed = false;
    ws.once('close', () => (closed = true));
    // No reload happens: the key's expiry alone must end the tunnel.
    await waitFor('the tunnel to close after the key expired', () => closed, 20_000);
    assert.equal(gw.gateway.openWebSockets(), 0);
  });
});

describe("WebSocket: the upstream's 101 must accept this handshake (section 51)", () => {
  let pki: TestPki;
  let cleanup: () => void;
  let gw: TestGateway;
  let upstream: NetServer;
  /** What the upstream got after its 101, per connection. */
  const afterSwitch: string[] = [];
  /** The 101 the upstream writes: `accept` computed from the key unless `wrongAccept`. */
  let answer: { upgrade: string; wrongAccept: boolean } = { upgrade: 'websocket', wrongAccept: true };

  before(async () => {
    ({ pki, cleanup } = await makePki());
    // A server that answers 101 to any upgrade and then reads HTTP requests off the socket: the
    // kind of upstream a tunnel would hand an attacker as a raw connection.
    upstream = createNetServer((socket) => {
      let got = '';
      let switched = false;
      socket.on('data', (chunk: Buffer) => {
        got += chunk.toString('latin1');
        if (switched) return void (afterSwitch[afterSwitch.length - 1] = got);
        const end = got.indexOf('\r\n\r\n');
        if (end === -1) return;
        const key = /sec-websocket-key: (.+)\r\n/i.exec(got)?.[1] ?? '';
        const accept = answer.wrongAccept ? 'not-the-accept=' : createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${answer.upgrade}\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        switched = true;
        got = got.slice(end + 4);
        afterSwitch.push(got);
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/public`;
    gw = await startTestGateway(pki, buildBundle([{ id: 'public', listen_path: '/public/', target_url: target, use_keyless: true }]));
  });
  after(async () => {
    await gw.close();
    upstream.close();
    cleanup();
  });

  for (const case_ of [
    { upgrade: 'websocket', wrongAccept: true, what: 'a wrong Sec-WebSocket-Accept' },
    { upgrade: 'h2c', wrongAccept: false, what: 'Upgrade: h2c (another protocol)' },
  ]) {
    it(`a 101 with ${case_.what}: 502 proxy.upstream_error, no tunnel, later bytes never reach the upstream (before: the 101 and a raw tunnel)`, async () => {
      answer = case_;
      afterSwitch.length = 0;
      const c = await rawTlsClient(pki, gw.port);
      c.socket.write(UPGRADE);
      await waitFor('the answer', () => c.received().includes('\r\n\r\n'), 15_000);
      if (!c.closed()) c.socket.write(SMUGGLED);
      await waitFor('the connection to close', c.closed, 15_000);
      assert.match(c.received(), /^HTTP\/1\.1 502 /, c.received());
      assert.match(c.received(), /"code":"proxy\.upstream_error"/);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(!afterSwitch.some((got) => got.includes('admin/secret')), JSON.stringify(afterSwitch));
      assert.equal(gw.gateway.openWebSockets(), 0);
      await waitFor('the record', () => gw.records.some((r) => r.path === '/public/chat' && r.code === 'proxy.upstream_error'), 15_000);
    });
  }

  it('held: a 101 that accepts this handshake opens the tunnel', async () => {
    answer = { upgrade: 'websocket', wrongAccept: false };
    afterSwitch.length = 0;
    const c = await rawTlsClient(pki, gw.port);
    c.socket.write(UPGRADE);
    await waitFor('the 101', () => c.received().includes('\r\n\r\n'), 15_000);
    assert.match(c.received(), /^HTTP\/1\.1 101 /);
    c.socket.write('frame bytes');
    await waitFor('the bytes through the tunnel', () => afterSwitch.at(-1) === 'frame bytes', 15_000);
    c.socket.destroy();
  });
});

describe('WebSocket: an idle tunnel is closed (--websocket-idle-timeout, section 51)', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let wss: WebSocketServer;
  let gw: TestGateway;

  before(async () => {
    ({ pki, cleanup } = await makePki());
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (socket) => {
      socket.send('hello');
      socket.on('message', (m) => socket.send(m));
    });
    const target = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    gw = await startTestGateway(pki, buildBundle([{ id: 'ws', listen_path: '/ws/', target_url: target, use_keyless: true }]), { websocketIdleTimeoutMs: 800 });
  });
  after(async () => {
    await gw.close();
    wss.close();
    cleanup();
  });

  it('a tunnel with no byte either way for the timeout is closed; one that talks stays open (before: an idle tunnel stayed open for good)', async () => {
    const open = async () => {
      const ws = new WebSocket(`wss://localhost:${gw.port}/ws/chat`, { ca: pki.ca.certPem });
      await new Promise((resolve, reject) => {
        ws.once('message', resolve);
        ws.once('error', reject);
      });
      return ws;
    };
    const idle = await open();
    const talking = await open();
    let idleClosedAt = 0;
    idle.once('close', () => (idleClosedAt = Date.now()));
    const startedAt = Date.now();
    const chat = setInterval(() => talking.send('ping'), 200);
    try {
      await waitFor('the idle tunnel to close', () => idleClosedAt > 0, 10_000);
      assert.ok(idleClosedAt - startedAt >= 500, `closed after ${idleClosedAt - startedAt} ms`);
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(talking.readyState, WebSocket.OPEN, 'a tunnel in use is not idle');
      assert.equal(gw.gateway.openWebSockets(), 1);
    } finally {
      clearInterval(chat);
      talking.close();
    }
  });
});
