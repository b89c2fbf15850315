// Clients that send request bodies at a chosen pace, and upstreams that record what reached
// them (test/security-slow-bodies*.test.ts): a raw TLS socket writing HTTP/1.1, node:http2.
import { createServer as createH1Server, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  connect as connectH2,
  constants as h2constants,
  createServer as createH2cServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { TestPki } from './gateway-fixtures.ts';

export interface Seen {
  path: string;
  bytes: number;
  ended: boolean;
  /** The request closed before its answer was finished (the gateway gave up on it). */
  abandoned: boolean;
}

/** One handler for both upstreams. */
type Handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

/**
 * Records every request and answers `got N` once its body ended; the same handler for HTTP/1.1
 * and h2c. `stallMs`: after the first chunk, reads nothing for that long (the gateway's writes
 * back up: backpressure), then reads the rest.
 */
export function recorder(seen: Seen[], stallMs = 0): Handler {
  return (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    const s: Seen = { path: req.url ?? '', bytes: 0, ended: false, abandoned: false };
    seen.push(s);
    // node:http2's compatibility request ends (push(null)) on any reset, after 'aborted'.
    req.on('aborted', () => (s.abandoned = true));
    res.on('close', () => {
      if (!res.writableEnded) s.abandoned = true;
    });
    req.on('data', (c: Buffer) => {
      if (s.bytes === 0 && stallMs > 0) {
        req.pause();
        // Unref'd: a long stall must not keep the test's process alive after its last test.
        setTimeout(() => req.resume(), stallMs).unref();
      }
      s.bytes += c.length;
    });
    req.on('end', () => {
      if (s.abandoned) return;
      s.ended = true;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`got ${s.bytes}`);
    });
  };
}

/**
 * Records every request, reads its first chunk and nothing more, and after `afterMs` fails it:
 * HTTP/1.1 closes the connection, h2c resets the stream with INTERNAL_ERROR. What the client
 * sent beyond the first chunk stays in the gateway's hands, unread.
 */
export function resetter(seen: Seen[], afterMs: number): Handler {
  return (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    const s: Seen = { path: req.url ?? '', bytes: 0, ended: false, abandoned: false };
    seen.push(s);
    req.once('data', (c: Buffer) => {
      req.pause();
      s.bytes += c.length;
      setTimeout(() => {
        s.abandoned = true;
        if ('stream' in res) res.stream.close(h2constants.NGHTTP2_INTERNAL_ERROR);
        else res.socket?.destroy();
      }, afterMs);
    });
  };
}

/** An HTTP/1.1 and an h2c upstream with the same handler; close() ends them and the gateway's sessions. */
export async function startUpstreams(handler: Handler): Promise<{ h1Url: string; h2cUrl: string; close(): void }> {
  const h1: Server = createH1Server(handler);
  const h2c: Http2Server = createH2cServer(handler);
  /** The gateway's sessions to the h2c upstream (closed at the end: the server waits for them). */
  const sessions = new Set<ServerHttp2Session>();
  h2c.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => h2c.listen(0, '127.0.0.1', resolve));
  const url = (s: Server | Http2Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  return {
    h1Url: url(h1),
    h2cUrl: url(h2c),
    close() {
      h1.closeAllConnections();
      h1.close();
      for (const session of sessions) session.destroy();
      h2c.close();
    },
  };
}

/** What a client got: the status (0: none yet), or 'cut' when the connection or stream ended without one. */
export interface Upload {
  status: number | 'cut' | null;
  body: string;
  /** ms from the first byte sent to the answer. */
  answeredAfter: number;
  /** ms from the first byte sent until the last one written was taken by the transport (backpressure holds it back). */
  flushedAfter: number;
  stop(): void;
}

/**
 * POSTs `path` with a body of `total` bytes: `burst` bytes at once (default none), then `chunk`
 * bytes every `everyMs` (then, when `stallAfter` is given, nothing more after that many bytes).
 * HTTP/1.1 over a raw TLS socket (Content-Length), or HTTP/2 with node:http2.
 */
export function upload(
  port: number,
  pki: TestPki,
  path: string,
  http2: boolean,
  opts: { total: number; chunk: number; everyMs: number; stallAfter?: number; burst?: number },
): Upload {
  const started = performance.now();
  const u: Upload = { status: null, body: '', answeredAfter: -1, flushedAfter: -1, stop: () => {} };
  const flushed = () => (u.flushedAfter = performance.now() - started);
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
    write = (data) => stream.write(data, flushed);
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
    write = (data) => socket.write(data, flushed);
    end = () => {};
    u.stop = () => {
      clearInterval(pump);
      socket.destroy();
    };
  }
  const send = (n: number) => {
    write(Buffer.alloc(n, 120));
    sent += n;
    if (sent === opts.total) {
      end();
      clearInterval(pump);
    }
  };
  const pump = setInterval(() => {
    if (u.status !== null) return;
    const limit = opts.stallAfter ?? opts.total;
    const n = Math.min(opts.chunk, limit - sent);
    if (n > 0) send(n);
  }, opts.everyMs);
  if (opts.burst !== undefined) send(opts.burst);
  return u;
}
