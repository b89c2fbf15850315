// Request bodies that trickle (docs/security.md section 24): a body slower on average than the
// minimum rate (here 1000 bytes/s after a 2 s grace period; the default is Kestrel's 240 after
// 5 s) is cut with 408 client.body_too_slow and its upstream request aborted, on both upstream
// paths (the undici pool, a proxy.http2 upstream), for HTTP/1.1 and HTTP/2 clients. One that
// stops entirely still gets the idle timeout (here 1.5 s); a slow upload above the rate
// passes. Real clients over TLS: a raw TLS socket writing HTTP/1.1, node:http2.
import assert from 'node:assert/strict';
import { createServer as createH1Server, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  connect as connectH2,
  createServer as createH2cServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { serveConfig } from '../cli/commands/serve.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { makePki, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

const RATE = 1_000;
const GRACE_MS = 2_000;
const IDLE_MS = 1_500;
/** The body watch's longest tick. */
const TICK_MS = 1_000;
/** Room for a loaded machine (2 cores shared by several test runs). */
const SLACK_MS = 2_000;

interface Seen {
  path: string;
  bytes: number;
  ended: boolean;
  /** The request closed before its answer was finished (the gateway gave up on it). */
  abandoned: boolean;
}

/** Records every request and answers `got N` once its body ended; the same handler for HTTP/1.1 and h2c. */
function recorder(seen: Seen[]) {
  return (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    const s: Seen = { path: req.url ?? '', bytes: 0, ended: false, abandoned: false };
    seen.push(s);
    // node:http2's compatibility request ends (push(null)) on any reset, after 'aborted'.
    req.on('aborted', () => (s.abandoned = true));
    res.on('close', () => {
      if (!res.writableEnded) s.abandoned = true;
    });
    req.on('data', (c: Buffer) => (s.bytes += c.length));
    req.on('end', () => {
      if (s.abandoned) return;
      s.ended = true;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`got ${s.bytes}`);
    });
  };
}

/** What a client got: the status (0: none yet), or 'cut' when the connection or stream ended without one. */
interface Upload {
  status: number | 'cut' | null;
  body: string;
  /** ms from the first byte sent to the answer. */
  answeredAfter: number;
  stop(): void;
}

/**
 * POSTs `path` with a body of `total` bytes, `chunk` bytes every `everyMs` (then, when
 * `stallAfter` is given, nothing more after that many bytes). HTTP/1.1 over a raw TLS socket
 * (Content-Length), or HTTP/2 with node:http2.
 */
function upload(
  port: number,
  pki: TestPki,
  path: string,
  http2: boolean,
  opts: { total: number; chunk: number; everyMs: number; stallAfter?: number },
): Upload {
  const started = performance.now();
  const u: Upload = { status: null, body: '', answeredAfter: -1, stop: () => {} };
  let sent = 0;
  const answered = (status: number | 'cut') => {
    if (u.status !== null) return;
    u.status = status;
    u.answeredAfter = performance.now() - started;
    clearInterval(pump);
  };
  let write: (data: Buffer) => void;
  let end: () => void;
  if (http2) {
    const session = connectH2(`https://localhost:${port}`, { ca: pki.ca.certPem });
    session.on('error', () => {});
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'text/plain' }, { endStream: false });
    stream.on('error', () => {});
    stream.on('response', (h) => answered(Number(h[':status'])));
    stream.on('data', (c: Buffer) => (u.body += c.toString()));
    stream.on('close', () => answered('cut'));
    write = (data) => stream.write(data);
    end = () => stream.end();
    u.stop = () => {
      clearInterval(pump);
      session.destroy();
    };
  } else {
    const socket = connectTls({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem, ALPNProtocols: ['http/1.1'] });
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) {
        answered(Number(m[1]));
        u.body = text.slice(text.indexOf('\r\n\r\n') + 4);
      }
    });
    socket.on('close', () => answered('cut'));
    socket.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: ${opts.total}\r\n\r\n`);
    write = (data) => socket.write(data);
    end = () => {};
    u.stop = () => {
      clearInterval(pump);
      socket.destroy();
    };
  }
  const pump = setInterval(() => {
    if (u.status !== null) return;
    const limit = opts.stallAfter ?? opts.total;
    const n = Math.min(opts.chunk, limit - sent);
    if (n > 0) {
      write(Buffer.alloc(n, 120));
      sent += n;
    }
    if (sent === opts.total) {
      end();
      clearInterval(pump);
    }
  }, opts.everyMs);
  return u;
}

describe('slow request bodies: the minimum body rate and the idle timeout', () => {
  let pki: TestPki;
  let cleanup: () => void;
  const seen: Seen[] = [];
  let h1: Server;
  let h2c: Http2Server;
  /** The gateway's sessions to the h2c upstream (closed at the end: the server waits for them). */
  const upstreamSessions = new Set<ServerHttp2Session>();
  let gw: TestGateway;

  before(async () => {
    ({ pki, cleanup } = await makePki());
    h1 = createH1Server(recorder(seen));
    h2c = createH2cServer(recorder(seen));
    h2c.on('session', (session) => {
      upstreamSessions.add(session);
      session.once('close', () => upstreamSessions.delete(session));
    });
    await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => h2c.listen(0, '127.0.0.1', resolve));
    const url = (s: Server | Http2Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    gw = await startTestGateway(
      pki,
      buildBundle([
        { id: 'pool', listen_path: '/pool/', strip_listen_path: false, target_url: url(h1), use_keyless: true },
        { id: 'h2', listen_path: '/h2/', strip_listen_path: false, target_url: url(h2c), upstream_http2: true, use_keyless: true },
      ]),
      { clientIdleTimeoutMs: IDLE_MS, minBodyRate: { bytesPerSecond: RATE, graceMs: GRACE_MS } },
    );
  });
  after(async () => {
    await gw.close();
    h1.closeAllConnections();
    h1.close();
    for (const session of upstreamSessions) session.destroy();
    h2c.close();
    cleanup();
  });

  const seenAt = (path: string) => waitFor(`the upstream to see ${path}`, () => seen.find((s) => s.path === path), 15_000);
  const recordOf = (path: string) => waitFor(`the log record of ${path}`, () => gw.records.find((r) => r.path === path), 15_000);

  it('bodies trickling below the rate get 408 client.body_too_slow within the grace period and a tick; their upstream requests are aborted (HTTP/1.1 and HTTP/2, both upstream paths)', async () => {
    // One byte every 100 ms: 10 bytes/s, never idle for 1.5 s. Before: it went on for as long as the client liked.
    const cases = ['/pool/h1-trickle', '/pool/h2-trickle', '/h2/h1-trickle', '/h2/h2-trickle'];
    const uploads = cases.map((path) => upload(gw.port, pki, path, path.endsWith('h2-trickle'), { total: 100_000, chunk: 1, everyMs: 100 }));
    try {
      for (const [i, path] of cases.entries()) {
        const u = uploads[i];
        await waitFor(`an answer to ${path}`, () => u.status !== null, GRACE_MS + TICK_MS + SLACK_MS + 10_000);
        assert.equal(u.status, 408, `${path}: ${u.body}`);
        assert.match(u.body, /client\.body_too_slow/, path);
        assert.ok(u.answeredAfter >= GRACE_MS, `${path}: answered after ${u.answeredAfter} ms, before the grace period`);
        assert.ok(u.answeredAfter < GRACE_MS + TICK_MS + SLACK_MS, `${path}: answered after ${u.answeredAfter} ms`);
        const s = await seenAt(path);
        await waitFor(`the upstream request of ${path} to be aborted`, () => s.abandoned, 10_000);
        assert.equal(s.ended, false, path);
        const record = await recordOf(path);
        assert.deepEqual([record.status, record.code], [408, 'client.body_too_slow'], path);
      }
    } finally {
      for (const u of uploads) u.stop();
    }
  });

  it('a slow upload above the rate passes, for several seconds, while a trickle beside it is refused', async () => {
    // 250 bytes every 100 ms: 2500 bytes/s, 10,000 bytes in about 4 s.
    const total = 10_000;
    const slow = [
      ['/pool/h1-slow', false],
      ['/pool/h2-slow', true],
      ['/h2/h1-slow', false],
      ['/h2/h2-slow', true],
    ] as const;
    const uploads = slow.map(([path, http2]) => upload(gw.port, pki, path, http2, { total, chunk: 250, everyMs: 100 }));
    const trickle = upload(gw.port, pki, '/pool/beside', false, { total: 100_000, chunk: 2, everyMs: 100 });
    try {
      await waitFor('the trickle to be refused', () => trickle.status !== null, 20_000);
      assert.equal(trickle.status, 408);
      for (const [i, [path]] of slow.entries()) {
        const u = uploads[i];
        await waitFor(`an answer to ${path}`, () => u.status !== null, 30_000);
        assert.equal(u.status, 200, `${path}: ${u.body}`);
        await waitFor(`all of the answer to ${path}`, () => u.body.includes(`got ${total}`), 5_000);
        assert.ok(u.answeredAfter > GRACE_MS + TICK_MS, `${path} took ${u.answeredAfter} ms: not slow enough to test anything`);
        const record = await recordOf(path);
        assert.deepEqual([record.status, record.code], [200, null], path);
      }
    } finally {
      for (const u of [...uploads, trickle]) u.stop();
    }
  });

  it('a body that stops entirely gets the idle timeout, not the rate, on both upstream paths (HTTP/1.1 and HTTP/2)', async () => {
    // 5000 bytes at once (above the rate until 5 s), then nothing: the timer that now watches
    // the rate still cuts a stalled body at the idle timeout, with the idle timeout's code.
    const cases = ['/pool/h1-stop', '/pool/h2-stop', '/h2/h1-stop', '/h2/h2-stop'];
    const uploads = cases.map((path) => upload(gw.port, pki, path, path.endsWith('h2-stop'), { total: 100_000, chunk: 5_000, everyMs: 10, stallAfter: 5_000 }));
    try {
      for (const [i, path] of cases.entries()) {
        const u = uploads[i];
        await waitFor(`an answer to ${path}`, () => u.status !== null, IDLE_MS + TICK_MS + SLACK_MS + 10_000);
        assert.equal(u.status, 408, `${path}: ${u.body}`);
        assert.match(u.body, /client\.idle_timeout/, path);
        assert.ok(u.answeredAfter < IDLE_MS + TICK_MS + SLACK_MS, `${path}: answered after ${u.answeredAfter} ms`);
        const s = await seenAt(path);
        await waitFor(`the upstream request of ${path} to be aborted`, () => s.abandoned, 10_000);
        assert.equal((await recordOf(path)).code, 'client.idle_timeout', path);
      }
    } finally {
      for (const u of uploads) u.stop();
    }
  });
});

describe('serve flags', () => {
  const base = ['--bundle', 'b.json', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'];
  it('--min-body-rate BYTES|off and --min-body-rate-grace DURATION (or their variables); bad values name the flag', () => {
    assert.deepEqual(serveConfig(base, {}).config.minBodyRate, { bytesPerSecond: 240, graceMs: 5_000 });
    assert.deepEqual(serveConfig([...base, '--min-body-rate', '1000', '--min-body-rate-grace', '2s'], {}).config.minBodyRate, {
      bytesPerSecond: 1000,
      graceMs: 2_000,
    });
    assert.equal(serveConfig([...base, '--min-body-rate', 'off'], {}).config.minBodyRate, null);
    assert.deepEqual(serveConfig(base, { MTLSGATE_MIN_BODY_RATE: '500', MTLSGATE_MIN_BODY_RATE_GRACE: '10s' }).config.minBodyRate, {
      bytesPerSecond: 500,
      graceMs: 10_000,
    });
    assert.throws(
      () => serveConfig([...base, '--min-body-rate', '1k'], {}),
      /--min-body-rate must be a number of bytes per second \(e\.g\. 240\) or off, not "1k"/,
    );
    assert.throws(() => serveConfig([...base, '--min-body-rate', '0'], {}), /--min-body-rate\b.*"0"/);
    assert.throws(() => serveConfig(base, { MTLSGATE_MIN_BODY_RATE_GRACE: 'soon' }), /MTLSGATE_MIN_BODY_RATE_GRACE\b.*"soon"/);
  });
});
