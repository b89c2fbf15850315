// The client's address as the upstream learns it (docs/security.md section 23): a client's own
// X-Forwarded-For, Forwarded, X-Real-IP and the like are claims anyone can make, so only a
// peer in --trusted-proxies may make them; from anyone else they are dropped and
// X-Forwarded-For is the peer address. Real clients over TLS: curl (HTTP/1.1 and HTTP/2, from
// 127.0.0.1 and, with --interface, from 127.0.0.2) and ws, to an HTTP/1.1 upstream, a
// proxy.http2 (h2c) upstream and a WebSocket upstream, all recording what they were sent.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer as createH2cServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { CertHeaderReader, certHeaderSpec } from '../runtime/client-cert-header.ts';
import { TrustedProxies } from '../runtime/trusted-proxies.ts';
import type { Bundle } from '../bundle/types.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { closeGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

/** What a client claims about where it came from. */
const CLAIMS = {
  'x-forwarded-for': '10.0.0.1',
  forwarded: 'for=10.0.0.1;proto=https',
  'x-real-ip': '10.0.0.1',
  'true-client-ip': '10.0.0.1',
  'x-client-ip': '10.0.0.1',
  'cf-connecting-ip': '10.0.0.1',
};
const CLAIMED_ONLY = ['forwarded', 'x-real-ip', 'true-client-ip', 'x-client-ip', 'cf-connecting-ip'];

/** An h2c upstream (proxy.http2) answering every request with the headers it got, as JSON. */
async function startH2cEcho(): Promise<{ server: Http2Server; url: string }> {
  const server = createH2cServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ headers: req.headers })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let pki: TestPki;
let cleanup: () => void;
let echo: EchoUpstream;
let h2c: Awaited<ReturnType<typeof startH2cEcho>>;
let wss: WebSocketServer;
/** The upgrade requests the WebSocket upstream got. */
const upgrades: IncomingHttpHeaders[] = [];
let bundle: Bundle;

before(async () => {
  ({ pki, cleanup, echo } = await startPkiAndEcho());
  h2c = await startH2cEcho();
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (socket, req) => {
    upgrades.push(req.headers);
    socket.send('hello');
  });
  bundle = buildBundle([
    { id: 'open', listen_path: '/open/', target_url: echo.url, use_keyless: true },
    { id: 'h2', listen_path: '/h2/', target_url: h2c.url, upstream_http2: true, use_keyless: true },
    { id: 'ws', listen_path: '/ws/', target_url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, use_keyless: true },
  ]);
});
after(async () => {
  // The gateway's upstream connections (undici's pool, the HTTP/2 session to the h2c upstream)
  // outlive a gateway's close(): left open, they kept this file's process from exiting.
  // closeGatewayTest closes them (closeAllUpstreams) before the h2c upstream is closed.
  await closeGatewayTest({ echo });
  await new Promise((resolve) => h2c?.server.close(resolve));
  wss?.close();
  cleanup?.();
});

/** The headers the upstream got for `path` (curl, HTTP/1.1 or HTTP/2, from `from`). */
async function seenUpstream(gw: TestGateway, path: string, http2: boolean, from = '127.0.0.1'): Promise<Record<string, string>> {
  const extra = [...(http2 ? ['--http2'] : []), ...(from === '127.0.0.1' ? [] : ['--interface', from])];
  const r = await curl(pki, gw.port, path, { headers: CLAIMS, extra });
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return r.json.headers ?? {};
}

/** The upgrade request's headers at the WebSocket upstream (ws over TLS, from `from`). */
async function seenByUpgrade(gw: TestGateway, from = '127.0.0.1'): Promise<IncomingHttpHeaders> {
  const before = upgrades.length;
  const ws = new WebSocket(`wss://localhost:${gw.port}/ws/chat`, { ca: pki.ca.certPem, headers: CLAIMS, localAddress: from });
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve());
      ws.once('error', reject);
    });
  } finally {
    ws.close();
  }
  assert.equal(upgrades.length, before + 1);
  return upgrades.at(-1)!;
}

function assertDropped(headers: Record<string, string | string[] | undefined>, peer: string, what: string): void {
  assert.equal(headers['x-forwarded-for'], peer, `${what}: X-Forwarded-For is the peer alone`);
  for (const name of CLAIMED_ONLY) assert.equal(headers[name], undefined, `${what}: ${name} dropped`);
  assert.equal(headers['x-forwarded-proto'], 'https', `${what}: X-Forwarded-Proto is the gateway's`);
}

describe('without --trusted-proxies every peer is the client', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(pki, bundle);
  });
  after(() => gw.close());

  it("a client's X-Forwarded-For, Forwarded, X-Real-IP (and the like) never reach the upstream: HTTP/1.1 and HTTP/2, both upstream paths", async () => {
    // Before: X-Forwarded-For "10.0.0.1, 127.0.0.1" and the others passed as sent.
    assertDropped(await seenUpstream(gw, '/open/x', false), '127.0.0.1', 'HTTP/1.1');
    assertDropped(await seenUpstream(gw, '/open/x', true), '127.0.0.1', 'HTTP/2');
    assertDropped(await seenUpstream(gw, '/h2/x', false), '127.0.0.1', 'HTTP/1.1 to a proxy.http2 upstream');
    assertDropped(await seenUpstream(gw, '/h2/x', true), '127.0.0.1', 'HTTP/2 to a proxy.http2 upstream');
  });

  it('a WebSocket upgrade: the same', async () => {
    assertDropped((await seenByUpgrade(gw)) as Record<string, string>, '127.0.0.1', 'WebSocket');
  });
});

describe('with --trusted-proxies (here 127.0.0.1; curl from 127.0.0.2 is another client)', () => {
  let gw: TestGateway;
  before(async () => {
    const reader = new CertHeaderReader(certHeaderSpec('client-cert'), new TrustedProxies(['127.0.0.1/32']));
    gw = await startTestGateway(pki, bundle, { certHeader: reader });
  });
  after(() => gw.close());

  it("a trusted proxy's headers are kept and the peer appended; another address's are dropped (HTTP/1.1, HTTP/2, both upstream paths, WebSocket)", async () => {
    for (const [path, http2] of [
      ['/open/x', false],
      ['/open/x', true],
      ['/h2/x', false],
      ['/h2/x', true],
    ] as const) {
      const what = `${path} over ${http2 ? 'HTTP/2' : 'HTTP/1.1'}`;
      const proxied = await seenUpstream(gw, path, http2);
      assert.equal(proxied['x-forwarded-for'], '10.0.0.1, 127.0.0.1', what);
      assert.equal(proxied.forwarded, 'for=10.0.0.1;proto=https, for=127.0.0.1', what);
      assert.equal(proxied['x-real-ip'], '10.0.0.1', what);
      assert.equal(proxied['true-client-ip'], '10.0.0.1', what);
      assert.equal(proxied['x-forwarded-proto'], 'https', what);
      // Before: the same as from the trusted proxy.
      assertDropped(await seenUpstream(gw, path, http2, '127.0.0.2'), '127.0.0.2', `${what} from 127.0.0.2`);
    }
    const viaProxy = await seenByUpgrade(gw);
    assert.equal(viaProxy['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
    assert.equal(viaProxy['x-real-ip'], '10.0.0.1');
    assertDropped((await seenByUpgrade(gw, '127.0.0.2')) as Record<string, string>, '127.0.0.2', 'WebSocket from 127.0.0.2');
  });
});
