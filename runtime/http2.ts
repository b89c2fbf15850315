// The HTTP/2 transport: a node:http2 server fed TLS sockets that ALPN gave to h2. Requests use
// node:http2's compatibility API, whose req/res have the shape node:http's have, so they go
// through the same exchange (runtime/exchange.ts) and stages as HTTP/1.1: same codes, same log
// line. HTTP/2 specifics: the host comes from :authority (or SNI); a drain sends GOAWAY
// (session.close) instead of `Connection: close`, which HTTP/2 forbids.
import { createServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { arrivingExchange, startExchange } from './exchange.ts';
import type { GatewayCore } from './gateway.ts';

/** An idle HTTP/2 connection is closed after this long, like an idle HTTP/1.1 keep-alive one. */
const SESSION_IDLE_MS = 65_000;

export interface Http2Transport {
  accept(socket: TLSSocket): void;
  /** Graceful: GOAWAY to every session with no stream open (all of them while draining). */
  closeIdleConnections(): void;
  closeAll(): void;
}

export function createHttp2Transport(gateway: GatewayCore): Http2Transport {
  const server = createServer({ settings: { enablePush: false } });
  /** Open sessions and how many streams each has open (node:http2 does not count them). */
  const sessions = new Map<ServerHttp2Session, number>();

  server.on('session', (session: ServerHttp2Session) => {
    sessions.set(session, 0);
    session.once('close', () => sessions.delete(session));
    session.on('stream', (stream) => {
      sessions.set(session, (sessions.get(session) ?? 0) + 1);
      stream.once('close', () => {
        const open = (sessions.get(session) ?? 1) - 1;
        if (!sessions.has(session)) return;
        sessions.set(session, open);
        // Draining: a session whose last stream just ended goes now, not at its idle timeout.
        if (open === 0 && gateway.draining) session.close();
      });
    });
    session.on('error', () => {}); // a client's protocol error concerns its session only
    session.setTimeout(SESSION_IDLE_MS, () => session.close());
    if (gateway.draining) session.close();
  });

  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const session = req.stream.session;
    const socket = session?.socket as TLSSocket | undefined;
    startExchange(arrivingExchange(gateway, req, res, true, session ?? {}, socket, req.headers[':authority'] ?? req.headers.host, false));
  });

  return {
    accept: (socket) => server.emit('connection', socket),
    closeIdleConnections() {
      for (const [session, open] of sessions) if (open === 0 || gateway.draining) session.close();
    },
    closeAll() {
      for (const session of sessions.keys()) session.destroy();
      sessions.clear();
    },
  };
}
