// One keep-alive undici Pool per upstream origin, shared by every snapshot that proxies to it:
// a reload does not drop warm upstream connections. A snapshot build reports the origins it
// uses; an origin no built snapshot has used for RETIRE_AFTER_MS, and that carried no request
// for as long, has its pool closed (gracefully: requests still on it finish). A request that
// still reaches a retired upstream (from a snapshot that was current when it arrived) reopens it.
import { type ClientHttp2Session, connect as http2Connect } from 'node:http2';
import { buildConnector, Pool } from 'undici';
import { checkPins, upstreamConnector, type UpstreamTlsSettings } from './upstream-tls.ts';

const RETIRE_AFTER_MS = 60_000;
const SWEEP_EVERY_MS = 15_000;

const POOL_OPTIONS: Pool.Options = {
  connections: 256,
  pipelining: 1,
  keepAliveTimeout: 60_000,
  connectTimeout: 10_000,
};

export class Upstream {
  /** Milliseconds (Date.now()) of the last request, or of the last snapshot that named it. */
  lastUsed = Date.now();
  /** Set when the latest snapshot build did not name this origin. */
  retiredAt = 0;
  private pool: Pool | null = null;
  private session: ClientHttp2Session | null = null;
  /** How connectRaw connects, made on first use. */
  private connector: buildConnector.connector | null = null;

  constructor(
    readonly origin: string,
    /** HTTP/2 to the upstream: one multiplexed connection (h2c for http://, ALPN for https://). */
    readonly http2 = false,
    /** proxy.upstream_tls, read and fixed; null = defaults. */
    readonly tls: UpstreamTlsSettings | null = null,
  ) {
    const url = new URL(origin);
    this.authority = url.host;
    this.hostname = url.hostname;
    this.secure = url.protocol === 'https:';
    this.port = Number(url.port) || (this.secure ? 443 : 80);
  }

  /** Parsed once: "host:port" as an HTTP/2 :authority, and its parts for a raw connection. */
  readonly authority: string;
  readonly hostname: string;
  readonly port: number;
  readonly secure: boolean;

  /** The registry key: the same origin spoken in HTTP/1.1 and HTTP/2 are two upstreams. */
  get key(): string {
    return upstreamKey(this.origin, this.http2, this.tls);
  }

  dispatcher(): Pool {
    if (this.pool === null) {
      this.pool = new Pool(this.origin, this.tls === null ? POOL_OPTIONS : { ...POOL_OPTIONS, connect: upstreamConnector(this.tls) });
      if (!registry.has(this.key)) registry.set(this.key, this);
    }
    return this.pool;
  }

  /**
   * The HTTP/2 connection to an `upstream_http2` origin (h2c with prior knowledge for http://,
   * ALPN h2 for https://), one multiplexed session, reopened when it closes or fails.
   * node:http2 rather than undici here: undici's HTTP/2 client can finish a response before its
   * trailers arrive, and gRPC's status travels in the trailers.
   */
  http2Session(): ClientHttp2Session {
    const current = this.session;
    if (current !== null && !current.closed && !current.destroyed) return current;
    const tls = this.tls;
    const session =
      tls === null
        ? http2Connect(this.origin)
        : http2Connect(this.origin, {
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            servername: tls.servername,
            rejectUnauthorized: !(tls.pins.size > 0 && tls.ca === undefined),
          });
    session.on('error', () => {}); // each stream reports its own failure
    if (tls !== null && tls.pins.size > 0) {
      session.once('connect', () => {
        const pinError = checkPins(session.socket as import('node:tls').TLSSocket, tls.pins);
        if (pinError !== null) session.destroy(pinError);
      });
    }
    const forget = () => {
      if (this.session === session) this.session = null;
    };
    session.once('close', forget);
    session.once('goaway', forget);
    session.unref();
    this.session = session;
    if (!registry.has(this.key)) registry.set(this.key, this);
    return session;
  }

  /**
   * A connection of its own to the origin (a WebSocket tunnel), made by the connector the pool
   * is given (proxy.upstream_tls's CA, server name, client certificate and pins) or, with no
   * upstream_tls, undici's own with the pool's connect timeout. `ready` is called once, when the connection is usable
   * (TLS: handshake done and the pin checked, so not a byte is written to an upstream that is
   * not the pinned one), or with the error.
   */
  connectRaw(ready: buildConnector.Callback): void {
    this.connector ??= this.tls === null ? buildConnector({ timeout: POOL_OPTIONS.connectTimeout }) : upstreamConnector(this.tls);
    this.connector({ hostname: this.hostname, host: this.authority, protocol: this.secure ? 'https:' : 'http:', port: String(this.port) }, ready);
  }

  /** Closes the pool once the requests on it are done. */
  retire(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    const session = this.session;
    this.session = null;
    session?.close();
    return pool === null ? Promise.resolve() : pool.close().catch(() => undefined);
  }
}

const registry = new Map<string, Upstream>();
let sweeper: NodeJS.Timeout | null = null;

/** The shared upstream for an origin ("http://host:port"), in HTTP/1.1 or HTTP/2. */
function upstreamKey(origin: string, http2: boolean, tls: UpstreamTlsSettings | null): string {
  return `${http2 ? 'h2+' : ''}${origin}${tls === null ? '' : `#tls=${tls.id}`}`;
}

export function upstreamFor(origin: string, http2 = false, tls: UpstreamTlsSettings | null = null): Upstream {
  const key = upstreamKey(origin, http2, tls);
  let upstream = registry.get(key);
  if (upstream === undefined) {
    upstream = new Upstream(origin, http2, tls);
    registry.set(key, upstream);
  }
  return upstream;
}

/** Called with the upstream keys (Upstream.key) of each newly built snapshot: the others start to retire. */
export function markOriginsInUse(origins: ReadonlySet<string>): void {
  const now = Date.now();
  for (const [origin, upstream] of registry) {
    if (origins.has(origin)) {
      upstream.retiredAt = 0;
      upstream.lastUsed = now;
    } else if (upstream.retiredAt === 0) {
      upstream.retiredAt = now;
    }
  }
  if (sweeper === null) {
    sweeper = setInterval(sweep, SWEEP_EVERY_MS);
    sweeper.unref();
  }
}

function sweep(): void {
  const now = Date.now();
  for (const [origin, upstream] of registry) {
    if (upstream.retiredAt !== 0 && now - upstream.retiredAt > RETIRE_AFTER_MS && now - upstream.lastUsed > RETIRE_AFTER_MS) {
      registry.delete(origin);
      void upstream.retire();
    }
  }
}

/** Closes every pool (process shutdown, tests). Upstreams reopen if used again. */
export async function closeAllUpstreams(): Promise<void> {
  const all = [...registry.values()];
  registry.clear();
  await Promise.all(all.map((upstream) => upstream.retire()));
}
