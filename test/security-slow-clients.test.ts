// Slow clients at the gateway: a request body that stops coming, and a client that stops
// reading a large answer, must not hold an upstream connection for longer than the client
// idle timeout (--client-idle-timeout; here 1 s). Real clients: node:http2 with a body that
// stalls (its session kept busy with PINGs, so the session's idle timeout never helps), a raw
// TLS socket that stalls or never reads. And what must not be cut: a slow upstream after a
// complete body, a bodiless request to a slow upstream. The same for a body sent to a
// `proxy.http2` upstream (HTTP/2 and HTTP/1.1 clients).
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as connectH2, constants as h2constants, createServer as createH2cServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { closeAllUpstreams } from '../runtime/upstreams.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { curl, makePki, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { settledWithin, waitFor } from './helpers/ops-fixtures.ts';

interface Seen {
  path: string;
  /** The request body arrived whole. */
  ended: boolean;
  /** The request closed before its answer was finished (the gateway gave up on it). */
  abandoned: boolean;
  /** Bytes of the answer written (for /big/). */
  written: number;
}

/** /big/: an endless answer written with backpressure; /slow/: answers after 3 s; else echoes the body size. */
async function startUpstream(): Promise<{ server: Server; url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const s: Seen = { path: req.url ?? '', ended: false, abandoned: false, written: 0 };
    seen.push(s);
    res.on('close', () => {
      if (!res.writableFinished) s.abandoned = true;
    });
    let size = 0;
    req.on('data', (c: Buffer) => (size += c.length));
    req.on('end', () => {
      s.ended = true;
      if (s.path.startsWith('/big/')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 120);
        const pump = () => {
          while (!res.destroyed && s.written < 1024 * 1024 * 1024) {
            s.written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end();
        };
        pump();
        return;
      }
      const answer = () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`got ${size}`);
      if (s.path.startsWith('/slow/')) setTimeout(answer, 3_000);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    seen,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function tls(pki: TestPki, port: number, alpn = ['http/1.1']): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem, ALPNProtocols: alpn }, () => resolve(socket));
    socket.once('error', reject);
  });
}

// The cases wait on the gateway's timeouts and the slow upstream, each on its own connection
// and path: they wait side by side.
describe('slow clients: the client idle timeout frees the upstream connection', { concurrency: true }, () => {
  let pki: TestPki;
  let cleanup: () => void;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let gw: TestGateway;

  before(async () => {
    ({ pki, cleanup } = await makePki());
    upstream = await startUpstream();
    gw = await startTestGateway(pki, buildBundle([{ id: 'open', listen_path: '/', target_url: upstream.url, use_keyless: true }]), {
      clientIdleTimeoutMs: 1_000,
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    cleanup();
  });

  const seenAt = (path: string) => waitFor(`the upstream to see ${path}`, () => upstream.seen.find((s) => s.path === path), 15_000);

  it('HTTP/2: a request body that stops coming gets 408 and its upstream request is aborted (the session kept busy with PINGs)', async () => {
    const session = connectH2(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    const pings = setInterval(() => session.ping(() => {}), 200);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/h2-stall/x', 'content-type': 'text/plain' }, { endStream: false });
      stream.on('error', () => {});
      stream.write('the first bytes, then nothing');
      const answer = new Promise<number | 'reset'>((resolve) => {
        stream.once('response', (h) => resolve(Number(h[':status'])));
        stream.once('close', () => resolve('reset'));
      });
      const s = await seenAt('/h2-stall/x');
      // Before: nothing for as long as the session lived (its 65 s idle timeout, refreshed by every PING).
      const status = await settledWithin(answer, 15_000, 'none');
      assert.equal(status, 408);
      await waitFor('the upstream request to be aborted', () => s.abandoned, 15_000);
      assert.equal(s.ended, false);
      await waitFor(() => gw.records.some((r) => r.path === '/h2-stall/x'), 10_000);
      const record = gw.records.find((r) => r.path === '/h2-stall/x')!;
      assert.equal(record.code, 'client.idle_timeout');
    } finally {
      clearInterval(pings);
      session.destroy();
    }
  });

  it('HTTP/1.1: a request body that stops coming gets 408 and its upstream request is aborted', async () => {
    const socket = await tls(pki, gw.port);
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => {});
    socket.write('POST /h1-stall/x HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nthe first bytes');
    const s = await seenAt('/h1-stall/x');
    // Before: node:http's requestTimeout (300 s) was the only bound.
    await waitFor('a 408 answer', () => text.startsWith('HTTP/1.1 408'), 15_000);
    assert.match(text, /client\.idle_timeout/);
    await waitFor('the upstream request to be aborted', () => s.abandoned, 15_000);
    assert.equal(s.ended, false);
    socket.destroy();
  });

  it('HTTP/1.1: a client that stops reading a large answer is cut, and the upstream answer with it', async () => {
    const socket = await tls(pki, gw.port);
    socket.on('error', () => {});
    socket.write('GET /big/h1 HTTP/1.1\r\nHost: localhost\r\n\r\n');
    socket.pause(); // never reads: TCP and the gateway's buffers fill, then backpressure
    const s = await seenAt('/big/h1');
    // Before: the upstream answer stayed paused on backpressure for as long as the client lived.
    await waitFor(`the upstream answer to be abandoned (${s.written} bytes written)`, () => s.abandoned, 20_000);
    assert.ok(s.written < 1024 * 1024 * 1024);
    await waitFor(() => gw.records.some((r) => r.path === '/big/h1'), 10_000);
    assert.equal(gw.records.find((r) => r.path === '/big/h1')!.code, 'client.idle_timeout');
    socket.destroy();
  });

  it('HTTP/2: a stream whose client stops reading a large answer is cut, and the upstream answer with it', async () => {
    const session = connectH2(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    const pings = setInterval(() => session.ping(() => {}), 200);
    try {
      const stream = session.request({ ':path': '/big/h2' });
      stream.on('error', () => {});
      stream.pause(); // flow control: the stream's window closes, the gateway's writes back up
      const s = await seenAt('/big/h2');
      await waitFor(`the upstream answer to be abandoned (${s.written} bytes written)`, () => s.abandoned, 20_000);
      await waitFor(() => gw.records.some((r) => r.path === '/big/h2'), 10_000);
      assert.equal(gw.records.find((r) => r.path === '/big/h2')!.code, 'client.idle_timeout');
    } finally {
      clearInterval(pings);
      session.destroy();
    }
  });

  it('not cut: a slow upstream after a complete body, a bodiless request to a slow upstream (HTTP/1.1 and HTTP/2)', async () => {
    // The three wait on the slow upstream (3 s each) at once, each on its own connection.
    const [post, get, h2post] = await Promise.all([
      curl(pki, gw.port, '/slow/post', { method: 'POST', data: 'x'.repeat(5000) }),
      curl(pki, gw.port, '/slow/get', { extra: ['--http2'] }),
      curl(pki, gw.port, '/slow/h2post', { method: 'POST', data: 'y'.repeat(100), extra: ['--http2'] }),
    ]);
    assert.equal(post.status, 200);
    assert.equal(post.body, 'got 5000');
    assert.equal(get.status, 200);
    assert.equal(h2post.status, 200);
    assert.equal(h2post.body, 'got 100');
  });
});

describe('slow clients: a request body to a proxy.http2 upstream', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let upstream: Http2Server;
  /** Streams the upstream got: whether the body ended (END_STREAM), and the RST_STREAM code they closed with. */
  const streams = new Map<string, { ended: boolean; rstCode: number | null }>();
  let gw: TestGateway;

  before(async () => {
    ({ pki, cleanup } = await makePki());
    upstream = createH2cServer();
    upstream.on('stream', (stream, headers) => {
      const s = { ended: false, rstCode: null as number | null };
      streams.set(String(headers[':path']), s);
      stream.on('error', () => {});
      let size = 0;
      stream.on('data', (c: Buffer) => (size += c.length));
      stream.on('end', () => {
        // node:http2 also ends the body of a stream reset meanwhile: that is no END_STREAM.
        if (stream.closed || stream.destroyed) return;
        s.ended = true;
        stream.respond({ ':status': 200 });
        stream.end(`got ${size}`);
      });
      stream.once('close', () => (s.rstCode = stream.rstCode ?? null));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    // --upstream-timeout stays at its 30 s: before, a stalled body waited for it (504), the client idle timeout unheard.
    gw = await startTestGateway(pki, buildBundle([{ id: 'h2up', listen_path: '/', target_url: url, upstream_http2: true, use_keyless: true }]), {
      clientIdleTimeoutMs: 1_000,
    });
  });
  after(async () => {
    await gw.close();
    await closeAllUpstreams();
    upstream.close();
    cleanup();
  });

  it('HTTP/2 and HTTP/1.1 clients: a body that stops coming gets 408 and the upstream stream is cancelled', async () => {
    const session = connectH2(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    const socket = await tls(pki, gw.port);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/h2/stall', 'content-type': 'text/plain' }, { endStream: false });
      stream.on('error', () => {});
      stream.write('the first bytes, then nothing');
      const h2Status = new Promise<number | 'reset'>((resolve) => {
        stream.once('response', (h) => resolve(Number(h[':status'])));
        stream.once('close', () => resolve('reset'));
      });
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      socket.on('error', () => {});
      socket.write('POST /h1/stall HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nthe first bytes');
      await waitFor('the upstream to get both', () => streams.has('/h2/stall') && streams.has('/h1/stall'), 15_000);
      const status = await settledWithin(h2Status, 15_000, 'none');
      assert.equal(status, 408);
      await waitFor('a 408 answer on HTTP/1.1', () => text.startsWith('HTTP/1.1 408'), 15_000);
      assert.match(text, /client\.idle_timeout/);
      for (const path of ['/h2/stall', '/h1/stall']) {
        await waitFor(`the upstream stream ${path} to close`, () => streams.get(path)!.rstCode !== null, 15_000);
        assert.deepEqual(streams.get(path), { ended: false, rstCode: h2constants.NGHTTP2_CANCEL });
        const record = await waitFor(() => gw.records.find((r) => r.path === path), 10_000);
        assert.equal(record.code, 'client.idle_timeout');
      }
    } finally {
      session.destroy();
      socket.destroy();
    }
  });

  it('a client that leaves mid-body (HTTP/2 RST_STREAM, HTTP/1.1 closing its connection): the upstream stream is cancelled, its body never ended as if whole', async () => {
    const session = connectH2(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    // Reset by its signal: RST_STREAM(CANCEL) alone (stream.close() would end the body first, and the body would be whole).
    const reset = new AbortController();
    const stream = session.request({ ':method': 'POST', ':path': '/h2/leaves', 'content-type': 'text/plain' }, { endStream: false, signal: reset.signal });
    stream.on('error', () => {});
    stream.write('the first half of a body');
    const socket = await tls(pki, gw.port);
    socket.on('error', () => {});
    socket.write('POST /h1/leaves HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nthe first half');
    try {
      await waitFor('the upstream to get both', () => streams.has('/h2/leaves') && streams.has('/h1/leaves'), 15_000);
      reset.abort();
      socket.destroy();
      for (const path of ['/h2/leaves', '/h1/leaves']) {
        // Before: END_STREAM then RST_STREAM(NO_ERROR): the upstream took the half body as the whole one and answered it.
        await waitFor(`the upstream stream ${path} to close`, () => streams.get(path)!.rstCode !== null, 15_000);
        assert.deepEqual(streams.get(path), { ended: false, rstCode: h2constants.NGHTTP2_CANCEL });
      }
    } finally {
      session.destroy();
    }
  });
});
