// node:http's own answer to a request it cannot parse (oversized headers, a malformed line) is
// written and the socket destroyed in the same tick. On a TLS socket that loses the answer more
// often than not under load: the destroy drops what TLS has not flushed yet, and closing with
// the client's unread bytes in the kernel sends a reset, so curl reads an empty reply instead
// of 431. Here the answer ends the connection gracefully (close_notify, FIN) and the rest of the
// client's bytes are read and dropped until it closes, or for at most a second.
import type { Duplex } from 'node:stream';

const CLOSE = 'Connection: close\r\nContent-Length: 0\r\n\r\n';
const ANSWERS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: `HTTP/1.1 431 Request Header Fields Too Large\r\n${CLOSE}`,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: `HTTP/1.1 413 Payload Too Large\r\n${CLOSE}`,
  ERR_HTTP_REQUEST_TIMEOUT: `HTTP/1.1 408 Request Timeout\r\n${CLOSE}`,
};
const BAD_REQUEST = `HTTP/1.1 400 Bad Request\r\n${CLOSE}`;

/** How long a client that keeps sending after the answer is read before the connection is cut. */
const LINGER_MS = 1_000;

/** Sockets already answered: the parser reports every later chunk as an error again. */
const answered = new WeakSet<Duplex>();

/** The server's 'clientError' handler. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (answered.has(socket)) return;
  answered.add(socket);
  // A response already started on this connection (or a socket gone): nothing can be said.
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent === true || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  socket.end(ANSWERS[err.code ?? ''] ?? BAD_REQUEST);
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}
