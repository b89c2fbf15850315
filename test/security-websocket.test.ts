// WebSocket tunnels attacked as a client would (raw TLS sockets, `ws`): a tunnel is opened only
// when the upstream accepts the upgrade, talks to the upstream as every other request does
// (proxy.upstream_tls), and is decided again while it is open, not only on a bundle reload.
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
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
