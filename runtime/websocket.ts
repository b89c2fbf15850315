// WebSocket (HTTP/1.1 Upgrade): the upgrade request goes through every stage like any request
// (same codes, same log line); once admitted, the gateway opens a connection to the upstream
// (as the pool opens one: proxy.upstream_tls applies) and sends it the upgrade request. Only a
// 101 from the upstream makes a tunnel: the 101 goes to the client and bytes are copied both
// ways from then on. Until then nothing the client sends reaches the upstream (a body declared
// on the upgrade, or requests pipelined behind it, are never forwarded); any other answer is
// relayed as a plain response and the connection ends, so a client cannot turn a refused
// upgrade into a raw connection to the upstream that no stage sees.
//
// An open tunnel was admitted under the bundle current at its upgrade. Like every request still
// open, it is decided again while it lasts (runtime/open-requests.ts); one now refused is closed
// (its Forwarding's cut()). A tunnel the gateway closes itself (refused now, idle, a drain) ends
// with a close frame to each side (runtime/websocket-tunnel.ts, docs/security.md section 57).
import { createHash } from 'node:crypto';
import { type ClientRequest, ServerResponse, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { sendError } from './errors.ts';
import type { HttpExchange } from './exchange.ts';
import { reportFault } from './faults.ts';
import { type Forwarding, type ForwardRequest, TIMEOUT_ERRORS } from './proxy.ts';
import { checkHeaders, clientHeaders, upstreamHeaders } from './proxy-headers.ts';
import { CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION } from './websocket-frames.ts';
import { TunnelRelay } from './websocket-tunnel.ts';
import { upstreamCause } from './upstream-cause.ts';

interface Tunnel {
  client: Duplex;
  /** The upstream connection, once made. */
  upstream: Socket | null;
  /** The bytes both ways, once the upstream accepted the handshake. */
  relay: TunnelRelay | null;
}

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

/**
 * An Upgrade request that declares a body (Content-Length other than 0, or Transfer-Encoding).
 * node:http hands its connection over at the end of the headers, so the body is never read as
 * one: the bytes wait on the socket, a plain request served from it went upstream empty, and
 * a tunnel would take them for its first frames. Refused with request.upgrade_with_body.
 */
export function declaresBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) !== 0);
}

/** RFC 6455 1.3: the GUID the server appends to Sec-WebSocket-Key before hashing it. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * Whether the upstream's 101 is a WebSocket server's answer to this handshake (RFC 6455 4.2.2):
 * `Upgrade: websocket` and the Sec-WebSocket-Accept derived from the client's key. Anything else
 * (a server that switches to another protocol, or answers 101 to whatever it is sent) would make
 * the tunnel a raw connection to the upstream that the client, not a WebSocket peer, drives, past
 * every stage (docs/security.md section 51). One SHA-1 per upgrade.
 */
export function isWebSocketAccept(key: string | string[] | undefined, answer: IncomingMessage): boolean {
  const upgrade = answer.headers.upgrade;
  if (typeof key !== 'string' || typeof upgrade !== 'string' || upgrade.toLowerCase() !== 'websocket') return false;
  return (
    answer.headers['sec-websocket-accept'] ===
    createHash('sha1')
      .update(key + ACCEPT_GUID)
      .digest('base64')
  );
}

export class WebSockets {
  private readonly open = new Set<Tunnel>();

  /** `idleMs`: `--websocket-idle-timeout`, a tunnel with no byte either way this long is closed (0: never). */
  constructor(private readonly idleMs: number) {}

  /**
   * A response bound to the upgrade's socket (node:http hands an upgrade over without one),
   * so a refusal is written exactly as on any request. It closes the connection after.
   */
  static responseFor(req: IncomingMessage, socket: Duplex): ServerResponse {
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.once('finish', () => socket.end());
    return res;
  }

  count(): number {
    return this.open.size;
  }

  /** Called for an admitted upgrade: connects upstream, and copies both ways once it answers 101. */
  tunnel(ex: HttpExchange, client: Duplex, head: Buffer): Forwarding {
    const api = ex.api!;
    const t: Tunnel = { client, upstream: null, relay: null };
    this.open.add(t);
    let ended = false;
    const close = (): void => {
      if (ended) return;
      ended = true;
      this.open.delete(t);
      t.relay?.ended();
      t.upstream?.destroy();
      client.destroy();
    };
    // One side closed: the tunnel ends, unless the gateway is closing it and the other side's
    // close frame is still on its way (that side ends itself, or at the bound).
    const sideClosed = (): void => {
      if (t.relay?.closingGracefully === true && !(client.destroyed && t.upstream?.destroyed !== false)) return;
      close();
    };
    const fail = (err: Error): void => {
      if (ended) return;
      if (ex.res.headersSent) return close();
      const code = TIMEOUT_ERRORS.has((err as { code?: string }).code ?? '') ? 'proxy.upstream_timeout' : 'proxy.upstream_error';
      ex.proxied(code === 'proxy.upstream_timeout' ? 504 : 502, code, upstreamCause(err));
      this.open.delete(t);
      ended = true;
      t.upstream?.destroy();
      sendError(ex.res, code); // its response ends the client's connection (responseFor)
    };
    client.on('error', close);
    client.on('close', sideClosed);

    const rest = ex.path.length > api.stripLength ? ex.path.slice(api.stripLength) : '/';
    // The same header rules as every proxied request, from the exchange itself (a copy of its
    // fields once forgot one: the method-override strip), plus the upgrade. An upgrade is HTTP/1.1
    // and never gRPC: the exchange's http2 and grpc are false.
    const headers = upstreamHeaders(ex as ForwardRequest);
    // An upgrade request has no body (RFC 6455 4.1): one declaring a body was refused
    // (declaresBody); "Content-Length: 0" is not passed on.
    delete headers['content-length'];
    headers.host = api.upstream.authority;
    headers.connection = 'Upgrade';
    headers.upgrade = 'websocket';

    api.upstream.connectRaw((err, socket) => {
      if (err !== null) return fail(err);
      if (ended) return void socket.destroy();
      t.upstream = socket;
      socket.on('close', sideClosed);
      let req: ClientRequest;
      try {
        req = httpRequest({
          method: ex.method,
          path: api.targetBase + rest + ex.query,
          headers,
          createConnection: () => socket,
          timeout: ex.gateway.upstreamTimeoutMs,
        });
      } catch (err) {
        // A header node:http's client refuses (this runs in a callback: a throw would take the process).
        reportFault('websocket request', err);
        return fail(err as Error);
      }
      req.on('timeout', () => req.destroy(Object.assign(new Error('upstream headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' })));
      req.on('error', fail);
      req.on('upgrade', (res: IncomingMessage, upstream: Socket, upstreamHead: Buffer) => {
        if (ended) return void upstream.destroy();
        if (!isWebSocketAccept(ex.req.headers['sec-websocket-key'], res)) {
          // 502 proxy.upstream_error, as for any answer the gateway cannot relay.
          upstream.destroy();
          return fail(new Error('not a WebSocket accept'));
        }
        upstream.setTimeout(0);
        // The upstream's 101 as it sent it, then the bytes both ways.
        const lines = [`HTTP/1.1 101 ${res.statusMessage ?? 'Switching Protocols'}`];
        for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
        client.write(`${lines.join('\r\n')}\r\n\r\n`);
        ex.proxied(101, null);
        const relay = (t.relay = new TunnelRelay(client, upstream, close));
        relay.start(upstreamHead, head);
        // The client's socket carries both directions: its idle timer is the tunnel's. Envoy
        // closes an idle upgraded stream after its stream idle timeout (5 min), NGINX after
        // proxy_read_timeout (60 s); an open tunnel otherwise holds two sockets for good.
        // 1001 (going away): the gateway leaves a conversation that may well resume on a new
        // connection, as AWS API Gateway closes its idle WebSockets; 1000 would say it is over.
        if (this.idleMs > 0) {
          (client as Socket).setTimeout(this.idleMs);
          client.once('timeout', () => {
            (client as Socket).setTimeout(0);
            relay.close(CLOSE_GOING_AWAY, 'idle timeout');
          });
        }
      });
      req.on('response', (res: IncomingMessage) =>
        this.relay(ex, res, () => {
          // The answer is written: the client's connection ends as the response finishes (responseFor).
          ended = true;
          this.open.delete(t);
          socket.destroy();
        }),
      );
      req.end();
    });
    // The client's leaving is seen on its socket ('close' above). Refused while open, the tunnel
    // closes with 1008 (policy violation) and the refusal's code as the reason; before the 101, at once.
    return {
      clientClosed() {},
      cut: (reason) => (t.relay === null ? close() : t.relay.close(CLOSE_POLICY_VIOLATION, reason ?? 'access.revoked_in_flight')),
    };
  }

  /** The upstream refused the upgrade: its answer goes to the client as a plain response, then the connection ends. */
  private relay(ex: HttpExchange, res: IncomingMessage, done: () => void): void {
    const out = ex.res as ServerResponse;
    try {
      const headers = clientHeaders(res.headers);
      checkHeaders(headers);
      out.writeHead(res.statusCode ?? 502, res.statusMessage, headers);
    } catch (err) {
      reportFault('response headers', err);
      res.destroy();
      out.statusMessage = ''; // a reason phrase writeHead refused would make the 502 throw too
      ex.proxied(502, 'proxy.upstream_error', upstreamCause(err));
      sendError(out, 'proxy.upstream_error');
      done();
      return;
    }
    ex.proxied(res.statusCode ?? 502, null);
    res.pipe(out);
    res.once('error', () => out.destroy());
    out.once('finish', done);
  }

  /**
   * A drain began: every open tunnel gets 1001 (going away) at its next frame boundaries, so
   * clients reconnect elsewhere now instead of being cut at the end of --drain-timeout.
   */
  goingAway(): void {
    for (const t of this.open) t.relay?.close(CLOSE_GOING_AWAY, 'server draining');
  }

  /** Closes every tunnel (gateway shutdown). */
  closeAll(): void {
    for (const t of this.open) {
      t.relay?.ended();
      t.upstream?.destroy();
      t.client.destroy();
    }
    this.open.clear();
  }
}
