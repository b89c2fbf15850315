// Cutting a stream so that the peer sees it cut. node:http2's stream.close(code) ends the
// stream's own side first (END_STREAM, then RST_STREAM): an upstream reads a request body cut
// short as complete and answers it, and res.destroy() on an answer resets with NO_ERROR, which
// a client reading an answer without a length takes as its end. Destroying the stream with an
// error resets it and sends nothing else: with node's AbortError the code is CANCEL, with any
// other error INTERNAL_ERROR.
import type { ClientHttp2Stream, Http2ServerResponse } from 'node:http2';
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
