// Forwarding to an HTTP/2 upstream (`proxy.http2`, gRPC): one stream on the origin's shared
// node:http2 session, bodies piped both ways with backpressure, and the upstream's trailers
// (grpc-status, grpc-message) passed on to the client. Headers follow the same rules as the
// HTTP/1.1 path (runtime/proxy.ts), and so does the client idle timeout for a request body.
// Whenever the gateway gives up on the stream (the client left or idled, the request was
// refused while open, the upstream failed) it resets it with CANCEL, as a gRPC client cancels
// a call: the upstream's handler learns that the call is over, and a body cut short is never
// ended as if it were whole.
import type { ClientHttp2Stream, IncomingHttpHeaders, IncomingHttpStatusHeader } from 'node:http2';
import type { ServerResponse } from 'node:http';
import { AnswerWatch } from './answer-watch.ts';
import { answerSlowClient, type BodyWatch, type SlowBodyCode } from './body-watch.ts';
import { type ErrorCode, sendError } from './errors.ts';
import { type GrpcFraming, sendGrpcError } from './grpc.ts';
import { reportFault } from './faults.ts';
import { closeIfBodyUnread, type ForwardRequest, type Forwarding, grpcFramingFor, NOT_FORWARDED, watchBody } from './proxy.ts';
import { checkHeaders, clientHeaders, clientTrailers, upstreamHeaders } from './proxy-headers.ts';
import { cancelStream, cutAnswer } from './stream-reset.ts';
import { OTHER_CAUSE, resetCause, upstreamCause } from './upstream-cause.ts';

/** The cause recorded when the upstream stream moved nothing for --upstream-timeout. */
const STREAM_TIMEOUT = 'STREAM_TIMEOUT';

class Http2Forwarding implements Forwarding {
  private status = 0;
  private finished = false;
  private trailers: IncomingHttpHeaders | null = null;
  /** The request body's idle timeout and minimum rate, while it goes upstream. */
  private bodyWatch: BodyWatch | null = null;
  /** The answer's (runtime/answer-watch.ts): made at its first backpressure. */
  private answerWatch: AnswerWatch | null = null;
  readonly grpcAnswer: GrpcFraming | null;

  constructor(
    private readonly f: ForwardRequest,
    private readonly stream: ClientHttp2Stream,
  ) {
    this.grpcAnswer = grpcFramingFor(f);
  }

  clientClosed(): void {
    if (this.finished) return;
    this.finish(this.status === 0 ? 499 : this.status);
    this.cancel();
  }

  cut(): void {
    if (this.finished) return;
    this.finished = true;
    this.bodyWatch?.stop();
    this.answerWatch?.stop();
    this.drop();
  }

  private cancel(): void {
    cancelStream(this.stream);
  }

  /** Cancels the stream; what it sent that the client has not been given yet is dropped (the caller ends the answer). */
  private drop(): void {
    this.stream.unpipe(this.f.res as ServerResponse);
    this.cancel();
  }

  private finish(status: number, code: ErrorCode | null = null, upstreamError?: string): void {
    if (this.finished) return;
    this.finished = true;
    this.bodyWatch?.stop();
    this.answerWatch?.stop();
    this.f.outcome.proxied(status, code, upstreamError);
  }

  /** The request body stopped or trickled (runtime/body-watch.ts): the upstream stream is cancelled. */
  private slowClient(code: SlowBodyCode): void {
    if (this.finished) return;
    const res = this.f.res;
    const answered = res.headersSent;
    this.finish(answered ? this.status : 408, code);
    this.drop();
    if (!answered) answerSlowClient(res, this.f.http2, code);
    else if (!res.writableFinished) cutAnswer(res, this.f.http2, true);
  }

  /**
   * The client must take the answer as the undici path's must (sections 57 and 62): the pipe
   * pauses the upstream stream when the client's response refuses a write, which this listener,
   * after the pipe's, sees as the stream no longer flowing. One test per chunk; the pipe resumes
   * the stream itself at the 'drain'.
   */
  private watchAnswer(res: ServerResponse): void {
    const { stream, f } = this;
    if (f.clientIdleMs <= 0 && f.minAnswerRate === null) return;
    stream.on('data', () => {
      if (stream.readableFlowing !== false || this.finished) return;
      this.answerWatch ??= new AnswerWatch(res, f.clientIdleMs, f.minAnswerRate, (code) => this.slowClient(code), null);
      this.answerWatch.backpressured();
    });
  }

  start(hasBody: boolean): void {
    const { stream, f } = this;
    const res = f.res as ServerResponse;
    stream.setTimeout(f.timeoutMs, () => this.fail(true, STREAM_TIMEOUT));
    stream.on('response', (headers: IncomingHttpHeaders & IncomingHttpStatusHeader) => {
      const status = Number(headers[':status']);
      if (status < 200) return;
      try {
        const out = clientHeaders(headers as never);
        for (const name in out) if (name.charCodeAt(0) === 58) delete out[name];
        const extra = f.responseHeaders;
        if (f.http2) checkHeaders(extra, out);
        if (extra !== null) for (const name in extra) res.setHeader(name, extra[name]);
        closeIfBodyUnread(f, hasBody);
        res.writeHead(status, out);
        this.status = status;
      } catch (err) {
        reportFault('response headers', err);
        this.fail(false, upstreamCause(err));
        return;
      }
      stream.pipe(res, { end: false });
      this.watchAnswer(res);
      // Beside the pipe, which writes each chunk to the client as it is emitted.
      const framing = this.grpcAnswer;
      if (framing !== null) stream.on('data', (chunk: Buffer) => framing.add(chunk));
    });
    stream.on('trailers', (trailers: IncomingHttpHeaders) => (this.trailers = trailers));
    // 'close' comes after both the body's end and the trailers, in whichever order those came.
    stream.once('close', () => {
      if (this.finished) return;
      const rst = stream.rstCode;
      if (this.status === 0 || (rst !== undefined && rst !== 0 && !stream.readableEnded)) {
        return this.fail(false, rst !== undefined && rst !== 0 ? resetCause(rst) : OTHER_CAUSE);
      }
      const trailers = this.trailers;
      const out = trailers === null ? null : clientTrailers(trailers);
      if (out !== null) res.addTrailers(out);
      res.end();
      this.finish(this.status);
    });
    stream.on('error', (err: NodeJS.ErrnoException) => this.fail(false, this.errorCause(err)));
    if (hasBody) {
      // Watched from the same tick the pipe starts the body flowing: every chunk is counted.
      this.bodyWatch = watchBody(f, (code) => this.slowClient(code));
      f.req.pipe(stream);
    }
  }

  /**
   * A stream error's cause: the upstream's RST_STREAM code by name (node reports every reset as
   * ERR_HTTP2_STREAM_ERROR); for a stream the failed session took with it (ERR_HTTP2_STREAM_CANCEL),
   * the session's error (ECONNREFUSED, a TLS code), which node gives as its cause; else the
   * error's own code.
   */
  private errorCause(err: NodeJS.ErrnoException): string {
    const rst = this.stream.rstCode;
    if (err.code === 'ERR_HTTP2_STREAM_ERROR' && rst !== undefined && rst !== 0) return resetCause(rst);
    if (err.code === 'ERR_HTTP2_STREAM_CANCEL' && err.cause !== undefined) return upstreamCause(err.cause);
    return upstreamCause(err);
  }

  /** `cause`: why, for the record (runtime/upstream-cause.ts); read before cancel() resets the stream itself. */
  private fail(timeout: boolean, cause: string): void {
    if (this.finished) return;
    const res = this.f.res;
    this.cancel();
    if (res.headersSent) {
      cutAnswer(res, this.f.http2, false);
      this.finish(502, 'proxy.upstream_error', cause);
      return;
    }
    const code = timeout ? 'proxy.upstream_timeout' : 'proxy.upstream_error';
    // A gRPC client reads grpc-status and grpc-message, not the HTTP status (runtime/grpc.ts).
    (this.f.grpc ? sendGrpcError : sendError)(res, code, undefined, this.f.responseHeaders ?? undefined);
    this.finish(timeout ? 504 : 502, code, cause);
  }
}

export function forwardHttp2(f: ForwardRequest, path: string, hasBody: boolean): Forwarding {
  const upstream = f.api.upstream;
  const headers: Record<string, string | string[]> = upstreamHeaders(f);
  let stream: ClientHttp2Stream;
  try {
    const session = upstream.http2Session();
    stream = session.request({ ...headers, ':method': f.req.method ?? 'GET', ':path': path, ':authority': upstream.authority }, { endStream: !hasBody });
  } catch (err) {
    reportFault('upstream http2', err);
    (f.grpc ? sendGrpcError : sendError)(f.res, 'proxy.upstream_error');
    f.outcome.proxied(502, 'proxy.upstream_error', upstreamCause(err));
    return NOT_FORWARDED;
  }
  const forwarding = new Http2Forwarding(f, stream);
  forwarding.start(hasBody);
  return forwarding;
}
