// Lingering close (docs/security.md section 45b): an HTTP/1.1 connection that ends with an
// answer sent before the whole request body (an early 413 or 401, runtime/proxy.ts) is not
// closed at once. Closing a TCP socket with unread bytes in its receive buffer sends a reset,
// and a client still sending its body (curl, a client that writes its request before it reads)
// gets EPIPE or ECONNRESET and never reads the answer. As NGINX's lingering_close and Apache's
// lingering close do, the gateway sends the answer and its end (close_notify, FIN), then reads
// and drops what the client still sends, and closes when the client does, or at the bound.
import type { Socket } from 'node:net';

/**
 * The bound on how long a connection lingers: NGINX's lingering_timeout (5 s without a byte
 * ends it) applied to the whole linger, so a slow sender costs a connection for 5 s at most,
 * as a connection idle in its request head costs one for node:http's headersTimeout.
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
  socket.destroySoon = lingeringClose;
}

function lingeringClose(this: ServedSocket): void {
  // The answer is written: take the socket from node:http's parser (which reads a TLS socket's
  // handle itself) so that what follows is read here, not parsed as the rest of a body or a
  // next request.
  const parser = this.parser;
  if (parser?._consumed === true) {
    parser.unconsume?.();
    parser._consumed = false;
  }
  this.removeAllListeners('data');
  this.removeAllListeners('end');
  let read = 0;
  const close = (): void => {
    clearTimeout(timer);
    this.destroy();
  };
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  this.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > LINGER_BYTES) close();
  });
  this.once('end', close);
  this.once('close', () => clearTimeout(timer));
  // The answer's end: close_notify and FIN once the answer is flushed; reading goes on.
  this.end();
  this.resume();
}
