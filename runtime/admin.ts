// The admin listener: plain HTTP, loopback by default (`--admin 127.0.0.1:9901`).
//   GET /health   JSON: what is serving, the last refused reload, the limiter's state
//   GET /metrics  Prometheus text
// /health answers 200 while the gateway serves (its "status" says ok or degraded; a load
// balancer should not pull an instance that still serves its last good bundle), and 503 once
// the process is draining, so traffic moves away before the listener closes.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer, listen } from '../common/listen.ts';
import type { LimiterHealth } from './limits/index.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { ExpiringCertificate, RevocationHealth } from './pki-status.ts';
import type { ReloadError } from './store.ts';

interface HealthSources {
  bundle(): { digest: string; loadedAt: Date; source: string; apis: number; keys: number };
  lastReloadError(): ReloadError | null;
  limiter?: () => LimiterHealth;
  revocation?: () => RevocationHealth;
  /** The N soonest-expiring certificates (GET /certificates/expiring?limit=N). */
  expiring?: (limit: number) => ExpiringCertificate[];
  draining(): boolean;
}

interface HealthReport {
  status: 'ok' | 'degraded' | 'draining';
  bundle: { digest: string; loaded_at: string; source: string; apis: number; keys: number };
  last_reload_error: { message: string; at: string; source: string } | null;
  limiter: LimiterHealth | null;
  revocation: RevocationHealth | null;
}

function healthReport(src: HealthSources): HealthReport {
  const b = src.bundle();
  const lastError = src.lastReloadError();
  const limiter = src.limiter ? src.limiter() : null;
  const revocation = src.revocation ? src.revocation() : null;
  const degraded = lastError !== null || limiter?.status === 'degraded' || revocation?.status === 'stale';
  return {
    status: src.draining() ? 'draining' : degraded ? 'degraded' : 'ok',
    bundle: { digest: b.digest, loaded_at: b.loadedAt.toISOString(), source: b.source, apis: b.apis, keys: b.keys },
    last_reload_error: lastError,
    limiter,
    revocation,
  };
}

export interface AdminServer {
  address: AddressInfo;
  close(): Promise<void>;
}

export async function startAdmin(host: string, port: number, health: HealthSources, metrics: GatewayMetrics): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' }).end('{"error":"Method not allowed"}\n');
      return;
    }
    if (path === '/health') {
      const report = healthReport(health);
      res
        .writeHead(report.status === 'draining' ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(JSON.stringify(report) + '\n');
      return;
    }
    if (path === '/metrics') {
      metrics.scrape().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
      );
      return;
    }
    if (path === '/certificates/expiring' && health.expiring) {
      const limit = Number(new URL(req.url ?? '/', 'http://admin').searchParams.get('limit') ?? '20');
      const n = Number.isInteger(limit) && limit > 0 ? Math.min(limit, 10_000) : 20;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ certificates: health.expiring(n) }) + '\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found: try /health, /metrics or /certificates/expiring"}\n');
  });
  // Scrapers keep connections open; never let one hold a shutdown.
  server.keepAliveTimeout = 5_000;
  const address = await listen(server, port, host);
  return { address, close: () => closeServer(server) };
}
