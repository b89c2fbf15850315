// One request from arrival to its record, whatever the HTTP version: the stages' context plus
// the transport's request and response. node:http (HTTP/1.1) and node:http2's compatibility
// API (HTTP/2) give the same shape of req/res, so both transports build this one class; what
// differs (where the host comes from, how a connection is closed) stays in runtime/http1.ts
// and runtime/http2.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { errorStatus, sendError, type ErrorCode, type Refusal } from './errors.ts';
import { reportFault } from './faults.ts';
import type { GatewayCore, RequestRecord } from './gateway.ts';
import { endGrpcWithError, isGrpc, sendGrpcError } from './grpc.ts';
import { arrivalIdentity } from './client-cert-header.ts';
import { type ClientIdentity, identityOf } from './identity.ts';
import type { OpenRequest } from './open-requests.ts';
import type { MinAnswerRate, MinBodyRate } from './body-watch.ts';
import { forward, type ForwardRequest, type Forwarding, type ProxyOutcome } from './proxy.ts';
import { crlStore } from './revocation.ts';
import { hostOf, pathEnd } from './route.ts';
import { cutAnswer, dropUnreadBodyAfterAnswer } from './stream-reset.ts';
import { RequestContext } from './stages/context.ts';
import { STAGES } from './stages/index.ts';
import { runStages } from './stages/run.ts';
import { GO, type Verdict } from './stages/stage.ts';
import type { WebSockets } from './websocket.ts';

export type ClientRequest = IncomingMessage | Http2ServerRequest;
export type ClientResponse = ServerResponse | Http2ServerResponse;

/** Client status for a request whose client left before the answer (nginx's convention). */
const CLIENT_CLOSED = 499;

export class HttpExchange extends RequestContext implements OpenRequest {
  declare readonly identity: ClientIdentity | null;
  status = 0;
  code: ErrorCode | null = null;
  /**
   * Why the upstream exchange failed (runtime/upstream-cause.ts). Declared, not initialised: set
   * on failures only, so an exchange that succeeds writes nothing for it.
   */
  declare upstreamError?: string;
  forwarding: Forwarding | null = null;
  /** Refused before the stages run (runtime/client-cert-header.ts: an untrusted plain-HTTP peer, a bad certificate header). */
  refusedAtArrival: Refusal | null = null;
  /**
   * The connection's peer is in --trusted-proxies (set by the transport, only with
   * --client-cert-header): its X-Forwarded-For and client address headers are kept.
   */
  viaTrustedProxy = false;
  /** An admitted WebSocket upgrade goes to this tunnel instead of the proxy. */
  upgrade: { tunnels: WebSockets; socket: Duplex; head: Buffer } | null = null;
  /** ForwardRequest: a gRPC call (set when it is proxied). */
  grpc = false;
  // OpenRequest (runtime/open-requests.ts): the gateway's list of requests still open once proxied.
  // The bundle and the time it was decided under are the context's `snapshot` and `now`.
  openPrev: OpenRequest | null = null;
  openNext: OpenRequest | null = null;
  /**
   * The CRL generation the stages see. Read here, before they run: a stage that answers later
   * (the Redis limiter) may wait across a CRL change, so nothing read at admission could stand
   * in for it (one load and one store per request).
   */
  decidedCrl = crlStore.generation;

  constructor(
    readonly gateway: GatewayCore,
    readonly req: ClientRequest,
    readonly res: ClientResponse,
    /** HTTP/2 (no connection headers, no status message, body known from the stream). */
    readonly http2: boolean,
    identity: ClientIdentity | null,
    host: string,
    rawPath: string,
    /** "?query" or "". */
    readonly query: string,
    /** Read at arrival: a socket is detached from its request once the client leaves. */
    remote: string,
    readonly started: number,
  ) {
    super(gateway.snapshot(), identity, Date.now(), req.method ?? 'GET', host, rawPath, req.headers, remote, gateway.limiter);
  }

  // ForwardRequest (runtime/proxy.ts) is this exchange itself: no object of 18 fields copied per request.
  get keyId(): string | null {
    return this.key?.id ?? null;
  }
  get timeoutMs(): number {
    return this.gateway.upstreamTimeoutMs;
  }
  get clientIdleMs(): number {
    return this.gateway.clientIdleTimeoutMs;
  }
  get minBodyRate(): MinBodyRate | null {
    return this.gateway.minBodyRate;
  }
  get minAnswerRate(): MinAnswerRate | null {
    return this.gateway.minAnswerRate;
  }
  get outcome(): ProxyOutcome {
    return this;
  }

  decide(): void {
    if (this.refusedAtArrival !== null) return this.refuse(this.refusedAtArrival);
    const verdict = runStages(STAGES, this);
    if (verdict instanceof Promise) {
      verdict.then(
        (v) => {
          try {
            this.settle(v);
          } catch (err) {
            this.fault(err);
          }
        },
        // Stages do not reject (the limiter's promise never does, by contract); should one
        // reject anyway, a request path fault it is.
        (err) => this.fault(err),
      );
      return;
    }
    this.settle(verdict);
  }

  private settle(verdict: Verdict): void {
    if (verdict === GO) this.proxy();
    else this.refuse(verdict);
  }

  private refuse(refusal: Refusal): void {
    this.status = errorStatus(refusal.code);
    this.code = refusal.code;
    this.sendRefusal(refusal.code, refusal.message, refusal.headers);
  }

  private sendRefusal(code: ErrorCode, message?: string, headers?: Record<string, string>): void {
    const res = this.res;
    if (this.responseHeaders !== null && !res.headersSent) {
      for (const name in this.responseHeaders) res.setHeader(name, this.responseHeaders[name]);
    }
    // Requests that arrived before a drain and were refused after it began (an async stage).
    // HTTP/2 has no Connection header: its drain sends GOAWAY instead (runtime/http2.ts).
    if (!this.http2 && this.gateway.draining && !res.headersSent) res.setHeader('connection', 'close');
    if (isGrpc(this.headers['content-type'])) sendGrpcError(res, code, message, headers);
    else sendError(res, code, message, headers);
  }

  private proxy(): void {
    if (this.clientGone()) return; // the client left while a stage decided
    // Open until its response closes: decided again meanwhile (runtime/open-requests.ts).
    this.gateway.open.add(this);
    if (this.upgrade !== null) {
      this.forwarding = this.upgrade.tunnels.tunnel(this, this.upgrade.socket, this.upgrade.head);
      return;
    }
    this.grpc = isGrpc(this.headers['content-type']);
    this.forwarding = forward(this as ForwardRequest);
  }

  private clientGone(): boolean {
    return this.http2 ? (this.res as Http2ServerResponse).stream.destroyed : (this.res as ServerResponse).destroyed;
  }

  /**
   * A fault in the request path (a bug, a header node:http refuses) answers its request with
   * a 502 instead of taking the process, and every other request, down.
   */
  fault(err: unknown): void {
    reportFault('request path', err);
    if (this.res.headersSent) cutAnswer(this.res, this.http2, false);
    else {
      this.status = errorStatus('proxy.upstream_error');
      this.code = 'proxy.upstream_error';
      this.sendRefusal('proxy.upstream_error');
    }
  }

  /**
   * OpenRequest: decided again while open and refused now. The upstream request stops; the
   * client is told the refusal where it still can be (nothing answered yet: the refusal itself;
   * a gRPC answer under way, between two messages: trailers), else its connection (HTTP/1.1)
   * or stream (HTTP/2) is reset. An answer the upstream already finished (its tail still
   * being written) is let be.
   */
  revoked(refusal: Refusal): void {
    const res = this.res;
    if (this.forwarding === null || res.writableEnded || this.clientGone()) return;
    this.forwarding.cut(refusal.code);
    this.code = 'access.revoked_in_flight';
    if (this.upgrade !== null) {
      // The tunnel is closed both ways (runtime/websocket.ts); a 101 already sent stays its status.
      if (this.status === 0) this.status = errorStatus(refusal.code);
      return;
    }
    if (!res.headersSent) {
      this.status = errorStatus(refusal.code);
      // HTTP/1.1, a body not all received (what arrived says it, not what was read): the
      // connection ends with the answer. HTTP/2: the stream does (runtime/stream-reset.ts dropUnreadBodyAfterAnswer).
      if (!this.http2 && !(this.req as IncomingMessage).complete) res.setHeader('connection', 'close');
      this.sendRefusal(refusal.code, refusal.message, refusal.headers);
      return;
    }
    this.status = res.statusCode;
    // A gRPC answer ends with the refusal in its trailers only if the client was given whole
    // messages: after part of one, a status would follow a truncated message, so the stream
    // is reset (CANCEL) and the call fails (runtime/grpc.ts GrpcFraming).
    if (this.forwarding.grpcAnswer?.atMessageBoundary === true) endGrpcWithError(res as Http2ServerResponse, refusal.code, refusal.message);
    else cutAnswer(res, this.http2, true);
  }

  /** ProxyOutcome: a drain started and this answer can say so (HTTP/1.1): it ends its connection. */
  get draining(): boolean {
    return !this.http2 && this.gateway.draining;
  }

  /** ProxyOutcome: what the upstream answered (or the error sent instead, and why). */
  proxied(status: number, code: ErrorCode | null, upstreamError?: string): void {
    this.status = status;
    this.code = code;
    if (upstreamError !== undefined) this.upstreamError = upstreamError;
  }

  closed(): void {
    this.gateway.open.remove(this);
    this.forwarding?.clientClosed();
    // A tunnel's record has the upstream's status (101): its end is not the client leaving early.
    if (!this.res.writableFinished && this.code === null && (this.upgrade === null || this.status === 0)) this.status = CLIENT_CLOSED;
    const record: RequestRecord = {
      api: this.api?.id ?? null,
      key: this.key?.id ?? null,
      cert: this.identity?.fingerprint ?? null,
      status: this.status,
      code: this.code,
      method: this.req.method ?? '',
      path: this.req.url ?? '',
      durationMs: performance.now() - this.started,
      remote: this.remote,
    };
    // Only a failed upstream exchange has a cause: a request answered (or refused) is tested
    // for a code, which it has in hand, and its record keeps the shape it always had.
    if (this.code !== null && this.upstreamError !== undefined) record.upstreamError = this.upstreamError;
    this.gateway.finished(record);
  }
}

/**
 * What a request reads from its connection, read once per connection and kept: the socket's
 * remoteAddress is a getter that asks its handle each time, and on HTTP/2 the session's `socket`
 * is a Proxy (each read a trap call). With --client-cert-header the connection's trust verdict
 * and last header value are kept on it too (runtime/trusted-proxies.ts, runtime/client-cert-header.ts).
 */
export class ConnectionFacts {
  constructor(
    /** The handshake's client certificate (runtime/identity.ts), or null. */
    readonly identity: ClientIdentity | null,
    /** The peer's address, "" when unknown (a socket the client already left has none). */
    readonly remoteAddress: string,
    /** The TLS server name, "": the host of a request without a Host header or :authority. */
    readonly servername: string,
  ) {}

  /** Read from the socket now (HTTP/2: once, when its session starts). */
  static of(socket: TLSSocket | Socket): ConnectionFacts {
    return new ConnectionFacts(identityOf(socket), socket.remoteAddress ?? '', (socket as TLSSocket).servername || '');
  }
}

/** The facts of a request whose connection is already gone (an HTTP/2 session destroyed meanwhile). */
export const NO_CONNECTION = new ConnectionFacts(null, '', '');

const FACTS = Symbol('mtlsgate.connectionFacts');

/** An HTTP/1.1 socket's facts, read at its first request and kept on it. */
export function socketFacts(socket: TLSSocket | Socket): ConnectionFacts {
  const memo = socket as unknown as Record<symbol, ConnectionFacts | undefined>;
  return (memo[FACTS] ??= ConnectionFacts.of(socket));
}

/** The exchange for a request, either transport. `plain`: it came in on --listen-plain. */
export function arrivingExchange(
  gateway: GatewayCore,
  req: ClientRequest,
  res: ClientResponse,
  http2: boolean,
  facts: ConnectionFacts,
  hostHeader: string | undefined,
  plain: boolean,
): HttpExchange {
  const url = req.url ?? '/';
  const end = pathEnd(url);
  // Only with --client-cert-header: without it the request path does none of this.
  const arrival = gateway.certHeader === null ? null : arrivalIdentity(gateway.certHeader, req.headers, facts, facts.identity, plain);
  const ex = new HttpExchange(
    gateway,
    req,
    res,
    http2,
    arrival === null ? facts.identity : arrival.identity,
    hostOf(hostHeader, facts.servername),
    end === url.length ? url : url.slice(0, end),
    end === url.length ? '' : url.slice(end),
    facts.remoteAddress,
    performance.now(),
  );
  if (arrival !== null) {
    ex.refusedAtArrival = arrival.refusal;
    ex.viaTrustedProxy = arrival.viaTrustedProxy;
  }
  return ex;
}

const EXCHANGE = Symbol('mtlsgate.exchange');

/**
 * The response's 'close' listener, shared by every request (no closure per request). Added with
 * on(), not once(): once() wraps it in a bound function and a state object per request and, at
 * the close, removes it again (a delete on the response's listener table); the response is
 * dropped after its close anyway. The exchange is taken off, so a second 'close' records nothing.
 */
function onResponseClose(this: ClientResponse): void {
  const holder = this as unknown as Record<symbol, HttpExchange | null>;
  const ex = holder[EXCHANGE];
  if (ex === null) return;
  holder[EXCHANGE] = null;
  ex.closed();
}

/** Starts a request: counted in flight, recorded when its response closes, then decided. */
export function startExchange(ex: HttpExchange): void {
  ex.gateway.started();
  (ex.res as unknown as Record<symbol, HttpExchange>)[EXCHANGE] = ex;
  (ex.res as ServerResponse).on('close', onResponseClose);
  if (ex.http2 && !(ex.req as Http2ServerRequest).stream.endAfterHeaders) dropUnreadBodyAfterAnswer(ex.req as Http2ServerRequest);
  try {
    ex.decide();
  } catch (err) {
    ex.fault(err);
  }
}
