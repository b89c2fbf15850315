// The gateway: a TLS front (runtime/tls-front.ts) handing each connection to a transport
// (runtime/http1.ts or runtime/http2.ts, by ALPN), whose requests go through the stages (runtime/stages/) against the
// snapshot current when they arrive. This file holds what is the same for every transport:
// the in-flight count, the per-request record, listen, server-certificate reload, and the
// drain on close.
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { listen } from '../common/listen.ts';
import type { MinAnswerRate, MinBodyRate } from './body-watch.ts';
import type { CertHeaderReader } from './client-cert-header.ts';
import { reportFault } from './faults.ts';
import { refusal } from './errors.ts';
import { createHttp1Transport, http1Exchange } from './http1.ts';
import { createHttp2Transport, DEFAULT_HTTP2_MAX_STREAMS } from './http2.ts';
import { attachIdentity } from './identity.ts';
import { OpenRequests } from './open-requests.ts';
import type { Limiter } from './limits/limiter.ts';
import { withoutRootDot } from './route.ts';
import { hostNeedsCertificate, type Snapshot } from './snapshot.ts';
import { createTlsFront, type RefusedReason } from './tls-front.ts';
import { createTlsServers, type TlsPair } from './tls-servers.ts';
import { declaresBody, isWebSocketUpgrade, WebSockets } from './websocket.ts';
import { startExchange } from './exchange.ts';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

export interface RequestRecord {
  api: string | null;
  key: string | null;
  /** SHA-256 hex of the client's leaf certificate. */
  cert: string | null;
  status: number;
  /** Error code, or null when proxied (or when the client left first: status 499). */
  code: string | null;
  method: string;
  path: string;
  durationMs: number;
  remote: string;
  /**
   * Why the upstream exchange failed (ECONNREFUSED, CERT_HAS_EXPIRED, NGHTTP2_INTERNAL_ERROR,
   * `other`: runtime/upstream-cause.ts), on a 502/504 proxy.upstream_* only: absent otherwise,
   * so a record that has none is built and logged as before.
   */
  upstreamError?: string;
}

export interface GatewayOptions {
  /** Server TLS credentials (PEM). */
  cert: string | Buffer;
  key: string | Buffer;
  /** More server certificates, chosen by SNI (runtime/tls-servers.ts); `cert`/`key` is the default. */
  moreCertificates?: TlsPair[];
  /** Called once per request, at arrival. */
  snapshot: () => Snapshot;
  /** Default 30000 -> 504 proxy.upstream_timeout. */
  upstreamTimeoutMs?: number;
  /**
   * A request body that sends nothing, or an answer the client reads nothing of, for this long
   * is cut (408 client.idle_timeout) and its upstream request aborted. Default 30000; 0: never.
   */
  clientIdleTimeoutMs?: number;
  /**
   * An open WebSocket tunnel through which no byte went either way for this long is closed
   * (docs/security.md section 51). Default 300000 (Envoy's stream idle timeout); 0: never.
   */
  websocketIdleTimeoutMs?: number;
  /**
   * A request body slower than this over the last grace period, once the first has passed, is
   * cut (408 client.body_too_slow) and its upstream request aborted. Default 240 bytes/s over
   * 5 s (Kestrel's MinRequestBodyDataRate, over a window); null: no minimum.
   */
  minBodyRate?: MinBodyRate | null;
  /**
   * An answer whose client takes the bytes waiting for it slower than this is cut
   * (client.answer_too_slow) and its upstream request aborted: once backpressure holds W bytes,
   * they must be taken within the grace plus W at this rate (docs/security.md section 57).
   * Default DEFAULT_MIN_ANSWER_RATE; null: no minimum.
   */
  minAnswerRate?: MinAnswerRate | null;
  limiter?: Limiter;
  /** Called once per finished request (logging + metrics). */
  onRequest?: (r: RequestRecord) => void;
  /** Open connections at most (`--max-connections`, default 10,000). */
  maxConnections?: number;
  /** Open connections per client address at most (`--max-connections-per-address`, default 256). */
  maxConnectionsPerAddress?: number;
  /** HTTP/2 streams open at once per connection (`--http2-max-streams`, default 100). */
  http2MaxStreams?: number;
  /**
   * Streams an HTTP/2 client may reset before they are answered (`--http2-max-resets`, default 100)
   * per `--http2-reset-period` (default 60,000 ms) before its connection gets GOAWAY(ENHANCE_YOUR_CALM).
   */
  http2MaxResets?: number;
  http2ResetPeriodMs?: number;
  /** From accept to the end of the TLS handshake at most (default 10 s). */
  handshakeTimeoutMs?: number;
  /** A connection closed by a limit (for /metrics). */
  onConnectionRefused?: (reason: RefusedReason) => void;
  /** --client-cert-header with --trusted-proxies: client certificates from a TLS-terminating load balancer's header. */
  certHeader?: CertHeaderReader;
}

export interface Gateway {
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** --listen-plain: plain HTTP for the trusted proxies of `certHeader` (refuses everyone else). */
  listenPlain(port: number, host?: string): Promise<AddressInfo>;
  /** SIGHUP reload: new handshakes use these (`more`: the other SNI-chosen pairs). */
  setTlsCredentials(cert: string | Buffer, key: string | Buffer, more?: TlsPair[]): void;
  /** Open WebSocket tunnels. */
  openWebSockets(): number;
  /** Stop accepting; let in-flight requests finish (idle keep-alive connections closed); after the timeout destroy the rest. */
  close(drainTimeoutMs: number): Promise<void>;
  inFlight(): number;
}

const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;
const DEFAULT_CLIENT_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_WEBSOCKET_IDLE_TIMEOUT_MS = 300_000;
export const DEFAULT_MIN_BODY_RATE: MinBodyRate = Object.freeze({ bytesPerSecond: 240, graceMs: 5_000 });
/**
 * `--min-answer-rate` default: Kestrel's MinResponseDataRate grace (5 s) but not its 240 bytes/s.
 * A backpressured answer holds at least node's 16 KiB high-water mark, which --client-idle-timeout
 * (30 s) already asks to be taken within 30 s (546 bytes/s): a floor below that would never
 * fire first (docs/security.md section 57).
 */
export const DEFAULT_MIN_ANSWER_RATE: MinAnswerRate = Object.freeze({ bytesPerSecond: 4_096, graceMs: 5_000 });

/** What a transport asks of the gateway for each request. */
export interface GatewayCore {
  /** The snapshot a request arriving now is decided against. */
  readonly snapshot: () => Snapshot;
  readonly limiter: Limiter | null;
  readonly upstreamTimeoutMs: number;
  /** --client-idle-timeout: a stalled request body or answer is cut after this (0: never). */
  readonly clientIdleTimeoutMs: number;
  /** --min-body-rate: a request body trickling below it is cut (null: no minimum). */
  readonly minBodyRate: MinBodyRate | null;
  /** --min-answer-rate: an answer taken slower than this while it waits is cut (null: no minimum). */
  readonly minAnswerRate: MinAnswerRate | null;
  /** Reads client certificates from a trusted proxy's header; null (the default): handshake certificates only. */
  readonly certHeader: CertHeaderReader | null;
  /** Closing: answers carry `Connection: close`. */
  readonly draining: boolean;
  /** Requests proxied and not yet closed, decided again while open (runtime/open-requests.ts). */
  readonly open: OpenRequests;
  /** A request arrived. */
  started(): void;
  /** A request's response closed (answered or abandoned). */
  finished(record: RequestRecord): void;
}

class Core implements GatewayCore {
  private active = 0;
  draining = false;
  private drained: (() => void) | null = null;
  readonly snapshot: () => Snapshot;
  readonly limiter: Limiter | null;
  readonly upstreamTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
  readonly minBodyRate: MinBodyRate | null;
  readonly minAnswerRate: MinAnswerRate | null;
  readonly certHeader: CertHeaderReader | null;
  readonly open: OpenRequests;
  /** Set once the transport exists: lets a connection that just went idle close during a drain. */
  closeIdleConnections: () => void = () => {};

  private readonly onRequest: ((r: RequestRecord) => void) | undefined;

  constructor(opts: GatewayOptions) {
    this.onRequest = opts.onRequest;
    this.snapshot = opts.snapshot;
    this.limiter = opts.limiter ?? null;
    this.upstreamTimeoutMs = opts.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    this.clientIdleTimeoutMs = opts.clientIdleTimeoutMs ?? DEFAULT_CLIENT_IDLE_TIMEOUT_MS;
    this.minBodyRate = opts.minBodyRate === undefined ? DEFAULT_MIN_BODY_RATE : opts.minBodyRate;
    this.minAnswerRate = opts.minAnswerRate === undefined ? DEFAULT_MIN_ANSWER_RATE : opts.minAnswerRate;
    this.certHeader = opts.certHeader ?? null;
    this.open = new OpenRequests(opts.snapshot);
  }

  inFlight(): number {
    return this.active;
  }

  whenIdle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => (this.drained = resolve));
  }

  started(): void {
    this.active++;
  }

  finished(record: RequestRecord): void {
    this.active--;
    if (this.onRequest !== undefined) {
      try {
        this.onRequest(record);
      } catch (err) {
        // Logging or metrics failed: the request is done either way; do not crash the gateway.
        reportFault('onRequest', err);
      }
    }
    if (this.draining) {
      // A keep-alive connection that just went idle must not wait for its timeout.
      this.closeIdleConnections();
      if (this.active === 0 && this.drained !== null) this.drained();
    }
  }
}

export function createGateway(opts: GatewayOptions): Gateway {
  const core = new Core(opts);
  const websockets = new WebSockets(opts.websocketIdleTimeoutMs ?? DEFAULT_WEBSOCKET_IDLE_TIMEOUT_MS);
  const onUpgrade =
    (plain: boolean) =>
    (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      // node:http hands an Upgrade over without a response; give it one so that a refusal is
      // answered like any other. Upgrades other than WebSocket are served as plain requests.
      const res = WebSockets.responseFor(req, socket);
      const ex = http1Exchange(core, req, res, plain);
      // The body of an upgrade is never read as one (node:http hands the connection over at
      // the end of the headers): refused, not forwarded empty (section 40).
      if (declaresBody(req)) ex.refusedAtArrival ??= refusal('request.upgrade_with_body');
      else if (isWebSocketUpgrade(req)) {
        // RFC 6455 4.1: a handshake is a GET. Another method would be checked by the stages as
        // itself (allowed_urls' methods) and then become a tunnel if the upstream upgrades it.
        if (req.method === 'GET') ex.upgrade = { tunnels: websockets, socket, head };
        else ex.refusedAtArrival ??= refusal('request.websocket_not_get');
      }
      startExchange(ex);
    };
  const http1 = createHttp1Transport(core, onUpgrade(false));
  const http2 = createHttp2Transport(core, {
    maxStreams: opts.http2MaxStreams ?? DEFAULT_HTTP2_MAX_STREAMS,
    maxResets: opts.http2MaxResets,
    resetPeriodMs: opts.http2ResetPeriodMs,
    onRapidReset: () => opts.onConnectionRefused?.('http2_rapid_reset'),
    onControlFlood: () => opts.onConnectionRefused?.('http2_control_flood'),
  });
  // --listen-plain: its own HTTP/1.1 transport, fed by a plain TCP listener (made on first use).
  const plainHttp = opts.certHeader === undefined ? null : createHttp1Transport(core, onUpgrade(true), true);
  const plainSockets = new Set<Socket>();
  const plainFront = createNetServer({ noDelay: true }, (socket) => {
    plainSockets.add(socket);
    socket.on('error', () => {}); // a reset concerns that connection only
    socket.once('close', () => plainSockets.delete(socket));
    plainHttp!.accept(socket);
  });
  core.closeIdleConnections = () => {
    http1.closeIdleConnections();
    http2.closeIdleConnections();
    plainHttp?.closeIdleConnections();
  };
  const tls = createTlsServers([{ cert: opts.cert, key: opts.key }, ...(opts.moreCertificates ?? [])], (socket, askedForCertificate) => {
    if (askedForCertificate) attachIdentity(socket, opts.snapshot().trustsCas);
    if (socket.alpnProtocol === 'h2') http2.accept(socket);
    else http1.accept(socket);
  });

  const front = createTlsFront({
    withCertificate: tls.withCertificate,
    withoutCertificate: tls.withoutCertificate,
    needsCertificate: (host) => hostNeedsCertificate(opts.snapshot(), withoutRootDot(host)),
    maxConnections: opts.maxConnections,
    maxConnectionsPerAddress: opts.maxConnectionsPerAddress,
    helloTimeoutMs: opts.handshakeTimeoutMs,
    onRefused: opts.onConnectionRefused,
  });

  let closing: Promise<void> | null = null;
  return {
    listen: (port, host) => listen(front.server, port, host),
    listenPlain(port, host) {
      if (plainHttp === null) return Promise.reject(new Error('a plain-HTTP listener needs a client certificate header (--client-cert-header)'));
      return listen(plainFront, port, host);
    },
    setTlsCredentials: (cert, key, more) => tls.setCredentials([{ cert, key }, ...(more ?? [])]),
    openWebSockets: () => websockets.count(),
    close(drainTimeoutMs) {
      // SIGTERM twice, or SIGTERM during a start-up failure: one drain, one result.
      closing ??= drain(drainTimeoutMs);
      return closing;
    },
    inFlight: () => core.inFlight(),
  };

  async function drain(drainTimeoutMs: number): Promise<void> {
    core.draining = true;
    websockets.goingAway();
    const stopped = Promise.all(
      [front.server, plainFront].map(
        (server) =>
          new Promise<void>((resolve) => {
            if (!server.listening) return resolve();
            server.close(() => resolve());
          }),
      ),
    );
    core.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([core.whenIdle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, drainTimeoutMs)))]);
    clearTimeout(timer);
    http1.closeAll();
    http2.closeAll();
    plainHttp?.closeAll();
    websockets.closeAll();
    for (const socket of front.sockets) socket.destroy();
    for (const socket of plainSockets) socket.destroy();
    await stopped;
  }
}
