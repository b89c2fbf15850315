// A broken or malicious upstream attacks the gateway through its answer (docs/security.md
// section 40): trailers HTTP/2 forbids, which node:http2 refused from an event handler after the
// answer's end and so took the whole process down; a reason phrase node:http refuses, which left
// the client waiting for good; HTTP2-Settings, which node:http2 refuses in an answer. The
// upstream here writes its answers byte for byte; the clients are curl and node:http2 over TLS.
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { closeGatewayTest } from './helpers/config-gateway.ts';
import { curl, makePki, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

/** What the upstream answers, by request path (anything else: 200 "ok"). */
const ANSWERS: Record<string, string> = {
  // Connection-specific fields as trailers: HTTP/2 forbids them (RFC 9113 8.2.2).
  '/trailers/hop-by-hop':
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nTransfer-Encoding: chunked\r\nUpgrade: x\r\nKeep-Alive: 1\r\nx-checksum: 7\r\n\r\n',
  // A single-value field twice: node:http2 refuses it as an array.
  '/trailers/twice': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n',
  '/reason': 'HTTP/1.1 200 O\x80K\r\nContent-Length: 2\r\n\r\nhi',
  '/http2-settings': 'HTTP/1.1 200 OK\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: 2\r\n\r\nhi',
};

let pki: TestPki;
let cleanup: () => void;
let upstream: Server;
let gw: TestGateway;
/** Exceptions nobody caught while a test ran (before: the HTTP/2 trailers' throw, which ends a real gateway's process). */
const uncaught: Error[] = [];
const onUncaught = (err: Error) => uncaught.push(err);

before(async () => {
  process.on('uncaughtException', onUncaught);
  upstream = createServer((socket: Socket) => {
    socket.on('error', () => {});
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      const path = got.split(' ')[1];
      got = '';
      socket.write(Buffer.from(ANSWERS[path] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'latin1'));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  ({ pki, cleanup } = await makePki());
  const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  gw = await startTestGateway(pki, buildBundle([{ id: 'open', listen_path: '/', target_url: target, use_keyless: true }]));
});
after(async () => {
  process.off('uncaughtException', onUncaught);
  await closeGatewayTest({ gw, cleanup });
  upstream.close();
});

/** GET `path` over HTTP/2 with node:http2: status, body, trailers, and how the stream ended. */
function h2Get(path: string): Promise<{ status: number; body: string; trailers: Record<string, unknown>; error: string | null }> {
  return new Promise((resolve) => {
    const session = connect(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    let trailers: Record<string, unknown> = {};
    let error: string | null = null;
    const timer = setTimeout(() => stream.destroy(new Error('no end within 5 s')), 5_000);
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('trailers', (t) => (trailers = { ...t }));
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('error', (err: Error) => (error = err.message));
    stream.on('close', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status, body, trailers, error });
    });
  });
}

test('trailers HTTP/2 forbids are dropped, the rest reach the client; the gateway lives on (before: an uncaught throw ended the process)', async () => {
  const r = await h2Get('/trailers/hop-by-hop');
  assert.equal(r.error, null);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hi');
  assert.equal(r.trailers['x-checksum'], '7');
  for (const name of ['transfer-encoding', 'upgrade', 'keep-alive']) assert.equal(r.trailers[name], undefined, name);
  const twice = await h2Get('/trailers/twice');
  assert.equal(twice.error, null);
  assert.equal(twice.trailers['content-type'], 'a, b');
  // Over HTTP/1.1 the same fields are not written as trailers either.
  const h1 = await curl(pki, gw.port, '/trailers/hop-by-hop', { extra: ['--http1.1', '--raw'] });
  assert.equal(h1.status, 200);
  assert.equal(h1.body, '2\r\nhi\r\n0\r\nx-checksum: 7\r\n\r\n');
  assert.deepEqual(
    uncaught.map((e) => e.message),
    [],
  );
  assert.equal((await h2Get('/next')).body, 'ok');
});

test('a reason phrase node:http refuses: 502 proxy.upstream_error at once (before: the client waited for good)', async () => {
  const r = await curl(pki, gw.port, '/reason', { extra: ['--http1.1', '--max-time', '5'] });
  assert.equal(r.status, 502);
  assert.equal(r.json.code, 'proxy.upstream_error');
  // HTTP/2 has no reason phrase: the answer goes through.
  assert.equal((await h2Get('/reason')).body, 'hi');
});

test('HTTP2-Settings in an answer is hop-by-hop: dropped, the answer reaches an HTTP/2 client (before: 502)', async () => {
  const r = await h2Get('/http2-settings');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hi');
  const h1 = await curl(pki, gw.port, '/http2-settings', { extra: ['--http1.1'] });
  assert.equal(h1.status, 200);
  assert.equal(h1.headers['http2-settings'], undefined);
});
