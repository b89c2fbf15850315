// The answer direction (docs/security.md section 45): a 204 or 304 whose Content-Length undici
// counts as missing bytes, an answer that comes before the whole request body, and what held
// (hop-by-hop fields to an HTTP/2 client, 1xx, an answer cut short). The upstream writes its
// answers byte for byte; the clients are raw TLS sockets, node:http2 and curl.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect, constants as h2, createServer as createHttp2Server, type Http2Server } from 'node:http2';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { closeGatewayTest } from './helpers/config-gateway.ts';
import { curl, makePki, rawTlsClient, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

/** What the upstream answers, by request path; `close`: it closes the connection after. */
const ANSWERS: Record<string, { text: string; close?: boolean }> = {
  // RFC 9110 8.6: a 304 may say the Content-Length of what a 200 would have sent.
  '/304': { text: 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n' },
  // Content-Length on a 204 is the upstream's mistake (RFC 9110 8.6 forbids it).
  '/204': { text: 'HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n' },
  // Answered at once, the request body unread.
  '/early': { text: 'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\n\r\nno' },
  '/hop-by-hop': {
    text: 'HTTP/1.1 200 OK\r\nConnection: x-foo\r\nx-foo: 1\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nx-kept: 2\r\nContent-Length: 2\r\n\r\nhi',
  },
  '/early-hints': { text: 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi' },
  '/cut-length': { text: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhi', close: true },
  '/cut-chunked': { text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n', close: true },
};

let pki: TestPki;
let cleanup: () => void;
let upstream: Server;
/**
 * An HTTP/2 (h2c) upstream behind /h2/ (proxy.http2): /h2/early is 413 at once, /h2/reset resets
 * the stream before any answer (INTERNAL_ERROR), /h2/reset-odd too, with a code RFC 9113 does
 * not name (0x99), the rest 200 "ok".
 */
let h2Upstream: Http2Server;
let gw: TestGateway;

before(async () => {
  upstream = createServer((socket: Socket) => {
    socket.on('error', () => {});
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end === -1) return;
      const path = got.split(' ')[1];
      // Whatever follows the head (a body) is never read: the answers do not wait for it.
      got = '';
      const answer = ANSWERS[path] ?? { text: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' };
      socket.write(Buffer.from(answer.text, 'latin1'));
      if (answer.close) socket.end();
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  h2Upstream = createHttp2Server();
  h2Upstream.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    if (headers[':path'] === '/reset') return stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    if (headers[':path'] === '/reset-odd') return stream.close(0x99);
    stream.respond({ ':status': headers[':path'] === '/early' ? 413 : 200 });
    stream.end(headers[':path'] === '/early' ? 'no' : 'ok');
  });
  await new Promise<void>((resolve) => h2Upstream.listen(0, '127.0.0.1', resolve));
  ({ pki, cleanup } = await makePki());
  const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const h2Target = `http://127.0.0.1:${(h2Upstream.address() as AddressInfo).port}`;
  gw = await startTestGateway(
    pki,
    buildBundle([
      { id: 'h2', listen_path: '/h2/', target_url: h2Target, use_keyless: true, upstream_http2: true },
      { id: 'open', listen_path: '/', target_url: target, use_keyless: true },
    ]),
  );
});
after(async () => {
  await closeGatewayTest({ gw, cleanup });
  upstream.close();
  h2Upstream.close();
});

/** GET `path` over HTTP/2: status, headers, body and the stream's reset code. */
function h2Get(path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string; reset: number }> {
  return new Promise((resolve) => {
    const session = connect(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    const stream = session.request({ ':path': path });
    let headers: Record<string, unknown> = {};
    let body = '';
    const timer = setTimeout(() => stream.destroy(), 5_000);
    stream.on('response', (h) => (headers = { ...h }));
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('error', () => {});
    stream.on('close', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status: Number(headers[':status'] ?? 0), headers, body, reset: stream.rstCode ?? 0 });
    });
  });
}

/** Writes `text` on a fresh HTTP/1.1 connection: what came back within `ms`, and whether the gateway closed it. */
async function h1Raw(text: string, ms = 3_000): Promise<{ got: string; closed: boolean }> {
  const c = await rawTlsClient(pki, gw.port);
  c.socket.write(text);
  await Promise.race([c.whenClosed, new Promise((r) => setTimeout(r, ms))]);
  const out = { got: c.received(), closed: c.closed() };
  c.socket.destroy();
  return out;
}

test('an upstream 304 or 204 with Content-Length: the answer reaches the client, and the connection serves the next request (before: HTTP/1.1 got nothing, HTTP/2 a reset stream)', async () => {
  const pipelined = await h1Raw(
    'GET /304 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /204 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /next HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
  );
  const answers = pipelined.got.split(/(?=HTTP\/1\.1 )/);
  assert.equal(answers.length, 3, pipelined.got);
  assert.match(answers[0], /^HTTP\/1\.1 304 [\s\S]*etag: "v1"/i);
  assert.match(answers[1], /^HTTP\/1\.1 204 /);
  assert.match(answers[2], /^HTTP\/1\.1 200 [\s\S]*\r\n\r\nok$/);
  for (const [path, status] of [
    ['/304', 304],
    ['/204', 204],
  ] as const) {
    const r = await h2Get(path);
    assert.equal(r.status, status, `${path}: ${JSON.stringify(r)}`);
    assert.equal(r.reset, 0, path);
  }
  assert.deepEqual(
    gw.records.filter((r) => r.status === 304 || r.status === 204).map((r) => r.code),
    [null, null, null, null],
  );
});

test("an answer before the whole request body ends its HTTP/1.1 connection, from an HTTP/1.1 or an HTTP/2 upstream (before: a request sent after the body waited for node:http's 300 s requestTimeout)", async () => {
  for (const path of ['/early', '/h2/early']) {
    const c = await rawTlsClient(pki, gw.port);
    c.socket.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n${'a'.repeat(1000)}`);
    const started = Date.now();
    while (!/\r\n\r\n(2\r\n)?no/.test(c.received()) && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 20));
    assert.match(c.received(), /^HTTP\/1\.1 413 [\s\S]*connection: close/i, path);
    // The rest of the body and a second request: never served on this connection, which ends.
    if (!c.closed()) c.socket.write(`${'a'.repeat(99_000)}GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    await Promise.race([c.whenClosed, new Promise((r) => setTimeout(r, 5_000))]);
    assert.ok(c.closed(), `${path}: the connection is closed`);
    assert.doesNotMatch(c.received(), /ok/, path);
  }
  // curl sending a body of 4 MB reads the early answer.
  const file = join(pki.dir, 'big-body');
  writeFileSync(file, Buffer.alloc(4 << 20, 97));
  const r = await curl(pki, gw.port, '/early', { data: `@${file}`, extra: ['--http1.1'] });
  assert.equal(r.status, 413);
  assert.equal(r.body, 'no');
});

test('held: an HTTP/2 client gets the early answer on its stream, the connection lives on', async () => {
  const session = connect(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
  session.on('error', () => {});
  const early = await new Promise<number>((resolve) => {
    const stream = session.request({ ':path': '/early', ':method': 'POST' });
    stream.on('response', (h) => resolve(Number(h[':status'])));
    stream.on('error', () => {});
    stream.write(Buffer.alloc(100_000, 97));
  });
  assert.equal(early, 413);
  const next = await new Promise<string>((resolve) => {
    const stream = session.request({ ':path': '/next' });
    let body = '';
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('end', () => resolve(body));
  });
  assert.equal(next, 'ok');
  session.close();
});

test('held: hop-by-hop fields and what Connection names never reach the client (HTTP/1.1 and HTTP/2); a 103 is dropped, the answer relayed', async () => {
  const overH2 = await h2Get('/hop-by-hop');
  assert.equal(overH2.status, 200);
  assert.equal(overH2.body, 'hi');
  assert.equal(overH2.headers['x-kept'], '2');
  const overH1 = await curl(pki, gw.port, '/hop-by-hop', { extra: ['--http1.1'] });
  for (const headers of [overH2.headers, overH1.headers])
    for (const name of ['x-foo', 'upgrade', 'proxy-connection']) assert.equal(headers[name], undefined, name);
  // node:http writes its own Keep-Alive to an HTTP/1.1 client; the upstream's never goes.
  assert.equal(overH2.headers['keep-alive'], undefined);
  assert.equal(overH1.headers['keep-alive'], 'timeout=65');
  assert.equal((await h2Get('/early-hints')).body, 'hi');
  assert.equal((await curl(pki, gw.port, '/early-hints', { extra: ['--http1.1'] })).body, 'hi');
});

test('held: an answer cut short looks cut short: HTTP/1.1 without the last chunk or short of its Content-Length, HTTP/2 reset', async () => {
  const byLength = await h1Raw('GET /cut-length HTTP/1.1\r\nHost: localhost\r\n\r\n');
  assert.ok(byLength.closed);
  assert.match(byLength.got, /content-length: 10\r\n[\s\S]*\r\n\r\nhi$/i);
  const chunked = await h1Raw('GET /cut-chunked HTTP/1.1\r\nHost: localhost\r\n\r\n');
  assert.ok(chunked.closed);
  assert.match(chunked.got, /transfer-encoding: chunked\r\n\r\n2\r\nhi\r\n$/i);
  for (const path of ['/cut-length', '/cut-chunked']) {
    const r = await h2Get(path);
    assert.equal(r.body, 'hi');
    assert.notEqual(r.reset, 0, path);
  }
  // The record says why (upstream_error): undici's code for the closed upstream connection.
  const cut = gw.records.filter((r) => r.path === '/cut-length' || r.path === '/cut-chunked');
  assert.deepEqual(new Set(cut.map((r) => `${r.code} ${r.upstreamError}`)), new Set(['proxy.upstream_error UND_ERR_SOCKET']));
});

test('a proxy.http2 upstream that resets the stream: 502 without the cause, which the record names (upstream_error)', async () => {
  const [early, odd, ok] = await Promise.all([curl(pki, gw.port, '/h2/reset'), h2Get('/h2/reset-odd'), curl(pki, gw.port, '/h2/fine')]);
  assert.equal(early.status, 502);
  assert.deepEqual(early.json, { error: 'There was a problem proxying the request', code: 'proxy.upstream_error' });
  assert.equal(odd.status, 502);
  assert.equal(odd.body, early.body, 'the same answer whatever the cause');
  assert.equal(ok.status, 200);
  const record = (path: string) => [...gw.records].reverse().find((r) => r.path === path);
  assert.equal(record('/h2/reset')?.upstreamError, 'NGHTTP2_INTERNAL_ERROR');
  assert.equal(record('/h2/reset-odd')?.upstreamError, 'rst 153');
  assert.ok(!('upstreamError' in record('/h2/fine')!), 'an answered request has no cause');
});

/**
 * Writes a POST /early head declaring `declared` bytes, then `chunk`s of the body without reading
 * a byte (as a client that sends its whole request before it reads the answer), every `gapMs`,
 * until `total` bytes are written or a write fails. Then reads what came back.
 */
async function sendWithoutReading(declared: number, total: number, chunk: number, gapMs: number) {
  const c = await rawTlsClient(pki, gw.port);
  c.socket.pause();
  const started = Date.now();
  let writeError: string | null = null;
  c.socket.once('error', (err: Error & { code?: string }) => (writeError = err.code ?? err.message));
  c.socket.write(`POST /early HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${declared}\r\n\r\n`);
  let sent = 0;
  while (sent < total && writeError === null && !c.socket.destroyed) {
    const ok = c.socket.write(Buffer.alloc(chunk, 97));
    sent += chunk;
    if (!ok) await new Promise((r) => setTimeout(r, gapMs));
    else if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  }
  const wroteFor = Date.now() - started;
  c.socket.resume();
  await Promise.race([c.whenClosed, new Promise((r) => setTimeout(r, 8_000))]);
  const out = { got: c.received(), sent, wroteFor, writeError, closed: c.closed(), closedAfter: Date.now() - started };
  c.socket.destroy();
  return out;
}

test('an early answer reaches a client still sending its body: the gateway reads and drops the rest before it closes (lingering close) (before: the close reset the connection, the client never read the 413)', async () => {
  // 3 MiB sent in 64 KiB chunks, the answer read only once all is written: within the bound.
  const r = await sendWithoutReading(3 << 20, 3 << 20, 64 << 10, 2);
  assert.equal(r.writeError, null, JSON.stringify({ ...r, got: r.got.slice(0, 200) }));
  assert.match(r.got, /^HTTP\/1\.1 413 [\s\S]*connection: close[\s\S]*\r\n\r\nno$/i);
  assert.ok(r.closed, 'the gateway closed the connection at the end of the linger');
});

test('a client that keeps sending after an early answer is cut at the lingering bound (8 MiB, or 5 s)', async () => {
  // As fast as it goes: the byte bound. The client declared 1 GiB and would send 64 MiB.
  const fast = await sendWithoutReading(1 << 30, 64 << 20, 64 << 10, 0);
  assert.ok(fast.sent < 24 << 20, `cut after ${fast.sent} bytes`);
  assert.ok(fast.closedAfter < 5_000, `closed after ${fast.closedAfter} ms`);
  // Slowly (1 KiB every 20 ms): the time bound.
  const slow = await sendWithoutReading(1 << 30, 1 << 20, 1 << 10, 20);
  assert.ok(slow.writeError !== null || slow.closed, JSON.stringify({ ...slow, got: '' }));
  assert.ok(slow.wroteFor >= 4_500 && slow.wroteFor < 7_000, `cut after ${slow.wroteFor} ms`);
  // Neither read before the cut: the bound is where the answer is given up on.
});
