// What an HTTP/1.1 upstream's answer becomes for an HTTP/2 client (docs/security.md section 51):
// Set-Cookie copies stay separate fields, connection-specific fields (which HTTP/2 forbids: a
// client resets a stream carrying one) never reach it, and a single-valued field the upstream
// sent twice is given as an HTTP/1.1 browser reads the copies instead of a 502. The upstream
// writes its answers byte for byte; the clients are curl (--http1.1, --http2) and node:http2.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { makePki, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

/** The answer the upstream writes for each path, lines joined with CRLF. */
const ANSWERS: Record<string, string[]> = {
  '/cookies': [
    'HTTP/1.1 200 OK',
    'Content-Length: 2',
    'Set-Cookie: a=1; Path=/; HttpOnly',
    'Set-Cookie: b=2, c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT',
    '',
    'ok',
  ],
  '/hop-by-hop': [
    'HTTP/1.1 200 OK',
    'Transfer-Encoding: chunked',
    'Connection: keep-alive, X-Internal',
    'X-Internal: secret',
    'Keep-Alive: timeout=5',
    'Proxy-Connection: keep-alive',
    'Upgrade: h2c',
    'TE: trailers',
    'X-Kept: yes',
    '',
    '2',
    'ok',
    '0',
    '',
    '',
  ],
  '/twice': [
    'HTTP/1.1 200 OK',
    'Content-Length: 2',
    'X-Content-Type-Options: nosniff',
    'X-Content-Type-Options: nosniff',
    'Content-Type: text/plain',
    'Content-Type: text/html',
    'Location: /a',
    'Location: /b',
    '',
    'ok',
  ],
};

let pki: TestPki;
let cleanup: () => void;
let upstream: Server;
/** The gateway's connections to the upstream: its pool would hold them (and this file's process) 60 s after the last test. */
const upstreamSockets = new Set<Socket>();
let gw: TestGateway;
before(async () => {
  ({ pki, cleanup } = await makePki());
  upstream = createServer((socket) => {
    upstreamSockets.add(socket);
    socket.once('close', () => upstreamSockets.delete(socket));
    let got = '';
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      const path = got.split(' ')[1];
      got = '';
      socket.write(ANSWERS[path]?.join('\r\n') ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  gw = await startTestGateway(pki, buildBundle([{ id: 'open', listen_path: '/', target_url: target, use_keyless: true, strip_listen_path: false }]));
});
after(async () => {
  await gw.close();
  upstream.close();
  for (const socket of upstreamSockets) socket.destroy();
  cleanup();
});

/** curl's answer head (lower-case field lines, in order), body and exit code. */
function curlAnswer(version: '--http1.1' | '--http2', path: string): Promise<{ code: number; status: number; fields: string[]; body: string; stderr: string }> {
  const args = ['-sS', '-i', version, '--max-time', '10', '--cacert', pki.certFile('ca'), `https://localhost:${gw.port}${path}`];
  return new Promise((resolve) => {
    execFile('curl', args, (err, stdout, stderr) => {
      const split = stdout.indexOf('\r\n\r\n');
      const lines = stdout.slice(0, split).split('\r\n');
      resolve({
        code: (err as { code?: number } | null)?.code ?? 0,
        status: Number(lines[0].split(' ')[1]),
        fields: lines.slice(1).map((l) => l.toLowerCase()),
        body: stdout.slice(split + 4),
        stderr,
      });
    });
  });
}

/** node:http2's reading of the answer's headers. */
function nodeH2Headers(path: string): Promise<Record<string, unknown>> {
  const session = connect(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
  return new Promise((resolve, reject) => {
    session.on('error', reject);
    const req = session.request({ ':path': path });
    req.on('response', (headers) => resolve({ ...headers }));
    req.on('error', reject);
    req.resume();
    req.on('close', () => session.close());
  });
}

test('held: two Set-Cookie from the upstream reach HTTP/1.1 and HTTP/2 clients as two fields, never joined', async () => {
  for (const version of ['--http1.1', '--http2'] as const) {
    const r = await curlAnswer(version, '/cookies');
    assert.equal(r.status, 200, `${version} ${r.stderr}`);
    assert.deepEqual(
      r.fields.filter((f) => f.startsWith('set-cookie:')),
      ['set-cookie: a=1; path=/; httponly', 'set-cookie: b=2, c=3; expires=wed, 21 oct 2026 07:28:00 gmt'],
      version,
    );
  }
  assert.deepEqual((await nodeH2Headers('/cookies'))['set-cookie'], ['a=1; Path=/; HttpOnly', 'b=2, c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT']);
});

test('held: connection-specific fields from the upstream (Connection and what it names, Keep-Alive, Proxy-Connection, Upgrade, TE, Transfer-Encoding) never reach an HTTP/2 client, which gets the answer', async () => {
  const forbidden = ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'transfer-encoding', 'x-internal'];
  const r = await curlAnswer('--http2', '/hop-by-hop');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok');
  const names = r.fields.map((f) => f.slice(0, f.indexOf(':')));
  assert.ok(names.includes('x-kept'));
  for (const name of forbidden) assert.ok(!names.includes(name), `${name} reached the HTTP/2 client`);
  const headers = await nodeH2Headers('/hop-by-hop');
  for (const name of forbidden) assert.equal(headers[name], undefined, name);
  // HTTP/1.1: the gateway's own Connection and framing, not the upstream's.
  const h1 = await curlAnswer('--http1.1', '/hop-by-hop');
  assert.equal(h1.body, 'ok');
  for (const name of ['x-internal', 'proxy-connection', 'upgrade', 'te']) assert.ok(!h1.fields.some((f) => f.startsWith(`${name}:`)), name);
});

test('a single-valued field the upstream sent twice reaches an HTTP/2 client as an HTTP/1.1 browser reads it: identical copies as one, others joined (before: 502 proxy.upstream_error)', async () => {
  const r = await curlAnswer('--http2', '/twice');
  assert.equal(r.status, 200, r.stderr);
  assert.equal(r.body, 'ok');
  assert.deepEqual(
    r.fields.filter((f) => /^(x-content-type-options|content-type|location):/.test(f)),
    ['x-content-type-options: nosniff', 'content-type: text/plain, text/html', 'location: /a, /b'],
  );
  const headers = await nodeH2Headers('/twice');
  assert.equal(headers[':status'], 200);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  // HTTP/1.1 clients get the copies as the upstream sent them, as before.
  const h1 = await curlAnswer('--http1.1', '/twice');
  assert.equal(h1.status, 200);
  assert.deepEqual(
    h1.fields.filter((f) => f.startsWith('content-type:')),
    ['content-type: text/plain', 'content-type: text/html'],
  );
  assert.ok(gw.records.filter((rec) => rec.path === '/twice').every((rec) => rec.status === 200 && rec.code === null));
});
