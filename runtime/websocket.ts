// WebSocket (HTTP/1.1 Upgrade): the upgrade request goes through every stage like any request
// (same codes, same log line); once admitted, the gateway opens a connection to the upstream,
// sends the upgrade request there, and then copies bytes both ways until either side closes.
// The upstream's own answer (101, or a refusal) reaches the client as the upstream sent it.
//
// An open tunnel was admitted under the bundle current at its upgrade. When a reload
// installs another bundle, every open tunnel is decided again against it (same request, same
// certificate, limits not counted again); one the new bundle refuses (a revoked certificate,
// a removed key or access right) is closed. The check runs within about a second of the swap.
import { connect as netConnect, type Socket } from 'node:net';
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { HttpExchange } from './exchange.ts';
import { reportFault } from './faults.ts';
import type { GatewayCore } from './gateway.ts';
import { sendError } from './errors.ts';
import { upstreamHeaders } from './proxy.ts';
import type { Snapshot } from './snapshot.ts';
import { decide } from './stages/decide.ts';

/** How often open tunnels look for a new bundle. */
const RECHECK_MS = 500;

interface Tunnel {
  ex: HttpExchange;
  client: Duplex;
  upstream: Socket | null;
  admittedUnder: Snapshot;
}

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

export class WebSockets {
  private readonly open = new Set<Tunnel>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly gateway: GatewayCore) {}

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

  /** Called for an admitted upgrade: connects upstream and starts copying. */
  tunnel(ex: HttpExchange, client: Duplex, head: Buffer): void {
    const api = ex.api!;
    const { hostname, port, secure, authority } = api.upstream;
    const upstream = secure ? tlsConnect({ host: hostname, port, servername: hostname }) : netConnect({ host: hostname, port });
    const t: Tunnel = { ex, client, upstream, admittedUnder: ex.snapshot };
    this.open.add(t);
    this.watch();

    const rest = ex.path.length > api.stripLength ? ex.path.slice(api.stripLength) : '/';
    // The same header rules as every proxied request (runtime/proxy.ts), plus the upgrade itself.
    const headers = upstreamHeaders({
      req: ex.req,
      res: ex.res,
      http2: false,
      grpc: false,
      host: ex.host,
      api,
      path: ex.path,
      query: ex.query,
      identity: ex.identity,
      keyId: ex.key?.id ?? null,
      remote: ex.remote,
      timeoutMs: 0,
      responseHeaders: null,
      outcome: ex,
    });
    const lines = [`${ex.method} ${api.targetBase}${rest}${ex.query} HTTP/1.1`, `host: ${authority}`, 'connection: Upgrade', 'upgrade: websocket'];
    for (const name in headers) {
      const value = headers[name];
      for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
    }

    let connected = false;
    upstream.once(secure ? 'secureConnect' : 'connect', () => {
      connected = true;
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      // The status line of the upstream's answer, for the log (101 when the upgrade took).
      upstream.once('data', (chunk: Buffer) => {
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(chunk.toString('latin1', 0, 16));
        ex.proxied(m === null ? 502 : Number(m[1]), null);
      });
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const close = (): void => {
      this.open.delete(t);
      upstream.destroy();
      client.destroy();
    };
    upstream.on('error', (err) => {
      if (!connected && !ex.res.headersSent) {
        ex.proxied(502, 'proxy.upstream_error');
        sendError(ex.res, 'proxy.upstream_error');
        this.open.delete(t);
        return;
      }
      reportFault('websocket upstream', err);
      close();
    });
    upstream.on('close', close);
    client.on('error', close);
    client.on('close', close);
  }

  /** Closes every tunnel (gateway shutdown). */
  closeAll(): void {
    for (const t of this.open) {
      t.upstream?.destroy();
      t.client.destroy();
    }
    this.open.clear();
  }

  private watch(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.recheck(), RECHECK_MS);
    this.timer.unref();
  }

  /** Decides every open tunnel again when the bundle changed; closes those now refused. */
  private recheck(): void {
    if (this.open.size === 0) {
      clearInterval(this.timer!);
      this.timer = null;
      return;
    }
    const current = this.gateway.snapshot();
    for (const t of this.open) {
      if (t.admittedUnder === current) continue;
      t.admittedUnder = current;
      const ex = t.ex;
      const d = decide(current, { method: ex.method, host: ex.host, path: ex.rawPath, headers: ex.headers, remote: ex.remote }, ex.identity, Date.now());
      if (d.refusal !== null) {
        this.open.delete(t);
        t.upstream?.destroy();
        t.client.destroy();
      }
    }
  }
}
