// Lingering close (docs/security.md sections 45b and 50): an HTTP/1.1 connection that ends with
// an answer the client may not be reading yet (an early 413 or 401 before the whole request
// body, runtime/proxy.ts; node:http's own 431 or 400, runtime/client-error.ts) is not closed at
// once. Closing a TCP socket with unread bytes in its receive buffer sends a reset, and a client
// still sending (curl, a client that writes its request before it reads) gets EPIPE or
// ECONNRESET and never reads the answer. As NGINX's lingering_close and Apache's lingering close
// do, the gateway sends the answer and its end (close_notify, FIN), then reads and drops what
// the client still sends, and closes when the client does, or at a bound: a time, and
// LINGER_BYTES read, whichever comes first.
import type { Socket } from 'node:net';

/**
 * The time bound after an early answer: NGINX's lingering_timeout (5 s without a byte ends it)
 * applied to the whole linger, so a slow sender costs a connection for 5 s at most, as a
 * connection idle in its request head costs one for node:http's headersTimeout.
 */
export const LINGER_MS = 5_000;
/**
 * The bound on what a lingering connection reads, decrypts and drops: 8 MiB, about 8 ms of
 * AES-GCM at 1 GB/s, and what a fast link carries in the 5 s. An upload that was in flight when the answer
 * went (curl keeps up to 1 MiB in its buffers, the kernel's send and receive buffers a few MiB)
 * fits, and a client that sends forever is cut here.
 */
export const LINGER_BYTES = 8 << 20;

/** What node:http's server keeps on a socket it serves (lib/_http_server.js). */
interface ServedSocket extends Socket {
  parser?: { _consumed?: boolean; unconsume?(): void } | null;
}

/**
 * Makes the socket linger instead of closing when node:http ends it after the answer (it calls
 * socket.destroySoon() for an answer with `Connection: close`). Set on the rare path only: an
 * answer that came before the whole body.
 */
export function lingerAfterAnswer(socket: Socket): void {
  socket.destroySoon = lingerOnDestroySoon;
}

function lingerOnDestroySoon(this: ServedSocket): void {
  lingeringClose(this, LINGER_MS);
}

/**
 * Ends the connection after what is written on it (the answer), then reads and drops what the
 * client still sends until it closes, `ms` pass or LINGER_BYTES are read.
 */
export function lingeringClose(socket: ServedSocket, ms: number): void {
  // Take the socket from node:http's parser (which reads a TLS socket's handle itself) so that
  // what follows is read here, not parsed as the rest of a body, a next request or (after a
  // parse error) an error again.
  const parser = socket.parser;
  if (parser?._consumed === true) {
    parser.unconsume?.();
    parser._consumed = false;
  }
  socket.removeAllListeners('data');
  socket.removeAllListeners('end');
  let read = 0;
  const close = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(close, ms);
  timer.unref();
  socket.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > LINGER_BYTES) close();
  });
  socket.once('end', close);
  socket.once('close', () => clearTimeout(timer));
  // The answer's end: close_notify and FIN once the answer is flushed; reading goes on.
  socket.end();
  socket.resume();
}
