// Cutting a stream so that the peer sees it cut. node:http2's stream.close(code) ends the
// stream's own side first (END_STREAM, then RST_STREAM): an upstream reads a request body cut
// short as complete and answers it, and res.destroy() on an answer resets with NO_ERROR, which
// a client reading an answer without a length takes as its end. Destroying the stream with an
// error resets it and sends nothing else: with node's AbortError the code is CANCEL, with any
// other error INTERNAL_ERROR.
import type { ClientHttp2Stream, Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { addAbortSignal, PassThrough } from 'node:stream';
import type { ClientResponse } from './exchange.ts';

/** Node's AbortError (not exported: this one comes from a stream an aborted signal destroyed). */
const CANCELLED: Error = (() => {
  const probe = new PassThrough();
  probe.on('error', () => {});
  addAbortSignal(AbortSignal.abort(), probe);
  return (probe.errored as Error | null) ?? new Error('cancelled');
})();
const FAILED = new Error('the answer could not be completed');

/** Resets an upstream stream with CANCEL, its request body not ended (a gRPC server sees a cancelled call). */
export function cancelStream(stream: ClientHttp2Stream): void {
  stream.destroy(CANCELLED);
}

/**
 * Ends an answer that started and cannot be completed: HTTP/1.1 closes the connection; HTTP/2
 * resets the stream, with CANCEL when the gateway chose to stop it (`cancelled`), else with
 * INTERNAL_ERROR (the upstream failed).
 */
export function cutAnswer(res: ClientResponse, http2: boolean, cancelled: boolean): void {
  if (http2) (res as Http2ServerResponse).stream.destroy(cancelled ? CANCELLED : FAILED);
  else res.destroy();
}

/**
 * HTTP/2: once the answer is complete (the stream's writable side finished: Http2ServerResponse's
 * own 'finish' waits for the stream's close), a request body not all read is dropped. The
 * gateway answered first (a refusal, an upstream failure or timeout, a slow body, a revocation)
 * or the upstream answered before reading it all: the stream is reset with NO_ERROR, which tells
 * the client to stop sending (RFC 9113 8.1), and what is left of the body is read and dropped.
 * node:http2 ends a closed stream's readable side only once what it holds is read, so a body
 * left paused (a pipe to an upstream stream that was cancelled pauses it, on its own later tick)
 * kept the stream, and the exchange's record, open until the client's session ended. One
 * listener (a closure) per HTTP/2 request that sends a body.
 */
export function dropUnreadBodyAfterAnswer(req: Http2ServerRequest): void {
  const stream = req.stream;
  stream.once('finish', () => {
    if (stream.destroyed || stream.readableEnded) return;
    // Unpiped now, so that a cancelled upstream stream's 'close' has no pipe left to pause.
    req.unpipe();
    stream.close();
    req.resume();
  });
}
