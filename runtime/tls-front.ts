// The listening socket in front of the two HTTPS servers. Node sets a connection's "request a
// client certificate" mode from its server's requestCert, and an SNICallback cannot change it
// per host. So the front reads the ClientHello's SNI itself, then hands the untouched bytes and
// the socket to the server that asks for a certificate (hosts with an API that uses one) or to
// the one that does not (a browser on a plain API never sees a certificate prompt).
import { createServer, type Server, type Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { NEED_MORE, NOT_TLS, readClientHello } from './client-hello.ts';

interface TlsFrontOptions {
  withCertificate: TlsServer;
  withoutCertificate: TlsServer;
  /** Does a connection for this SNI host ("" = none) get a CertificateRequest. */
  needsCertificate: (host: string) => boolean;
  /** A client that sends no complete ClientHello within this is dropped. Default 10 s. */
  helloTimeoutMs?: number;
}

const PLAIN_HTTP_HINT = 'This port speaks HTTPS only: use an https:// URL\n';
const PLAIN_HTTP_ANSWER = `HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${PLAIN_HTTP_HINT.length}\r\n\r\n${PLAIN_HTTP_HINT}`;

function noop(): void {}

interface TlsFront {
  server: Server;
  /** Every accepted socket still open (handed off or not). */
  sockets: ReadonlySet<Socket>;
}

export function createTlsFront(opts: TlsFrontOptions): TlsFront {
  const helloTimeoutMs = opts.helloTimeoutMs ?? 10_000;
  const sockets = new Set<Socket>();

  const server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    // A reset after hand-off surfaces on the TLS socket; this keeps a raw-socket error from
    // ever being an uncaught exception.
    socket.on('error', noop);
    // A deadline from accept, not an idle timeout: a client dribbling its ClientHello a byte at
    // a time must not hold the socket for ever.
    const deadline = setTimeout(() => socket.destroy(), helloTimeoutMs);
    socket.once('close', () => {
      sockets.delete(socket);
      clearTimeout(deadline);
    });

    let buffered: Buffer | null = null;
    const onData = (chunk: Buffer): void => {
      buffered = buffered === null ? chunk : Buffer.concat([buffered, chunk]);
      const host = readClientHello(buffered);
      if (host === NEED_MORE) return;
      socket.removeListener('data', onData);
      clearTimeout(deadline);
      if (host === NOT_TLS) {
        // A plain-HTTP request gets a one-line hint; anything else is just closed.
        if (/^[A-Z]{3,7} /.test(buffered.toString('latin1', 0, 8))) socket.end(PLAIN_HTTP_ANSWER);
        else socket.destroy();
        return;
      }
      socket.pause();
      socket.unshift(buffered);
      const target = opts.needsCertificate(host) ? opts.withCertificate : opts.withoutCertificate;
      target.emit('connection', socket);
    };
    socket.on('data', onData);
  });
  return { server, sockets };
}
