// Slow readers (docs/security.md section 57): a client that reads a large answer a little at a
// time, often enough that --client-idle-timeout never sees it idle, held its stream and an
// upstream connection for as long as the answer lasted. With --min-answer-rate the bytes that
// wait for it must be taken at that rate (plus the grace): a reader slower than that is cut
// (HTTP/1.1: its connection; HTTP/2: that stream alone), the upstream answer is abandoned and
// the request's record carries client.answer_too_slow. Real clients: a raw TLS socket and
// node:http2, each reading on a timer; curl for a reader that keeps up.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as connectH2, createServer as createH2cServer, constants as h2constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { closeAllUpstreams } from '../runtime/upstreams.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { serveConfig } from '../cli/commands/serve.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { curl, makePki, rawTlsClient, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

/** The reader takes this many bytes per tick... */
const READ_BYTES = 32 * 1024;
/**
 * ...every this many ms: 64 KiB/s. On loopback the window opens a 64 KiB segment at a time and
 * the kernel's buffers grow as the reader reads: at this pace a 'drain' comes often enough that
 * IDLE_MS never fires (probed on the code before: 2 MB read in 25 s, never cut); at 16 KiB/s the
 * idle timeout did cut HTTP/1.1 (after 20 s), not HTTP/2.
 */
const READ_EVERY_MS = 500;
const IDLE_MS = 10_000;
/** The floor: 512 KiB/s, plus 600 ms for each stretch of waiting (64 KiB waiting: 725 ms). */
const MIN_ANSWER_RATE = { bytesPerSecond: 512 * 1024, graceMs: 600 };

interface Answer {
  written: number;
  abandoned: boolean;
  finished: boolean;
}

/** /big/...: 256 MiB written with backpressure; the answer's fate is kept by path. The same over h2c, for a `proxy.http2` API. */
async function startUpstream(): Promise<{ answers: Map<string, Answer>; url: string; h2url: string; close(): Promise<void> }> {
  const answers = new Map<string, Answer>();
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const a: Answer = { written: 0, abandoned: false, finished: false };
    answers.set(req.url ?? '', a);
    res.on('close', () => {
      if (!res.writableFinished) a.abandoned = true;
    });
    const size = req.url?.startsWith('/small/') ? 8 * 1024 * 1024 : 256 * 1024 * 1024;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    const chunk = Buffer.alloc(64 * 1024, 120);
    const pump = () => {
      while (!res.destroyed && a.written < size) {
        a.written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (!res.destroyed) {
        a.finished = true;
        res.end();
      }
    };
    req.resume();
    pump();
  };
  const server: Server = createServer(answer);
  // node:http2's compat request and response have the shape the handler uses.
  const h2server = createH2cServer(answer as unknown as (req: Http2ServerRequest, res: Http2ServerResponse) => void);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => h2server.listen(0, '127.0.0.1', resolve));
  return {
    answers,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    h2url: `http://127.0.0.1:${(h2server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await closeAllUpstreams();
      h2server.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('slow readers: --min-answer-rate', { concurrency: true }, () => {
  let pki: TestPki;
  let cleanup: () => void;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let gw: TestGateway;

  before(async () => {
    ({ pki, cleanup } = await makePki());
    upstream = await startUpstream();
    const apis = [
      { id: 'h2up', listen_path: '/h2up/', target_url: upstream.h2url, upstream_http2: true, use_keyless: true },
      { id: 'open', listen_path: '/', target_url: upstream.url, use_keyless: true },
    ];
    gw = await startTestGateway(pki, buildBundle(apis), {
      clientIdleTimeoutMs: IDLE_MS,
      minAnswerRate: MIN_ANSWER_RATE,
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    cleanup();
  });

  /** By the path's end: a `proxy.http2` API's upstream sees the path with or without its listen path. */
  const answerOf = (path: string) => waitFor(`the upstream to answer ${path}`, () => [...upstream.answers].find(([url]) => url.endsWith(path))?.[1], 15_000);

  /** Reads `from` at READ_BYTES per READ_EVERY_MS: paused once it has that tick's share, resumed at the next tick. */
  function pacedReader(from: { on(e: 'data', f: (c: Buffer) => void): unknown; pause(): unknown; resume(): unknown }): { read(): number; stop(): void } {
    let read = 0;
    let allowed = READ_BYTES;
    from.on('data', (c: Buffer) => {
      read += c.length;
      if (read >= allowed) from.pause();
    });
    const timer = setInterval(() => {
      allowed = read + READ_BYTES;
      from.resume();
    }, READ_EVERY_MS);
    return { read: () => read, stop: () => clearInterval(timer) };
  }

  it('HTTP/1.1: a client that takes 32 KiB every 500 ms is cut, the upstream answer abandoned, client.answer_too_slow', async () => {
    const { socket } = await rawTlsClient(pki, gw.port);
    socket.write('GET /big/h1 HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const reader = pacedReader(socket);
    try {
      const a = await answerOf('/big/h1');
      // Before: read on for as long as the answer lasted (256 MiB at 64 KiB/s: over an hour), never idle.
      // (The client itself reads on for a while: what the kernel's buffers held when the gateway closed.)
      await waitFor(`the upstream answer to be abandoned (${reader.read()} bytes read, ${a.written} written)`, () => a.abandoned, 20_000);
      assert.equal(a.finished, false);
      const record = await waitFor(() => gw.records.find((r) => r.path === '/big/h1'), 10_000);
      assert.equal(record.code, 'client.answer_too_slow');
      assert.equal(record.status, 200); // the upstream's, already sent
    } finally {
      reader.stop();
      socket.destroy();
    }
  });

  it('HTTP/2: a stream read 32 KiB every 500 ms is reset (CANCEL), its session keeps serving, client.answer_too_slow', async () => {
    const session = connectH2(`https://localhost:${gw.port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    const stream = session.request({ ':path': '/big/h2' });
    stream.on('error', () => {});
    const closed = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)));
    // Flow control: node:http2 sends WINDOW_UPDATE for what the application read, nothing more.
    const reader = pacedReader(stream);
    try {
      const a = await answerOf('/big/h2');
      const code = await Promise.race([closed, new Promise<string>((resolve) => setTimeout(() => resolve(`not cut (${reader.read()} bytes read)`), 20_000))]);
      assert.equal(code, h2constants.NGHTTP2_CANCEL);
      await waitFor('the upstream answer to be abandoned', () => a.abandoned, 10_000);
      const record = await waitFor(() => gw.records.find((r) => r.path === '/big/h2'), 10_000);
      assert.equal(record.code, 'client.answer_too_slow');
      // The stream alone: the same session is answered.
      const next = session.request({ ':path': '/small/after-h2' });
      next.on('error', () => {});
      let size = 0;
      next.on('data', (c: Buffer) => (size += c.length));
      const status = await new Promise<number>((resolve) => next.once('response', (h) => resolve(Number(h[':status']))));
      await new Promise((resolve) => next.once('end', resolve));
      assert.equal(status, 200);
      assert.equal(size, 8 * 1024 * 1024);
    } finally {
      reader.stop();
      session.destroy();
    }
  });

  // Section 62: a client that stops reading altogether (its stream's window 0: node:http2's
  // initialWindowSize), on both upstream paths, and an HTTP/1.1 client that reads nothing from a
  // `proxy.http2` upstream's answer. Cut within the grace plus 64 KiB at 512 KiB/s (a second or two).
  for (const [name, path] of [
    ['the undici pool (held)', '/big/h2-window0'],
    ['a proxy.http2 upstream', '/h2up/big/h2up-window0'],
  ]) {
    it(`HTTP/2, ${name}: a client whose stream window stays 0 is reset (CANCEL), the upstream answer abandoned, client.answer_too_slow`, async () => {
      const session = connectH2(`https://localhost:${gw.port}`, { ca: pki.ca.certPem, settings: { initialWindowSize: 0 } });
      session.on('error', () => {});
      const stream = session.request({ ':path': path });
      stream.on('error', () => {});
      const closed = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)));
      try {
        const a = await answerOf(path.slice(path.lastIndexOf('/')));
        // Before, on a proxy.http2 upstream: held until --upstream-timeout (30 s), recorded as the upstream's fault.
        const code = await Promise.race([closed, new Promise<string>((resolve) => setTimeout(() => resolve('not cut in 8 s'), 8_000))]);
        assert.equal(code, h2constants.NGHTTP2_CANCEL);
        await waitFor('the upstream answer to be abandoned', () => a.abandoned, 10_000);
        const record = await waitFor(() => gw.records.find((r) => r.path === path), 10_000);
        assert.equal(record.code, 'client.answer_too_slow');
      } finally {
        session.destroy();
      }
    });
  }

  it('HTTP/1.1, a proxy.http2 upstream: a client that reads nothing is cut, the upstream stream cancelled, client.answer_too_slow', async () => {
    const { socket } = await rawTlsClient(pki, gw.port);
    socket.pause();
    socket.write('GET /h2up/big/h1-unread HTTP/1.1\r\nHost: localhost\r\n\r\n');
    try {
      const a = await answerOf('/h1-unread');
      await waitFor(`the upstream answer to be abandoned (${a.written} written)`, () => a.abandoned, 8_000);
      const record = await waitFor(() => gw.records.find((r) => r.path === '/h2up/big/h1-unread'), 10_000);
      assert.equal(record.code, 'client.answer_too_slow');
    } finally {
      socket.destroy();
    }
  });

  it('held: a client that reads as fast as it can gets the whole answer (curl, HTTP/1.1 and HTTP/2)', async () => {
    const [h1, h2] = await Promise.all([
      curl(pki, gw.port, '/small/curl-h1', { extra: ['-o', '/dev/null', '-w', '%{size_download}'] }),
      curl(pki, gw.port, '/small/curl-h2', { extra: ['--http2', '-o', '/dev/null', '-w', '%{size_download}'] }),
    ]);
    for (const r of [h1, h2]) {
      assert.equal(r.status, 200);
      assert.equal(r.body, String(8 * 1024 * 1024));
    }
  });
});

describe('serve flags', () => {
  const base = ['--bundle', 'b.json', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'];
  it('--min-answer-rate BYTES|off and --min-answer-rate-grace DURATION (or their variables); bad values name the flag', () => {
    assert.deepEqual(serveConfig(base, {}).config.minAnswerRate, { bytesPerSecond: 4096, graceMs: 5_000 });
    assert.deepEqual(serveConfig([...base, '--min-answer-rate', '1000', '--min-answer-rate-grace', '2s'], {}).config.minAnswerRate, {
      bytesPerSecond: 1000,
      graceMs: 2_000,
    });
    assert.equal(serveConfig([...base, '--min-answer-rate', 'off'], {}).config.minAnswerRate, null);
    assert.deepEqual(serveConfig(base, { MTLSGATE_MIN_ANSWER_RATE: '500', MTLSGATE_MIN_ANSWER_RATE_GRACE: '10s' }).config.minAnswerRate, {
      bytesPerSecond: 500,
      graceMs: 10_000,
    });
    // The body's flags stay their own.
    assert.deepEqual(serveConfig([...base, '--min-answer-rate', 'off'], {}).config.minBodyRate, { bytesPerSecond: 240, graceMs: 5_000 });
    assert.throws(() => serveConfig([...base, '--min-answer-rate', '4k'], {}), /--min-answer-rate must be a number of bytes per second .* not "4k"/);
    assert.throws(() => serveConfig([...base, '--min-answer-rate', '0'], {}), /--min-answer-rate\b.*"0"/);
    assert.throws(() => serveConfig(base, { MTLSGATE_MIN_ANSWER_RATE_GRACE: 'soon' }), /MTLSGATE_MIN_ANSWER_RATE_GRACE\b.*"soon"/);
  });
});
