// The request path: route -> static mTLS -> auth -> key state -> access -> limits -> proxy,
// each against the snapshot current when the request arrived. Also the gateway's lifecycle:
// listen, server-certificate reload, and drain on close.
import { createServer as createHttpsServer, type Server as HttpsServer, type ServerOptions } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { checkAccess } from './access.ts';
import { authenticate, checkKeyState, checkStaticMtls, Refusal } from './auth.ts';
import { errorStatus, sendError, type ErrorCode } from './errors.ts';
import { reportFault } from './faults.ts';
import { attachIdentity, identityOf, type ClientIdentity } from './identity.ts';
import type { LimitDecision, Limiter } from './limits/limiter.ts';
import { forward, type Forwarding } from './proxy.ts';
import { BAD_PATH, hostOf, routeRequest, withoutRootDot } from './route.ts';
import { hostNeedsCertificate, type PreparedApi, type PreparedKey, type Snapshot } from './snapshot.ts';
import { createTlsFront } from './tls-front.ts';

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
}

export interface GatewayOptions {
  /** Server TLS credentials (PEM). */
  cert: string | Buffer;
  key: string | Buffer;
  /** Called once per request, at arrival. */
  snapshot: () => Snapshot;
  /** Default 30000 -> 504 proxy.upstream_timeout. */
  upstreamTimeoutMs?: number;
  limiter?: Limiter;
  /** Called once per finished request (logging + metrics). */
  onRequest?: (r: RequestRecord) => void;
}

export interface Gateway {
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** SIGHUP reload: new handshakes use these. */
  setTlsCredentials(cert: string | Buffer, key: string | Buffer): void;
  /** Stop accepting; let in-flight requests finish (idle keep-alive connections closed); after the timeout destroy the rest. */
  close(drainTimeoutMs: number): Promise<void>;
  inFlight(): number;
}

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;
/** Client status for a request whose client left before the answer (nginx's convention). */
const CLIENT_CLOSED = 499;

const EXCHANGE = Symbol('mtlsgate.exchange');

/** The response's 'close' listener, shared by every request (no closure per request). */
function onResponseClose(this: ServerResponse): void {
  (this as unknown as Record<symbol, Exchange>)[EXCHANGE].closed();
}

/** One request's state, from arrival to the record. */
class Exchange {
  api: PreparedApi | null = null;
  key: PreparedKey | null = null;
  status = 0;
  code: ErrorCode | null = null;
  /** Read at arrival: a socket is detached from its request once the client leaves. */
  readonly remote: string;
  /** Host the request named, normalised path, and "?query" or "". */
  host = '';
  path = '';
  query = '';
  forwarding: Forwarding | null = null;

  constructor(
    readonly gateway: GatewayCore,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly snapshot: Snapshot,
    readonly identity: ClientIdentity | null,
    readonly started: number,
  ) {
    this.remote = req.socket.remoteAddress ?? '';
  }

  closed(): void {
    this.forwarding?.clientClosed();
    this.gateway.finished(this);
  }

  /** ProxyOutcome: what the upstream answered (or the error sent instead). */
  proxied(status: number, code: ErrorCode | null): void {
    this.status = status;
    this.code = code;
  }

  refuse(code: ErrorCode, message?: string, headers?: Record<string, string>): void {
    this.status = errorStatus(code);
    this.code = code;
    sendError(this.res, code, message, headers);
  }
}

class GatewayCore {
  private active = 0;
  draining = false;
  private drained: (() => void) | null = null;
  private readonly timeoutMs: number;

  constructor(
    private readonly opts: GatewayOptions,
    private readonly servers: HttpsServer[],
  ) {
    this.timeoutMs = opts.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
  }

  inFlight(): number {
    return this.active;
  }

  whenIdle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => (this.drained = resolve));
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const ex = new Exchange(this, req, res, this.opts.snapshot(), identityOf(req.socket), started);
    this.active++;
    (res as unknown as Record<symbol, Exchange>)[EXCHANGE] = ex;
    res.once('close', onResponseClose);
    if (this.draining) res.setHeader('connection', 'close');
    try {
      this.decide(ex);
    } catch (err) {
      this.fault(ex, err);
    }
  };

  /**
   * A fault in the request path (a bug, a header node:http refuses) answers its request with
   * a 502 instead of taking the process, and every other request, down.
   */
  private fault(ex: Exchange, err: unknown): void {
    reportFault('request path', err);
    if (ex.res.headersSent) ex.res.destroy();
    else ex.refuse('proxy.upstream_error');
  }

  finished(ex: Exchange): void {
    this.active--;
    if (!ex.res.writableFinished && ex.code === null) ex.status = CLIENT_CLOSED;
    const onRequest = this.opts.onRequest;
    if (onRequest !== undefined) {
      try {
        onRequest({
          api: ex.api?.id ?? null,
          key: ex.key?.id ?? null,
          cert: ex.identity?.fingerprint ?? null,
          status: ex.status,
          code: ex.code,
          method: ex.req.method ?? '',
          path: ex.req.url ?? '',
          durationMs: performance.now() - ex.started,
          remote: ex.remote,
        });
      } catch (err) {
        // Logging or metrics failed: the request is done either way; do not crash the gateway.
        reportFault('onRequest', err);
      }
    }
    if (this.draining) {
      // A keep-alive connection that just went idle must not wait for its timeout.
      for (const server of this.servers) server.closeIdleConnections();
      if (this.active === 0 && this.drained !== null) this.drained();
    }
  }

  private decide(ex: Exchange): void {
    const { req, snapshot, identity } = ex;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    ex.query = q === -1 ? '' : url.slice(q);
    ex.host = hostOf(req.headers.host, (req.socket as TLSSocket).servername || '');
    const routed = routeRequest(snapshot.routes, ex.host, q === -1 ? url : url.slice(0, q));
    if (routed === BAD_PATH) return ex.refuse('request.bad_path');
    if (routed === undefined) return ex.refuse('route.not_found');
    const api = routed.api;
    ex.api = api;
    ex.path = routed.path;
    const now = Date.now();
    if (api.def.use_mutual_tls_auth) {
      const refused = checkStaticMtls(api, identity, now);
      if (refused !== null) return ex.refuse(refused.code, refused.message);
    }
    if (!api.def.use_keyless) {
      const key = authenticate(snapshot, api, identity, req.headers, now);
      if (key instanceof Refusal) return ex.refuse(key.code, key.message);
      ex.key = key;
      const rest = ex.path.length > api.restStart ? ex.path.slice(api.restStart) : '/';
      const refused = checkKeyState(key, now) ?? checkAccess(key, api, rest, req.method ?? 'GET');
      if (refused !== null) return ex.refuse(refused.code, refused.message);
      const limiter = this.opts.limiter;
      if (key.limited && limiter !== undefined) {
        const decision = limiter.check(key.def, now);
        // A synchronous decision (in-process store) must not cost a microtask.
        if (decision instanceof Promise) {
          decision.then(
            (d) => {
              try {
                this.afterLimit(ex, d);
              } catch (err) {
                this.fault(ex, err);
              }
            },
            // The limiter contract says its promise never rejects (faults follow its onError);
            // should one reject anyway, a request path fault it is.
            (err) => this.fault(ex, err),
          );
          return;
        }
        return this.afterLimit(ex, decision);
      }
    }
    this.proxy(ex, null);
  }

  private afterLimit(ex: Exchange, decision: LimitDecision): void {
    if (!decision.allowed) return ex.refuse(decision.code ?? 'limit.rate', undefined, decision.headers);
    this.proxy(ex, decision.headers);
  }

  private proxy(ex: Exchange, headers: Record<string, string> | null): void {
    if (ex.res.destroyed) return; // the client left while the limiter decided
    ex.forwarding = forward({
      req: ex.req,
      res: ex.res,
      api: ex.api!,
      path: ex.path,
      query: ex.query,
      identity: ex.identity,
      remote: ex.remote,
      timeoutMs: this.timeoutMs,
      responseHeaders: headers,
      outcome: ex,
    });
  }
}

function tlsOptions(cert: string | Buffer, key: string | Buffer): ServerOptions {
  return { cert, key, minVersion: 'TLSv1.2' };
}

export function createGateway(opts: GatewayOptions): Gateway {
  const serverOptions: ServerOptions = { keepAliveTimeout: 65_000 };
  const withCertificate = createHttpsServer({ ...tlsOptions(opts.cert, opts.key), ...serverOptions, requestCert: true, rejectUnauthorized: false });
  const withoutCertificate = createHttpsServer({ ...tlsOptions(opts.cert, opts.key), ...serverOptions });
  const servers = [withCertificate, withoutCertificate];
  const core = new GatewayCore(opts, servers);
  for (const server of servers) {
    server.on('request', core.handle);
    // These servers never listen (the front hands them sockets); 'listening' is what makes
    // node:http track their connections (header/request timeouts, closeIdleConnections).
    server.emit('listening');
  }
  withCertificate.on('secureConnection', (socket: TLSSocket) => attachIdentity(socket, opts.snapshot().trustsCas));

  const front = createTlsFront({
    withCertificate,
    withoutCertificate,
    needsCertificate: (host) => hostNeedsCertificate(opts.snapshot(), withoutRootDot(host)),
  });

  let closing: Promise<void> | null = null;
  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        front.server.once('error', onError);
        front.server.listen(port, host, () => {
          front.server.removeListener('error', onError);
          resolve(front.server.address() as AddressInfo);
        });
      });
    },
    setTlsCredentials(cert, key) {
      for (const server of servers) server.setSecureContext(tlsOptions(cert, key));
    },
    close(drainTimeoutMs) {
      // SIGTERM twice, or SIGTERM during a start-up failure: one drain, one result.
      closing ??= drain(drainTimeoutMs);
      return closing;
    },
    inFlight: () => core.inFlight(),
  };

  async function drain(drainTimeoutMs: number): Promise<void> {
    core.draining = true;
    const stopped = new Promise<void>((resolve) => {
      if (!front.server.listening) return resolve();
      front.server.close(() => resolve());
    });
    for (const server of servers) server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([core.whenIdle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, drainTimeoutMs)))]);
    clearTimeout(timer);
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    for (const socket of front.sockets) socket.destroy();
    await stopped;
  }
}
