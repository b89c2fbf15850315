// The HTTP/1.1 transport: node:https servers, IncomingMessage/ServerResponse, the Host header.
// Everything HTTP-version specific about a request sits here: it turns a request into a
// RequestContext (host from Host or SNI, path and query split once), runs the stages
// (runtime/stages/), then answers the refusal or proxies (runtime/proxy.ts). Another transport
// (HTTP/2) is another file like this one; the stages do not change.
import { createServer as createHttpsServer, type Server as HttpsServer, type ServerOptions } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { errorStatus, sendError, type ErrorCode, type Refusal } from './errors.ts';
import { reportFault } from './faults.ts';
import { attachIdentity, identityOf, type ClientIdentity } from './identity.ts';
import { forward, type Forwarding } from './proxy.ts';
import { hostOf } from './route.ts';
import { RequestContext } from './stages/context.ts';
import { STAGES } from './stages/index.ts';
import { runStages } from './stages/run.ts';
import { GO, type Verdict } from './stages/stage.ts';
import type { GatewayCore } from './gateway.ts';

/** Client status for a request whose client left before the answer (nginx's convention). */
const CLIENT_CLOSED = 499;

const EXCHANGE = Symbol('mtlsgate.exchange');

/** The response's 'close' listener, shared by every request (no closure per request). */
function onResponseClose(this: ServerResponse): void {
  (this as unknown as Record<symbol, Http1Exchange>)[EXCHANGE].closed();
}

/** One request from arrival to its record: the stages' context plus node:http's req and res. */
class Http1Exchange extends RequestContext {
  declare readonly identity: ClientIdentity | null;
  status = 0;
  code: ErrorCode | null = null;
  forwarding: Forwarding | null = null;

  constructor(
    readonly gateway: GatewayCore,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    identity: ClientIdentity | null,
    host: string,
    rawPath: string,
    /** "?query" or "". */
    readonly query: string,
    readonly started: number,
  ) {
    // The remote address is read at arrival: a socket is detached from its request once the client leaves.
    super(gateway.snapshot(), identity, Date.now(), req.method ?? 'GET', host, rawPath, req.headers, req.socket.remoteAddress ?? '', gateway.limiter);
  }

  decide(): void {
    const verdict = runStages(STAGES, this);
    if (verdict instanceof Promise) {
      verdict.then(
        (v) => {
          try {
            this.settle(v);
          } catch (err) {
            this.fault(err);
          }
        },
        // Stages do not reject (the limiter's promise never does, by contract); should one
        // reject anyway, a request path fault it is.
        (err) => this.fault(err),
      );
      return;
    }
    this.settle(verdict);
  }

  private settle(verdict: Verdict): void {
    if (verdict === GO) this.proxy();
    else this.refuse(verdict);
  }

  private refuse(refusal: Refusal): void {
    this.status = errorStatus(refusal.code);
    this.code = refusal.code;
    if (this.responseHeaders !== null && !this.res.headersSent) {
      for (const name in this.responseHeaders) this.res.setHeader(name, this.responseHeaders[name]);
    }
    // Requests that arrived before a drain and were refused after it began (an async stage).
    if (this.gateway.draining && !this.res.headersSent) this.res.setHeader('connection', 'close');
    sendError(this.res, refusal.code, refusal.message, refusal.headers);
  }

  private proxy(): void {
    if (this.res.destroyed) return; // the client left while a stage decided
    this.forwarding = forward({
      req: this.req,
      res: this.res,
      api: this.api!,
      path: this.path,
      query: this.query,
      identity: this.identity,
      keyId: this.key?.id ?? null,
      remote: this.remote,
      timeoutMs: this.gateway.upstreamTimeoutMs,
      responseHeaders: this.responseHeaders,
      outcome: this,
    });
  }

  /**
   * A fault in the request path (a bug, a header node:http refuses) answers its request with
   * a 502 instead of taking the process, and every other request, down.
   */
  fault(err: unknown): void {
    reportFault('request path', err);
    if (this.res.headersSent) this.res.destroy();
    else {
      this.status = errorStatus('proxy.upstream_error');
      this.code = 'proxy.upstream_error';
      sendError(this.res, 'proxy.upstream_error');
    }
  }

  /** ProxyOutcome: a drain started; the answer must close the connection. */
  get draining(): boolean {
    return this.gateway.draining;
  }

  /** ProxyOutcome: what the upstream answered (or the error sent instead). */
  proxied(status: number, code: ErrorCode | null): void {
    this.status = status;
    this.code = code;
  }

  closed(): void {
    this.forwarding?.clientClosed();
    if (!this.res.writableFinished && this.code === null) this.status = CLIENT_CLOSED;
    this.gateway.finished({
      api: this.api?.id ?? null,
      key: this.key?.id ?? null,
      cert: this.identity?.fingerprint ?? null,
      status: this.status,
      code: this.code,
      method: this.req.method ?? '',
      path: this.req.url ?? '',
      durationMs: performance.now() - this.started,
      remote: this.remote,
    });
  }
}

interface Http1Servers {
  /** Asks for a client certificate (hosts with an API that uses one). */
  withCertificate: HttpsServer;
  withoutCertificate: HttpsServer;
  /** SIGHUP reload: new handshakes use these. */
  setTlsCredentials(cert: string | Buffer, key: string | Buffer): void;
  closeIdleConnections(): void;
  closeAll(): void;
}

function tlsOptions(cert: string | Buffer, key: string | Buffer): ServerOptions {
  return { cert, key, minVersion: 'TLSv1.2' };
}

/** The two HTTPS servers the TLS front hands sockets to; their requests go to `gateway`. */
export function createHttp1Servers(gateway: GatewayCore, cert: string | Buffer, key: string | Buffer): Http1Servers {
  const serverOptions: ServerOptions = { keepAliveTimeout: 65_000 };
  const withCertificate = createHttpsServer({ ...tlsOptions(cert, key), ...serverOptions, requestCert: true, rejectUnauthorized: false });
  const withoutCertificate = createHttpsServer({ ...tlsOptions(cert, key), ...serverOptions });
  const servers = [withCertificate, withoutCertificate];

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const socket = req.socket as TLSSocket;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const ex = new Http1Exchange(
      gateway,
      req,
      res,
      identityOf(socket),
      hostOf(req.headers.host, socket.servername || ''),
      q === -1 ? url : url.slice(0, q),
      q === -1 ? '' : url.slice(q),
      started,
    );
    gateway.started();
    (res as unknown as Record<symbol, Http1Exchange>)[EXCHANGE] = ex;
    res.once('close', onResponseClose);
    if (gateway.draining) res.setHeader('connection', 'close');
    try {
      ex.decide();
    } catch (err) {
      ex.fault(err);
    }
  };

  for (const server of servers) {
    server.on('request', handle);
    // These servers never listen (the front hands them sockets); 'listening' is what makes
    // node:http track their connections (header/request timeouts, closeIdleConnections).
    server.emit('listening');
  }
  withCertificate.on('secureConnection', (socket: TLSSocket) => attachIdentity(socket, gateway.snapshot().trustsCas));

  return {
    withCertificate,
    withoutCertificate,
    setTlsCredentials(cert, key) {
      for (const server of servers) server.setSecureContext(tlsOptions(cert, key));
    },
    closeIdleConnections() {
      for (const server of servers) server.closeIdleConnections();
    },
    closeAll() {
      for (const server of servers) {
        server.closeAllConnections();
        server.close();
      }
    },
  };
}
