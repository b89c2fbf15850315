// One worker of `serve --workers N`: the ordinary gateway (runtime/supervisor.ts) without an admin
// listener, whose limiter is a LeaseLimiter on the primary's counters (or Redis with --redis),
// and which takes its orders from the primary over the cluster IPC channel: reload (SIGHUP),
// stop (SIGTERM drain), health, metrics and expiring-certificate queries, lease grants and
// recalls, and what the other workers take. Before it reads anything it asks the primary what
// the set has taken so far (hello/start), so it never starts below its peers' floors.
import cluster from 'node:cluster';
import type { Logger } from '../log.ts';
import { startGateway, StartupError, type RunningGateway, type RuntimeConfig } from '../supervisor.ts';
import { LeaseLimiter } from './lease-limiter.ts';
import { isOurs, type PeerFloorMessage, type ToPrimary, type ToWorker } from './lease-protocol.ts';
import type { CrlFloor } from '../revocation.ts';
import type { BundleRecord } from '../state-file.ts';
import type { PeerTaken } from '../peer-floors.ts';
import { reportCrl } from './crl-report.ts';
import { redactUrl } from '../redact.ts';

function toPrimary(m: ToPrimary): void {
  if (process.connected) process.send!(m);
}

/** Runs this worker until the primary (or a signal) stops it; the exit status. */
export async function runWorker(
  cfg: Omit<RuntimeConfig, 'admin' | 'worker' | 'limiter' | 'logger' | 'stateRecorder' | 'peerTaken'>,
  logger: Logger,
): Promise<number> {
  const id = cluster.worker!.id;
  const leases = cfg.redisUrl ? null : new LeaseLimiter({ send: toPrimary, onError: cfg.onLimiterError });
  let running: RunningGateway | null = null;
  const early: PeerFloorMessage[] = [];
  let reloadEarly = false;
  let stopped: () => void = () => {};
  let started: (start: { taken: PeerTaken[]; crlDir: string }) => void = () => {};
  const stop = (reason: string) => {
    if (running !== null) {
      void running.stop(reason).then(() => stopped());
      return;
    }
    // Not serving yet: nothing in flight to finish, and a drain would wait for a start-up that
    // may hang on a bundle URL. The primary counts it gone at its exit.
    logger.info({ reason }, 'worker stopped before it served');
    logger.flush();
    process.exit(0);
  };
  const reload = () => {
    // A reload ordered while this worker starts is run once it serves (it may have read the files before they changed).
    if (running === null) reloadEarly = true;
    else void running.reload();
  };
  process.on('message', (m: unknown) => {
    if (!isOurs(m)) return;
    const msg = m as ToWorker;
    if (msg.type === 'mtlsgate:grant') leases?.onGrant(msg);
    else if (msg.type === 'mtlsgate:recall') leases?.onRecall(msg.key);
    else if (msg.type === 'mtlsgate:start') started(msg);
    else if (msg.type === 'mtlsgate:reload') reload();
    else if (msg.type === 'mtlsgate:stop') stop(msg.reason);
    else if (msg.type === 'mtlsgate:floor') {
      // Taken by another worker while this one starts: applied once it runs.
      if (running === null) early.push(msg);
      else running.raiseFloors(msg);
    } else if (msg.type === 'mtlsgate:health' && running !== null) toPrimary({ type: 'mtlsgate:answer', id: msg.id, health: running.health() });
    else if (msg.type === 'mtlsgate:expiring' && running !== null)
      toPrimary({ type: 'mtlsgate:answer', id: msg.id, certificates: running.expiring(msg.limit) });
    else if (msg.type === 'mtlsgate:metrics' && running !== null) void answerMetrics(msg.id, running);
  });
  const answerMetrics = async (id: number, gateway: RunningGateway) => {
    const registries = leases === null ? [gateway.metrics.registry] : [gateway.metrics.registry, leases.registry];
    toPrimary({ type: 'mtlsgate:answer', id, metrics: (await Promise.all(registries.map((r) => r.getMetricsAsJSON()))).flat() });
  };
  // The primary forwards SIGTERM/SIGINT/SIGHUP; a signal sent to the whole process group (Ctrl-C,
  // systemd) reaches this worker as well: the same stop, never a second one that cuts the drain.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', reload);
  // The primary is gone: nobody routes connections here any more.
  process.on('disconnect', () => stop('primary exited'));

  // What the other workers took so far, before this one reads a bundle or a CRL: a worker
  // replacing one that died never orders against less than the set has taken (peer-floors.ts).
  const { taken: peerTaken, crlDir } = await new Promise<{ taken: PeerTaken[]; crlDir: string }>((resolve) => {
    started = resolve;
    toPrimary({ type: 'mtlsgate:hello' });
  });
  try {
    // This worker reports what it takes: the primary writes --state-dir's file and tells the other workers.
    const stateRecorder = {
      bundleTaken: (bundle: BundleRecord) => toPrimary({ type: 'mtlsgate:taken', bundle }),
      crlTaken: (url: string, floor: CrlFloor, bytes?: Buffer, issuer?: Buffer) =>
        void reportCrl({ url, floor, bytes, issuer }, crlDir, toPrimary).catch((err: Error) =>
          logger.warn({ crl_url: redactUrl(url), error: err.message }, 'CRL not reported to the primary: the other workers fetch it themselves'),
        ),
    };
    running = await startGateway({ ...cfg, admin: null, worker: id, limiter: leases ?? undefined, logger, stateRecorder, peerTaken, crlDir });
  } catch (err) {
    const message = err instanceof StartupError ? err.message : ((err as Error).stack ?? String(err));
    logger.fatal({ error: message }, 'mtlsgate worker cannot start');
    logger.flush();
    toPrimary({ type: 'mtlsgate:failed', error: message });
    return 2;
  }
  for (const m of early.splice(0)) running.raiseFloors(m);
  const done = new Promise<void>((resolve) => (stopped = resolve));
  toPrimary({ type: 'mtlsgate:ready', listen: `${running.gatewayAddress.address}:${running.gatewayAddress.port}`, digest: running.health().bundle.digest });
  if (reloadEarly) void running.reload();
  await done;
  logger.flush();
  if (process.connected) process.disconnect();
  return 0;
}
