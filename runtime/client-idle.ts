// The client idle timeout (--client-idle-timeout) for a request body: one that stops coming
// must not hold an upstream connection. Like NGINX's client_body_timeout (and Envoy's
// stream_idle_timeout) it bounds the time between two reads, not the whole transfer. (The
// answer's side, a client that stops reading, is runtime/proxy.ts's timer, armed at the first
// backpressure.)
//
// It reuses node's own idle timer of the client's transport, refreshed by every byte moved:
// the TLS socket for HTTP/1.1 (node:http clears it for the next request and sets its
// keep-alive timeout when the answer finishes), the stream for HTTP/2 (the session's own timer
// keeps running). No timer is made for a request without a body.
import type { Http2ServerResponse } from 'node:http2';
import { sendError } from './errors.ts';
import type { ClientRequest, ClientResponse } from './exchange.ts';

/** Arms the timer; `onIdle` becomes the answer's 'timeout' listener. */
export function armClientIdle(res: ClientResponse, ms: number, onIdle: () => void): void {
  // ServerResponse: its socket's timer (node:http emits 'timeout' on the answer, and destroys
  // the socket only when nobody listens). Http2ServerResponse: its stream's timer.
  res.setTimeout(ms);
  res.on('timeout', onIdle);
}

export function disarmClientIdle(res: ClientResponse): void {
  res.setTimeout(0);
}

/**
 * While the request body of `req` is coming (and a timeout is set), `onIdle` runs when it
 * stalls; the timer is cleared at the body's end (waiting for the upstream's answer is
 * --upstream-timeout's business). A request without a body costs the caller's one test.
 */
export function watchRequestBody(req: ClientRequest, res: ClientResponse, ms: number, onIdle: () => void): void {
  if (ms <= 0 || req.readableEnded) return;
  armClientIdle(res, ms, onIdle);
  req.once('end', () => disarmClientIdle(res));
}

/**
 * Answers a request whose client idled before anything was answered: 408, without waiting for
 * the rest of its body (HTTP/1.1: the connection ends with the answer; HTTP/2: the stream is
 * reset with NO_ERROR once the answer is out, RFC 9113 8.1).
 */
export function answerIdleClient(res: ClientResponse, http2: boolean): void {
  if (!http2) res.setHeader('connection', 'close');
  sendError(res, 'client.idle_timeout');
  if (http2) (res as Http2ServerResponse).stream.close();
}
