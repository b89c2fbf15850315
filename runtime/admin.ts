// The admin listener: plain HTTP, loopback by default (`--admin 127.0.0.1:9901`).
//   GET /health   JSON: the version, what is serving, the last refused reload, the limiter's state
//   GET /ready    JSON: whether a bundle is loaded and requests are taken (readiness probes)
//   GET /live     200 whenever the process answers at all (liveness probes: never restart an
//                 instance for a dependency's outage, only for a wedged process)
//   GET /metrics  Prometheus text
// /health answers 200 while the gateway serves (its "status" says ok or degraded; a load
// balancer should not pull an instance that still serves its last good bundle), and 503 once
// the process is draining, so traffic moves away before the listener closes, and while the
// rate-limit store is degraded under --on-limiter-error deny, or a crl_url has no valid CRL
// under --crl-stale closed (limited keys, or that CA's certificates, are refused then: the
// operator chose to fail closed, so the instance reports itself unfit).
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer, listen } from '../common/listen.ts';
import type { LimiterHealth } from './limits/index.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { ExpiringCertificate, RevocationHealth } from './pki-status.ts';
import type { ReloadError } from './store.ts';
import { VERSION } from './version.ts';

interface HealthSources {
  bundle(): { digest: string; loadedAt: Date; source: string; apis: number; keys: number; signature?: { signedAt: number | null } | null };
  lastReloadError(): ReloadError | null;
  limiter?: () => LimiterHealth;
  revocation?: () => RevocationHealth;
  /** The N soonest-expiring certificates (GET /certificates/expiring?limit=N). */
  expiring?: (limit: number) => ExpiringCertificate[];
  /** --on-limiter-error: under deny a degraded limiter makes /health 503. Default allow. */
  onLimiterError?: 'allow' | 'deny';
  draining(): boolean;
}

export interface HealthReport {
  status: 'ok' | 'degraded' | 'draining';
  version: string;
  /** signed_at: the v2 signature's signing time (serve --bundle-public-key), else null. */
  bundle: { digest: string; loaded_at: string; source: string; apis: number; keys: number; signed_at: string | null };
  last_reload_error: { message: string; at: string; source: string } | null;
  limiter: LimiterHealth | null;
  revocation: RevocationHealth | null;
  /** `serve --workers N`: each worker's own report (the top level is the worst of them). */
  workers?: WorkerHealth[];
}

export interface WorkerHealth {
  worker: number;
  pid: number;
  /** 'starting': a replacement not ready yet (not asked); 'down': it did not answer in time. */
  status: HealthReport['status'] | 'down' | 'starting';
  bundle: string | null;
  limiter: LimiterHealth | null;
}

export function healthReport(src: HealthSources): HealthReport {
  const b = src.bundle();
  const lastError = src.lastReloadError();
  const limiter = src.limiter ? src.limiter() : null;
  const revocation = src.revocation ? src.revocation() : null;
  const degraded = lastError !== null || limiter?.status === 'degraded' || revocation?.status === 'stale';
  return {
    status: src.draining() ? 'draining' : degraded ? 'degraded' : 'ok',
    version: VERSION,
    bundle: { digest: b.digest, loaded_at: b.loadedAt.toISOString(), source: b.source, apis: b.apis, keys: b.keys, signed_at: signedAtOf(b.signature) },
    last_reload_error: lastError,
    limiter,
    revocation,
  };
}

function signedAtOf(signature: { signedAt: number | null } | null | undefined): string | null {
  return signature?.signedAt == null ? null : new Date(signature.signedAt).toISOString();
}

/** 503 draining, 503 degraded limiter under deny, 503 stale revocation under --crl-stale closed, else 200. */
function healthStatusCode(report: HealthReport, onLimiterError: 'allow' | 'deny' = 'allow'): number {
  if (report.status === 'draining') return 503;
  if (report.limiter?.status === 'degraded' && onLimiterError === 'deny') return 503;
  if (report.revocation?.status === 'stale' && report.revocation.stale_policy === 'closed') return 503;
  return 200;
}

export interface AdminServer {
  address: AddressInfo;
  close(): Promise<void>;
}

/** What the admin listener answers with: one process's state (startAdmin) or, under
 *  `serve --workers N`, the primary's view of every worker (runtime/cluster/primary.ts). */
export interface AdminEndpoints {
  health(): HealthReport | Promise<HealthReport>;
  onLimiterError?: 'allow' | 'deny';
  draining(): boolean;
  /** The digest being served, for /ready. */
  bundleDigest(): string | null;
  metrics(): Promise<{ contentType: string; body: string }>;
  expiring?: (limit: number) => ExpiringCertificate[] | Promise<ExpiringCertificate[]>;
}

export function startAdmin(host: string, port: number, health: HealthSources, metrics: GatewayMetrics): Promise<AdminServer> {
  return startAdminServer(host, port, {
    health: () => healthReport(health),
    onLimiterError: health.onLimiterError,
    draining: health.draining,
    bundleDigest: () => health.bundle().digest,
    metrics: () => metrics.scrape(),
    expiring: health.expiring,
  });
}

const JSON_NO_STORE = { 'content-type': 'application/json', 'cache-control': 'no-store' };
/** /certificates/expiring answers at most this many (a larger ?limit is capped). */
const EXPIRING_MAX = 10_000;

export async function startAdminServer(host: string, port: number, ends: AdminEndpoints): Promise<AdminServer> {
  const failed = (res: ServerResponse) => (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' }).end('{"error":"Method not allowed"}\n');
      return;
    }
    if (path === '/health') {
      Promise.resolve(ends.health()).then(
        (report) => res.writeHead(healthStatusCode(report, ends.onLimiterError), JSON_NO_STORE).end(JSON.stringify(report) + '\n'),
        failed(res),
      );
      return;
    }
    if (path === '/live') {
      res.writeHead(200, JSON_NO_STORE).end('{"live":true}\n');
      return;
    }
    if (path === '/ready') {
      // The admin listener starts after the first bundle loaded, so "loaded" holds here; a
      // draining instance is not ready for new traffic.
      const ready = !ends.draining();
      const body = { ready, version: VERSION, bundle: ready ? ends.bundleDigest() : null };
      res.writeHead(ready ? 200 : 503, JSON_NO_STORE).end(`${JSON.stringify(body)}\n`);
      return;
    }
    if (path === '/metrics') {
      ends.metrics().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
      );
      return;
    }
    if (path === '/certificates/expiring' && ends.expiring) {
      const given = new URL(req.url ?? '/', 'http://admin').searchParams.get('limit');
      const n = given === null ? 20 : /^\d+$/.test(given) ? Number(given) : Number.NaN;
      // A limit that is no count is an error, not the default: a script asking for ?limit=all
      // would otherwise read 20 entries as the whole list.
      if (!(n >= 1)) {
        const body = { error: `limit must be a whole number from 1 to ${EXPIRING_MAX} (default 20), not ${JSON.stringify(given)}` };
        res.writeHead(400, JSON_NO_STORE).end(`${JSON.stringify(body)}\n`);
        return;
      }
      Promise.resolve(ends.expiring(Math.min(n, EXPIRING_MAX))).then(
        (certificates) => res.writeHead(200, JSON_NO_STORE).end(JSON.stringify({ certificates }) + '\n'),
        failed(res),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found: try /health, /ready, /live, /metrics or /certificates/expiring"}\n');
  });
  // Scrapers keep connections open; never let one hold a shutdown.
  server.keepAliveTimeout = 5_000;
  const address = await listen(server, port, host);
  return { address, close: () => closeServer(server) };
}
