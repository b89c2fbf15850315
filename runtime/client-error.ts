// node:http's own answer to a request it cannot parse (oversized headers, a malformed line) is
// written and the socket destroyed in the same tick. On a TLS socket that loses the answer more
// often than not under load: the destroy drops what TLS has not flushed yet, and closing with
// the client's unread bytes in the kernel sends a reset, so curl reads an empty reply instead
// of 431. Here the answer ends the connection with a lingering close (runtime/lingering-close.ts:
// close_notify and FIN, then the rest of the client's bytes read and dropped until it closes,
// for at most a second or LINGER_BYTES).
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { lingeringClose } from './lingering-close.ts';

const CLOSE = 'Connection: close\r\nContent-Length: 0\r\n\r\n';
const ANSWERS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: `HTTP/1.1 431 Request Header Fields Too Large\r\n${CLOSE}`,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: `HTTP/1.1 413 Payload Too Large\r\n${CLOSE}`,
  ERR_HTTP_REQUEST_TIMEOUT: `HTTP/1.1 408 Request Timeout\r\n${CLOSE}`,
};
const BAD_REQUEST = `HTTP/1.1 400 Bad Request\r\n${CLOSE}`;

/**
 * How long a client that keeps sending after the answer is read before the connection is cut:
 * shorter than after an early answer (LINGER_MS), as nothing of its request was taken.
 */
const CLIENT_ERROR_LINGER_MS = 1_000;

/** Sockets already answered: a second report (the request timeout's, or the rest of a chunk the parser held) gets no second answer. */
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
  socket.write(ANSWERS[err.code ?? ''] ?? BAD_REQUEST);
  lingeringClose(socket as Socket, CLIENT_ERROR_LINGER_MS);
}
