// Forwarding an admitted request to its upstream through the origin's undici Pool, both bodies
// streamed (with backpressure both ways). One handler object per request, no promise: the
// upstream's answer is written straight into the client's response.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Dispatcher } from 'undici';
import { sendError, type ErrorCode } from './errors.ts';
import { reportFault } from './faults.ts';
import type { ClientRequest, ClientResponse } from './exchange.ts';
import type { ClientIdentity } from './identity.ts';
import { AnswerWatch } from './answer-watch.ts';
import { answerSlowClient, BodyWatch, type MinAnswerRate, type MinBodyRate, type SlowBodyCode } from './body-watch.ts';
import { GrpcFraming } from './grpc.ts';
import { lingerAfterAnswer } from './lingering-close.ts';
import { checkHeaders, clientHeaderList, clientTrailers, http2ClientHeaders, upstreamHeaderList } from './proxy-headers.ts';
import { forwardHttp2 } from './proxy-http2.ts';
import type { PreparedApi } from './prepared-api.ts';
import { cutAnswer } from './stream-reset.ts';
import { upstreamCause } from './upstream-cause.ts';

export const TIMEOUT_ERRORS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

export interface ForwardRequest {
  req: ClientRequest;
  res: ClientResponse;
  /** The client speaks HTTP/2: pseudo-headers are not forwarded, no status message is sent. */
  http2: boolean;
  /** A gRPC call: `TE: trailers` goes upstream (an HTTP/2 upstream needs it). */
  grpc: boolean;
  /** The normalised host the request named. */
  host: string;
  api: PreparedApi;
  /** Normalised request path (no query). */
  path: string;
  /** "?..." or "". */
  query: string;
  identity: ClientIdentity | null;
  /** The key the request was authenticated as, or null. */
  keyId: string | null;
  /** Client address (X-Forwarded-For). */
  remote: string;
  /**
   * The connection's peer is in --trusted-proxies (runtime/trusted-proxies.ts, decided once per
   * connection): its X-Forwarded-For, Forwarded and client address headers are kept, the peer
   * appended. Otherwise they are dropped and X-Forwarded-For is the peer alone.
   */
  viaTrustedProxy: boolean;
  timeoutMs: number;
  /** --client-idle-timeout (0: never): a stalled request body or unread answer is cut (runtime/body-watch.ts). */
  clientIdleMs: number;
  /** --min-body-rate (null: off): a request body trickling below it is cut (runtime/body-watch.ts). */
  minBodyRate: MinBodyRate | null;
  /** --min-answer-rate (null: off): an answer whose waiting bytes the client takes slower than this is cut. */
  minAnswerRate: MinAnswerRate | null;
  /** Extra response headers (rate-limit headers), or null. */
  responseHeaders: Record<string, string> | null;
  /** Drop X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override (methods were restricted). */
  stripMethodOverride: boolean;
  /** Told the outcome once. */
  outcome: ProxyOutcome;
}

export interface ProxyOutcome {
  /**
   * The upstream's status, or the error row sent instead (499: the client left first).
   * `upstreamError`: why the upstream exchange failed (runtime/upstream-cause.ts), given only then.
   */
  proxied(status: number, code: ErrorCode | null, upstreamError?: string): void;
  /** The gateway is draining: the answer, once it starts, ends its connection. */
  readonly draining: boolean;
}

/** A request on its way through the upstream. */
export interface Forwarding {
  /** The client's response closed (answered or abandoned): stop the upstream if still running. */
  clientClosed(): void;
  /**
   * The request was decided again and refused (runtime/open-requests.ts): stop the upstream
   * side and report no outcome; the exchange answers the client and records the cut.
   * `reason`: the refusal's code (a WebSocket tunnel's close frame says it).
   */
  cut(reason?: ErrorCode): void;
  /** A gRPC answer to an HTTP/2 client: its message framing as written so far (else absent or null). */
  readonly grpcAnswer?: GrpcFraming | null;
}

/** A request that never reached an upstream (its response was sent instead): nothing to stop. */
export const NOT_FORWARDED: Forwarding = { clientClosed() {}, cut() {} };

class ProxyExchange implements Dispatcher.DispatchHandler, Forwarding {
  private controller: Dispatcher.DispatchController | null = null;
  private status = 0;
  private finished = false;

  /** Extra headers for the client (rate-limit headers), dropped if node:http refuses them. */
  private responseHeaders: Record<string, string> | null;
  /** The client idle timeout and minimum rate of the answer: made at its first backpressure (most answers have none). */
  private answerWatch: AnswerWatch | null = null;
  /** The request body's idle timeout and minimum rate, while it goes upstream. */
  private bodyWatch: BodyWatch | null = null;
  readonly grpcAnswer: GrpcFraming | null;

  constructor(
    private readonly f: ForwardRequest,
    /** The client sends a body: the idle timeout watches it while it goes upstream. */
    private readonly hasBody: boolean,
  ) {
    this.responseHeaders = f.responseHeaders;
    this.grpcAnswer = grpcFramingFor(f);
  }

  /**
   * The client moved no byte for --client-idle-timeout, or its body trickled below
   * --min-body-rate: free the upstream connection.
   */
  private slowClient(code: SlowBodyCode): void {
    const res = this.f.res;
    if (!this.finished) {
      const answered = res.headersSent;
      this.finish(answered ? this.status : 408, code);
      this.controller?.abort(new Error(code));
      if (!answered) return answerSlowClient(res, this.f.http2, code);
    }
    // Mid-answer (or its unread tail): nothing more can be said, only cut.
    if (!res.writableFinished) cutAnswer(res, this.f.http2, true);
  }

  clientClosed(): void {
    if (this.finished) return;
    // Finished first: abort() reports back through onResponseError synchronously.
    this.finish(this.status === 0 ? 499 : this.status, null);
    this.controller?.abort(new Error('client closed the connection'));
  }

  cut(): void {
    if (this.stop()) this.controller?.abort(new Error('refused while open'));
    // No controller yet (waiting for a connection): onRequestStart aborts it, as it is finished.
  }

  private finish(status: number, code: ErrorCode | null, upstreamError?: string): void {
    if (this.stop()) this.f.outcome.proxied(status, code, upstreamError);
  }

  /** Marks the exchange finished: false if it already was. */
  private stop(): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.answerWatch?.stop();
    this.bodyWatch?.stop();
    return true;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // The client left while the request waited for a connection (a new one being opened, or
    // every one busy): clientClosed() had nothing to abort then. Abort now, or the request would
    // hold an upstream connection for good, writing a body that never ends.
    if (this.finished) controller.abort(new Error('client closed the connection'));
    // Only a request with a body arms a timer here: a bodiless one costs this one test.
    else if (this.hasBody && !this.f.req.readableEnded) this.bodyWatch = watchBody(this.f, (code) => this.slowClient(code));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200) return; // 1xx: the final answer follows
    const res = this.f.res;
    if (res.destroyed) {
      controller.abort(new Error('client closed the connection'));
      return;
    }
    try {
      const extra = this.responseHeaders;
      if (extra !== null) for (const name in extra) res.setHeader(name, extra[name]);
      // A drain that began while this request was upstream: the answer closes its connection.
      if (this.f.outcome.draining) res.setHeader('connection', 'close');
      if (this.f.http2) {
        const out = http2ClientHeaders(headers);
        // RFC 9110 8.6: no Content-Length on a 204. HTTP/1.1 clients ignore one; an HTTP/2 client
        // reads it as content promised and never sent, and resets the stream (section 45).
        if (statusCode === 204) delete out['content-length'];
        // node:http refuses a bad header when it is set; HTTP/2 would only reset the stream
        // once sent, so an HTTP/2 answer is checked by node:http's own rules first.
        checkHeaders(extra, out);
        res.writeHead(statusCode, out);
      } else {
        closeIfBodyUnread(this.f, this.hasBody);
        // A list: node:http takes it without an own-property check and a lookup per header.
        const out = clientHeaderList(headers) as string[];
        if (statusMessage) (res as ServerResponse).writeHead(statusCode, statusMessage, out);
        else (res as ServerResponse).writeHead(statusCode, out);
      }
      this.status = statusCode;
    } catch (err) {
      // A header node:http refuses to send (invalid characters): this request gets a 502
      // (without the offending headers), the gateway carries on.
      reportFault('response headers', err);
      this.responseHeaders = null;
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      // writeHead kept a reason phrase it refused: the 502 would be refused for it too, and the
      // client left waiting for an answer that never comes (section 40).
      if (!this.f.http2) (res as ServerResponse).statusMessage = '';
      controller.abort(err as Error);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.grpcAnswer?.add(chunk);
    const res = this.f.res as ServerResponse;
    if (res.write(chunk)) return;
    controller.pause();
    // From the first backpressure on (most answers never get here), the client must keep taking
    // what waits for it (runtime/answer-watch.ts).
    this.answerWatch ??= new AnswerWatch(
      res,
      this.f.clientIdleMs,
      this.f.minAnswerRate,
      (code) => this.slowClient(code),
      () => controller.resume(),
    );
    this.answerWatch.backpressured();
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    // Trailers (gRPC's grpc-status) reach an HTTP/2 client, and an HTTP/1.1 one on a chunked response.
    for (const _name in trailers) {
      const out = clientTrailers(trailers);
      if (out !== null) this.f.res.addTrailers(out);
      break;
    }
    this.f.res.end();
    this.finish(this.status, null);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const res = this.f.res;
    if (this.finished) return;
    if (res.headersSent) {
      // A 204 or 304 has no content whatever its Content-Length says (RFC 9110 6.4.1, 8.6), but
      // undici counts the bytes it promised as missing and fails the answer after its headers:
      // the answer is whole, end it. Before, the connection was cut before the buffered
      // headers went out, and the client got nothing at all (section 45).
      if (this.status === 204 || this.status === 304) {
        res.end();
        this.finish(this.status, null);
        return;
      }
      // Mid-body: the status is out; all that is left is to cut the response short.
      cutAnswer(res, this.f.http2, false);
      this.finish(502, 'proxy.upstream_error', upstreamCause(error));
      return;
    }
    const code: ErrorCode = TIMEOUT_ERRORS.has((error as { code?: string }).code ?? '') ? 'proxy.upstream_timeout' : 'proxy.upstream_error';
    if (this.f.outcome.draining && !res.headersSent) res.setHeader('connection', 'close');
    // The client's answer says only the code; the cause goes to the operator's log line.
    sendError(res, code, undefined, this.responseHeaders ?? undefined);
    this.finish(code === 'proxy.upstream_timeout' ? 504 : 502, code, upstreamCause(error));
  }
}

/**
 * An HTTP/1.1 answer that comes before the whole request body (an early 413 or 401): the
 * upstream side stops taking the body (undici drops the request stream; an HTTP/2 upstream's
 * stream closes), and its unread rest then holds node:http's parser, so a request sent after
 * it on this connection would wait for node's requestTimeout (300 s). The connection ends with
 * the answer instead, as Envoy ends it (section 45). Called before the answer's head is
 * written: one test for a request with a body, none for one without.
 */
export function closeIfBodyUnread(f: ForwardRequest, hasBody: boolean): void {
  if (hasBody && !f.http2 && !(f.req as IncomingMessage).complete) {
    f.res.setHeader('connection', 'close');
    // The client may still be sending: read and drop the rest for a while before the close,
    // or its reset could take the answer with it (runtime/lingering-close.ts).
    lingerAfterAnswer((f.req as IncomingMessage).socket);
  }
}

/**
 * Watches a request body about to go upstream, or null when nothing is to be watched. gRPC
 * calls have no minimum rate: a client stream may rightly be quiet (grpc-dotnet turns Kestrel's
 * off for streaming calls).
 */
export function watchBody(f: ForwardRequest, onSlow: (code: SlowBodyCode) => void): BodyWatch | null {
  const rate = f.grpc ? null : f.minBodyRate;
  return f.clientIdleMs > 0 || rate !== null ? new BodyWatch(f.req, f.clientIdleMs, rate, onSlow) : null;
}

/** A gRPC call from an HTTP/2 client: its answer's framing is followed (a cut can end it with trailers only between messages). */
export function grpcFramingFor(f: ForwardRequest): GrpcFraming | null {
  return f.grpc && f.http2 ? new GrpcFraming() : null;
}

/** Sends the request upstream; the caller reports its client's 'close' to the result. */
export function forward(f: ForwardRequest): Forwarding {
  const { req, api } = f;
  const rest = f.path.length > api.stripLength ? f.path.slice(api.stripLength) : '/';
  const hasBody = f.http2
    ? !(req as Http2ServerRequest).stream.endAfterHeaders
    : req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  const path = api.targetBase + rest + f.query;
  api.upstream.lastUsed = Date.now();
  if (api.upstream.http2) return forwardHttp2(f, path, hasBody);
  const options: Dispatcher.DispatchOptions = {
    path,
    method: req.method as Dispatcher.HttpMethod,
    headers: upstreamHeaderList(f) as string[],
    body: hasBody ? req : null,
    headersTimeout: f.timeoutMs,
    bodyTimeout: f.timeoutMs,
  };
  const exchange = new ProxyExchange(f, hasBody);
  api.upstream.dispatcher().dispatch(options, exchange);
  return exchange;
}
