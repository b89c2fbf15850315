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
import type { ClientResponse } from './exchange.ts';

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
