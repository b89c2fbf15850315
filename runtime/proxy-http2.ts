// Forwarding to an HTTP/2 upstream (`proxy.http2`, gRPC): one stream on the origin's shared
// node:http2 session, bodies piped both ways with backpressure, and the upstream's trailers
// (grpc-status, grpc-message) passed on to the client. Headers follow the same rules as the
// HTTP/1.1 path (runtime/proxy.ts).
import type { ClientHttp2Stream, IncomingHttpHeaders, IncomingHttpStatusHeader } from 'node:http2';
import type { ServerResponse } from 'node:http';
import { answerSlowClient, type BodyWatch, type SlowBodyCode } from './body-watch.ts';
import { type ErrorCode, sendError } from './errors.ts';
import { reportFault } from './faults.ts';
import { checkHeaders, clientHeaders, type ForwardRequest, type Forwarding, upstreamHeaders, watchBody } from './proxy.ts';

class Http2Forwarding implements Forwarding {
  private status = 0;
  private finished = false;
  private trailers: IncomingHttpHeaders | null = null;
  /** The request body's idle timeout and minimum rate, while it goes upstream. */
  private bodyWatch: BodyWatch | null = null;

  constructor(
    private readonly f: ForwardRequest,
    private readonly stream: ClientHttp2Stream,
  ) {}

  clientClosed(): void {
    if (this.finished) return;
    this.finish(this.status === 0 ? 499 : this.status);
    this.stream.close();
  }

  private finish(status: number, code: ErrorCode | null = null): void {
    if (this.finished) return;
    this.finished = true;
    this.bodyWatch?.stop();
    this.f.outcome.proxied(status, code);
  }

  /** The request body stopped or trickled (runtime/body-watch.ts): the upstream stream goes. */
  private cut(code: SlowBodyCode): void {
    if (this.finished) return;
    this.finish(this.f.res.headersSent ? this.status : 408, code);
    // Reset, not close(): close() ends the body (END_STREAM) before its RST_STREAM, and the
    // upstream would take the truncated body for a whole one.
    this.stream.destroy(new Error(code));
    answerSlowClient(this.f.res, this.f.http2, code);
  }

  start(hasBody: boolean): void {
    const { stream, f } = this;
    const res = f.res as ServerResponse;
    stream.setTimeout(f.timeoutMs, () => this.fail(true));
    stream.on('response', (headers: IncomingHttpHeaders & IncomingHttpStatusHeader) => {
      const status = Number(headers[':status']);
      if (status < 200) return;
      try {
        const out = clientHeaders(headers as never);
        for (const name in out) if (name.charCodeAt(0) === 58) delete out[name];
        const extra = f.responseHeaders;
        if (f.http2) checkHeaders(extra, out);
        if (extra !== null) for (const name in extra) res.setHeader(name, extra[name]);
        res.writeHead(status, out);
        this.status = status;
      } catch (err) {
        reportFault('response headers', err);
        this.stream.close();
        this.fail(false);
        return;
      }
      stream.pipe(res, { end: false });
    });
    stream.on('trailers', (trailers: IncomingHttpHeaders) => (this.trailers = trailers));
    // 'close' comes after both the body's end and the trailers, in whichever order those came.
    stream.once('close', () => {
      if (this.finished) return;
      if (this.status === 0 || (stream.rstCode !== undefined && stream.rstCode !== 0 && !stream.readableEnded)) return this.fail(false);
      const trailers = this.trailers;
      if (trailers !== null) {
        const out = clientHeaders(trailers as never);
        if (Object.keys(out).length > 0) res.addTrailers(out as Record<string, string>);
      }
      res.end();
      this.finish(this.status);
    });
    stream.on('error', () => this.fail(false));
    if (hasBody) {
      // Watched from the same tick the pipe starts the body flowing: every chunk is counted.
      this.bodyWatch = watchBody(f, (code) => this.cut(code));
      f.req.pipe(stream);
    }
  }

  private fail(timeout: boolean): void {
    if (this.finished) return;
    const res = this.f.res;
    this.stream.close();
    if (res.headersSent) {
      res.destroy();
      this.finish(502, 'proxy.upstream_error');
      return;
    }
    const code = timeout ? 'proxy.upstream_timeout' : 'proxy.upstream_error';
    sendError(res, code, undefined, this.f.responseHeaders ?? undefined);
    this.finish(timeout ? 504 : 502, code);
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
    sendError(f.res, 'proxy.upstream_error');
    f.outcome.proxied(502, 'proxy.upstream_error');
    return { clientClosed() {} };
  }
  const forwarding = new Http2Forwarding(f, stream);
  forwarding.start(hasBody);
  return forwarding;
}
