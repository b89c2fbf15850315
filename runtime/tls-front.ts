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
  /** A client whose TLS handshake is not complete this long after connecting is dropped. Default 10 s. */
  helloTimeoutMs?: number;
  /** Open connections at most (more are closed at accept). Default 10,000. */
  maxConnections?: number;
  /** Open connections per client address at most. Default 256. */
  maxConnectionsPerAddress?: number;
  /** A connection closed by a limit. */
  onRefused?: (reason: RefusedReason) => void;
}

/** Why a connection was closed by a limit; http2_rapid_reset and http2_control_flood: runtime/http2.ts, after the handshake. */
export type RefusedReason = 'max_connections' | 'max_connections_per_address' | 'handshake_deadline' | 'http2_rapid_reset' | 'http2_control_flood';

/** Set on an accepted socket: ends its handshake deadline. */
const HANDSHAKE_DONE = Symbol('handshakeDone');

/**
 * Tells the front that the TLS handshake of `tlsSocket` completed (runtime/tls-servers.ts calls
 * it on 'secureConnection'): its deadline, which runs from accept through the whole handshake,
 * ends. The TLS socket wraps the accepted socket, which Node keeps as `_parent` (internal, but
 * stable since the TLS socket wrapped net sockets); if it is ever missing, the deadline simply
 * stays and drops the connection, loudly, rather than letting a half-done handshake live.
 */
export function handshakeCompleted(tlsSocket: object): void {
  const raw = (tlsSocket as { _parent?: { [HANDSHAKE_DONE]?: () => void } })._parent;
  raw?.[HANDSHAKE_DONE]?.();
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
  const maxConnections = opts.maxConnections ?? 10_000;
  const maxPerAddress = opts.maxConnectionsPerAddress ?? 256;
  const onRefused = opts.onRefused ?? noop;
  const sockets = new Set<Socket>();
  const perAddress = new Map<string, number>();

  const server = createServer({ noDelay: true }, (socket) => {
    // A reset after hand-off surfaces on the TLS socket; this keeps a raw-socket error from
    // ever being an uncaught exception.
    socket.on('error', noop);
    // Caps first, before any byte is read: an attacker's extra sockets cost one accept and a close.
    const address = socket.remoteAddress ?? '';
    const fromAddress = perAddress.get(address) ?? 0;
    if (sockets.size >= maxConnections || fromAddress >= maxPerAddress) {
      onRefused(sockets.size >= maxConnections ? 'max_connections' : 'max_connections_per_address');
      socket.destroy();
      return;
    }
    sockets.add(socket);
    perAddress.set(address, fromAddress + 1);
    // A deadline from accept to the end of the TLS handshake, not an idle timeout: a client
    // dribbling its handshake a byte at a time must not hold the socket for ever.
    const deadline = setTimeout(() => {
      onRefused('handshake_deadline');
      socket.destroy();
    }, helloTimeoutMs);
    (socket as Socket & { [HANDSHAKE_DONE]?: () => void })[HANDSHAKE_DONE] = () => clearTimeout(deadline);
    socket.once('close', () => {
      sockets.delete(socket);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
      clearTimeout(deadline);
    });

    let buffered: Buffer | null = null;
    const onData = (chunk: Buffer): void => {
      buffered = buffered === null ? chunk : Buffer.concat([buffered, chunk]);
      const host = readClientHello(buffered);
      if (host === NEED_MORE) return;
      socket.removeListener('data', onData);
      if (host === NOT_TLS) {
        clearTimeout(deadline);
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
