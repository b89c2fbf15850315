// The HTTP/1.1 transport: a node:http server fed TLS sockets that ALPN gave to HTTP/1.1 (or no
// ALPN at all). Everything HTTP/1.1-specific about a request sits here: the host from the
// Host header (or SNI), `Connection: close` while draining, and the Upgrade handshake
// (WebSocket, runtime/websocket.ts). The request itself goes through runtime/exchange.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { answerClientError } from './client-error.ts';
import { refusal } from './errors.ts';
import { arrivingExchange, type HttpExchange, socketFacts, startExchange } from './exchange.ts';
import type { GatewayCore } from './gateway.ts';
import { HTTP1_PARSER_FIELDS, tooManyHttp1Fields } from './field-count.ts';
import { repeatedSingleField } from './repeated-fields.ts';
import { WebSockets } from './websocket.ts';

export interface Http1Transport {
  /** Takes a TLS socket whose handshake completed (or, for --listen-plain, a plain one). */
  accept(socket: TLSSocket | Socket): void;
  closeIdleConnections(): void;
  closeAll(): void;
}

/** Builds the exchange for a request; shared with the Upgrade path. `plain`: it came in on --listen-plain. */
export function http1Exchange(gateway: GatewayCore, req: IncomingMessage, res: ServerResponse, plain = false): HttpExchange {
  const ex = arrivingExchange(gateway, req, res, false, socketFacts(req.socket as TLSSocket), req.headers.host, plain);
  // Over the field limit, the fields past node:http's count are gone: nothing more is read of them.
  if (tooManyHttp1Fields(req.rawHeaders)) ex.refusedAtArrival ??= refusal('request.too_many_fields');
  else if (repeatedSingleField(req.rawHeaders)) ex.refusedAtArrival ??= refusal('request.field_repeated');
  return ex;
}

/** `plain`: the transport of --listen-plain (requests from trusted proxies only, runtime/client-cert-header.ts). */
export function createHttp1Transport(
  gateway: GatewayCore,
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
  plain = false,
): Http1Transport {
  // joinDuplicateHeaders: a field node:http would keep the first copy of (Host, Authorization,
  // Content-Type, ...) gets every copy, joined with ", ", as every other field does. Two Host
  // lines are then "a, b", which is no host: 400 request.bad_host (RFC 9112 3.2 requires the
  // 400), where the first was routed while a proxy in front may have read the last (section 40).
  // node:http joins as it builds req.headers anyway: nothing more per request.
  const server: Server = createServer({ keepAliveTimeout: 65_000, joinDuplicateHeaders: true });
  // One field more than the limit is kept (node:http's default, 2,000, dropped the rest unseen):
  // such a request is refused with 431 (runtime/field-count.ts).
  server.maxHeadersCount = HTTP1_PARSER_FIELDS;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (gateway.draining) res.setHeader('connection', 'close');
    startExchange(http1Exchange(gateway, req, res, plain));
  });
  server.on('upgrade', onUpgrade);
  // CONNECT asks for a tunnel, which the gateway never opens: answered 405 from the error table
  // and logged like every refusal (without this listener node:http closes the connection
  // without a word). node:http has stopped parsing the connection: the answer ends it.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const ex = http1Exchange(gateway, req, WebSockets.responseFor(req, socket), plain);
    ex.refusedAtArrival = refusal('request.connect_not_allowed');
    startExchange(ex);
  });
  server.on('clientError', answerClientError);
  // This server never listens (the TLS servers hand it sockets); 'listening' is what makes
  // node:http track its connections (header/request timeouts, closeIdleConnections).
  server.emit('listening');
  return {
    accept: (socket) => server.emit('connection', socket),
    closeIdleConnections: () => server.closeIdleConnections(),
    closeAll() {
      server.closeAllConnections();
      server.close();
    },
  };
}
