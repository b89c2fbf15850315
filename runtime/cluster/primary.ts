// The primary of `serve --workers N` (node:cluster). It serves no request itself: it forks the
// workers (each a full gateway, runtime/cluster/worker.ts; connections are handed out by
// node:cluster, round-robin on Linux), owns the rate-limit and quota counters (lease-authority.ts),
// runs the one admin listener (/health and /ready over every worker, /metrics summed over them:
// cluster-metrics.ts), checks every message a worker sends (ipc-check.ts) and the evidence of
// every floor it reports (verify-taken.ts), hands on a connection a dying worker never took
// (handoff-guard.ts), and turns the process's signals into orders: SIGHUP reload to every
// worker, SIGTERM/SIGINT drain of every worker.
import cluster, { type Worker } from 'node:cluster';
import type { KeyObject } from 'node:crypto';
import { startAdminServer, type AdminServer, type HealthReport, type WorkerHealth } from '../admin.ts';
import type { Logger } from '../log.ts';
import type { ExpiringCertificate } from '../pki-status.ts';
import type { HostPort } from '../supervisor.ts';
import { startState, type StateWriter } from '../state-file.ts';
import { VERSION } from '../version.ts';
import { ClusterMetrics } from './cluster-metrics.ts';
import { checkToPrimary } from './ipc-check.ts';
import { boundOf, MAX_MALFORMED, measure, WorkerMessageBudget } from './ipc-budget.ts';
import { dropHandedFile, makeHandoffDir, removeHandoffDir, sweepStaleHandoffDirs } from './crl-files.ts';
import { guardHandoffs } from './handoff-guard.ts';
import { LeaseAuthority } from './lease-authority.ts';
import { TakenSoFar } from './taken-so-far.ts';
import { verifyTaken } from './verify-taken.ts';
import { isOurs, type AnswerMessage, type QueryMessage, type ToWorker } from './lease-protocol.ts';
import type { PeerTaken } from '../peer-floors.ts';

export interface PrimaryConfig {
  workers: number;
  admin: HostPort | null;
  drainTimeoutMs: number;
  onLimiterError: 'allow' | 'deny';
  /** Workers use Redis directly; no leases. */
  redisUrl?: string;
  /** Writes to the stdout the workers inherit, in whole lines (runtime/whole-line-writer.ts). */
  logger: Logger;
  /** `--state-dir`: the primary is the one writer of its file; the workers report what they take. */
  stateDir?: string;
  /** `--bundle-public-key`: a bundle a worker reports it took becomes a floor only with a signature this key verifies (verify-taken.ts). */
  bundlePublicKey?: KeyObject;
}

/** A worker that stops unexpectedly is replaced after this long (ms). */
const RESTART_DELAY_MS = 1_000;
/** A replacement that cannot start (its bundle refused, a file unreadable) is tried again, each time waiting twice as long, up to this (ms). */
const MAX_RESTART_DELAY_MS = 30_000;
/**
 * A hand-off file no longer kept (a newer list of its URL and CA came) is removed this long after:
 * a worker handed it a moment ago may still be reading it (ms).
 */
const DISPLACED_FILE_MS = 60_000;
/** A worker answers a health query within this or counts as down (ms). */
const QUERY_TIMEOUT_MS = 2_000;

export async function runPrimary(cfg: PrimaryConfig): Promise<number> {
  const log = cfg.logger;
  // Workers write their log lines straight to the inherited stdout (whole lines of at most 4,096
  // bytes per write: never mixed with another process's); relaying them cost the primary a
  // wakeup, a read and a write per batch (~3-4% of the CPU per request, measured in docs/workers.md).
  cluster.setupPrimary({ stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const live = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w?.isConnected() === true);
  const authority = cfg.redisUrl ? null : new LeaseAuthority({ send: (id, m) => send(cluster.workers?.[id], m), workers: () => Math.max(1, live().length) });
  const ready = new Set<number>();
  /** Workers whose message listener is in place (they said hello): only these are sent floors. */
  const greeted = new Set<number>();
  /** Replacements in a row that exited before they were ready. */
  let failedStarts = 0;
  const startErrors = new Map<number, string>();
  let stopping = false;
  let listenAddress = '';
  /** The digest the workers serve, as last reported (start-up, then every /health). */
  let digest: string | null = null;
  const answers = new Map<number, (m: AnswerMessage) => void>();
  let nextQuery = 1;
  let startup: { resolve: () => void; reject: (err: Error) => void } | null = null;
  const taken = new TakenSoFar();
  const metrics = new ClusterMetrics();
  /** Malformed messages per worker: logged at the 1st, 2nd, 4th, 8th, ... (a worker sending them without end cannot flood the log). */
  const refusals = new Map<number, number>();
  /** What each worker sent this second (ipc-budget.ts). */
  const budget = new WorkerMessageBudget();
  /** Malformed messages per worker in its life: past MAX_MALFORMED it is restarted. */
  const malformed = new Map<number, number>();
  /** Workers killed for what they sent: what they still send is ignored. */
  const killed = new Set<number>();
  /** Queries sent to each worker not answered yet (an answer after its timeout too): as many answers may be large. */
  const owed = new Map<number, number>();
  /**
   * Where the workers hand over large CRLs (mode 0700, made here, removed at exit): a file named in
   * a message, read by the CRL thread, never 52 MB of JSON on this loop (crl-files.ts).
   */
  let crlDir: string;
  try {
    const stale = sweepStaleHandoffDirs();
    if (stale.length > 0) log.info({ removed: stale }, 'hand-off directories of primaries no longer running removed');
    crlDir = makeHandoffDir();
  } catch (err) {
    log.fatal({ error: (err as Error).message }, 'mtlsgate cannot start');
    console.error(`mtlsgate serve: cannot make the directory workers hand CRLs over in: ${(err as Error).message}`);
    return 2;
  }
  /** Removes the hand-off file of a report not kept; never one a kept CRL is in (a report may name it again). */
  const dropFile = (crl: { file?: { name: string } } | undefined) => {
    if (crl?.file !== undefined && !taken.holdsFile(crl.file.name)) dropHandedFile(crlDir, crl.file.name);
  };

  function send(w: Worker | undefined, m: ToWorker): void {
    // A worker killed a moment ago can still look connected: its channel's error goes to this
    // callback (an emitted 'error' would reach no listener); its exit handler starts another.
    if (w?.isConnected()) w.send(m, undefined, undefined, () => {});
  }

  /** Counted; logged at a worker's 1st, 2nd, 4th, 8th, ... */
  function refuse(w: Worker, error: string, why: string): void {
    metrics.refusedMessages.inc();
    const n = (refusals.get(w.id) ?? 0) + 1;
    refusals.set(w.id, n);
    if ((n & (n - 1)) === 0) log.warn({ worker: w.id, pid: w.process.pid, error, refused: n }, `message from a worker dropped: ${why}`);
  }

  /**
   * A worker that sent what mtlsgate's own worker never sends (a message over the size, more than
   * the rate, malformed messages past a few) is buggy or taken over: it is killed, and the exit
   * handler starts another as for any worker that stopped. Said once, naming the worker.
   */
  function restartMisbehaving(w: Worker, error: string): void {
    if (killed.has(w.id)) return;
    killed.add(w.id);
    metrics.refusedMessages.inc();
    log.error({ worker: w.id, pid: w.process.pid, error }, 'worker restarted: it sent what no mtlsgate worker sends');
    w.process.kill('SIGKILL');
  }

  function fork(): Worker {
    const w = cluster.fork();
    // A connection node:cluster was handing to this worker as it died goes to another worker (or is closed), not left open for good.
    guardHandoffs(w, {
      canRedirect: () => !stopping && live().some((other) => other.id !== w.id && ready.has(other.id)),
      onOrphans: (connections, redirected) =>
        log.warn(
          { worker: w.id, pid: w.process.pid, connections },
          `connections handed to a worker as it died: ${redirected ? 'handed to another worker' : 'closed (no worker left to take them)'}`,
        ),
    });
    // The channel's errors (a message to a worker that just died) are not the primary's end: without a listener, one would throw here.
    w.on('error', (err: Error) => log.warn({ worker: w.id, error: err.message }, 'worker channel error'));
    w.on('message', (m: unknown) => {
      // Measured before anything else, whatever it is: over the bounds nothing of it is looked at.
      if (killed.has(w.id)) return;
      const type = isOurs(m) ? m.type : null;
      const solicited = type === 'mtlsgate:answer' && (owed.get(w.id) ?? 0) > 0;
      const bound = boundOf(type ?? '', solicited);
      const size = measure(m, bound);
      if (size === null)
        return restartMisbehaving(
          w,
          `a message ${type === null ? '' : `of type ${JSON.stringify(type.slice(0, 64))} `}over ${bound.bytes} bytes or ${bound.values} values`,
        );
      if (solicited) owed.set(w.id, owed.get(w.id)! - 1);
      else {
        const over = budget.spend(w.id, size);
        if (over !== null) return restartMisbehaving(w, over);
      }
      if (!isOurs(m)) return;
      const msg = checkToPrimary(m);
      if (typeof msg === 'string') {
        const n = (malformed.get(w.id) ?? 0) + 1;
        malformed.set(w.id, n);
        return n > MAX_MALFORMED ? restartMisbehaving(w, `${n} malformed messages, the last: ${msg}`) : refuse(w, msg, 'malformed');
      }
      if (msg.type === 'mtlsgate:taken' && !budget.admitTaken(w.id)) {
        dropFile(msg.crl);
        return refuse(w, 'mtlsgate:taken: more reports in a second than the primary checks', 'over the rate of reports');
      }
      if (msg.type === 'mtlsgate:acquire')
        authority?.acquire(w.id, msg).catch((err: Error) => log.error({ worker: w.id, error: err.message }, 'lease request failed'));
      else if (msg.type === 'mtlsgate:return') authority?.giveBack(w.id, msg.key, msg.closes);
      else if (msg.type === 'mtlsgate:answer') answers.get(msg.id)?.(msg);
      else if (msg.type === 'mtlsgate:taken') {
        // A floor refuses in every worker, every replacement and (--state-dir) after a restart:
        // only what the bundle signer or the CA signed becomes one, never a number a worker states.
        // A large CRL is verified in the CRL thread: what follows runs once it is (floors only
        // rise, so two reports verified out of order end where they would have in order).
        void verifyTaken(msg, cfg.bundlePublicKey, undefined, undefined, crlDir).then((verified) => {
          if (typeof verified === 'string') {
            dropFile(msg.crl);
            return refuse(w, `mtlsgate:taken: ${verified}`, 'its floor does not verify');
          }
          // A verified CRL of a URL nobody configured is still bytes to keep: within a bound (section 49).
          const over = verified.crl === undefined ? null : taken.crlRefusal(verified.crl);
          if (over !== null) {
            dropFile(msg.crl);
            return refuse(w, `mtlsgate:taken: ${over}`, 'over what the primary keeps of CRLs');
          }
          if (verified.bundle) state?.bundleTaken(verified.bundle);
          if (verified.crl) state?.crlTaken(verified.crl.url, verified.crl.floor);
          const { kept, displaced } = taken.add(verified);
          if (displaced?.file !== undefined) setTimeout(() => dropFile(displaced), DISPLACED_FILE_MS).unref();
          // A CRL no newer than the one kept of its URL and CA reached the others already, as that one.
          if (verified.crl !== undefined && !kept) dropFile(verified.crl);
          const news: PeerTaken = { bundle: verified.bundle, crl: kept ? verified.crl : undefined };
          if (news.bundle === undefined && news.crl === undefined) return;
          // Every worker follows the bundle source and the crl_urls itself: told what one took, the
          // others refuse anything older at once, not only after they have read it themselves. A
          // worker that has not said hello yet gets it in its start message instead.
          for (const other of live()) if (other.id !== w.id && greeted.has(other.id)) send(other, { ...news, type: 'mtlsgate:floor' });
        });
      } else if (msg.type === 'mtlsgate:hello') {
        // Before it reads anything: a worker started after the others took something (a
        // replacement for one that died) orders its first bundle and CRLs against it.
        greeted.add(w.id);
        send(w, { type: 'mtlsgate:start', taken: taken.messages(), crlDir });
      } else if (msg.type === 'mtlsgate:ready') {
        failedStarts = 0;
        ready.add(w.id);
        listenAddress = msg.listen;
        digest = msg.digest;
        if (startup !== null && ready.size >= cfg.workers) startup.resolve();
      } else if (msg.type === 'mtlsgate:failed') {
        startErrors.set(w.id, msg.error);
        startup?.reject(new Error(msg.error));
      }
    });
    w.on('exit', (code, signal) => {
      const wasReady = ready.delete(w.id);
      greeted.delete(w.id);
      refusals.delete(w.id);
      malformed.delete(w.id);
      killed.delete(w.id);
      owed.delete(w.id);
      metrics.gone(w.id);
      const startError = startErrors.get(w.id);
      startErrors.delete(w.id);
      authority?.workerGone(w.id);
      if (stopping) return;
      if (!wasReady && startup !== null) {
        startup.reject(new Error(`worker ${w.id} exited (${signal ?? code}) before it was ready`));
        return;
      }
      // After start-up, a replacement that could not start (an older bundle the URL handed it,
      // refused: section 39) is tried again, less and less often, while the others serve.
      const delay = wasReady ? RESTART_DELAY_MS : Math.min(RESTART_DELAY_MS * 2 ** ++failedStarts, MAX_RESTART_DELAY_MS);
      const what = wasReady ? 'worker stopped unexpectedly' : 'worker could not start';
      metrics.restarts.inc({ cause: wasReady ? 'exited' : 'start_failed' });
      log.error({ worker: w.id, pid: w.process.pid, code, signal, ...(startError ? { error: startError } : {}) }, `${what}; starting another in ${delay} ms`);
      setTimeout(() => {
        if (!stopping) fork();
      }, delay).unref();
    });
    return w;
  }

  /** Asks every ready worker (one starting answers nothing yet); a worker that does not answer in time is left out (undefined). */
  function ask(build: (id: number) => QueryMessage): Promise<Array<{ worker: Worker; answer: AnswerMessage | undefined }>> {
    return Promise.all(
      live()
        .filter((w) => ready.has(w.id))
        .map(
          (worker) =>
            new Promise<{ worker: Worker; answer: AnswerMessage | undefined }>((resolve) => {
              const id = nextQuery++;
              const timer = setTimeout(() => {
                answers.delete(id);
                resolve({ worker, answer: undefined });
              }, QUERY_TIMEOUT_MS);
              answers.set(id, (answer) => {
                clearTimeout(timer);
                answers.delete(id);
                resolve({ worker, answer });
              });
              owed.set(worker.id, (owed.get(worker.id) ?? 0) + 1);
              send(worker, build(id));
            }),
        ),
    );
  }

  async function health(): Promise<HealthReport> {
    const replies = await ask((id) => ({ type: 'mtlsgate:health', id }));
    const workers: WorkerHealth[] = replies.map(({ worker, answer }) => ({
      worker: worker.id,
      pid: worker.process.pid ?? 0,
      status: answer?.health?.status ?? 'down',
      bundle: answer?.health?.bundle.digest ?? null,
      limiter: answer?.health?.limiter ?? null,
    }));
    // A replacement still starting is listed, not asked: /health answers at once, degraded.
    for (const w of live()) if (!ready.has(w.id)) workers.push({ worker: w.id, pid: w.process.pid ?? 0, status: 'starting', bundle: null, limiter: null });
    const reports = replies.map((r) => r.answer?.health).filter((h): h is HealthReport => h !== undefined);
    const base = reports[0];
    if (base === undefined) throw new Error('no worker answered');
    digest = base.bundle.digest;
    const missing = replies.length < cfg.workers || workers.some((w) => w.status === 'down');
    const degraded = missing || reports.some((r) => r.status === 'degraded') || new Set(replies.map((r) => r.answer?.health?.bundle.digest ?? null)).size > 1;
    return {
      ...base,
      status: stopping || reports.some((r) => r.status === 'draining') ? 'draining' : degraded ? 'degraded' : 'ok',
      last_reload_error: reports.find((r) => r.last_reload_error !== null)?.last_reload_error ?? null,
      limiter: reports.find((r) => r.limiter?.status === 'degraded')?.limiter ?? base.limiter,
      // A worker without a valid CRL refuses (closed) or admits (open) by itself: the worst one shows.
      revocation: reports.find((r) => r.revocation?.status === 'stale')?.revocation ?? base.revocation,
      workers: workers.sort((a, b) => a.worker - b.worker),
    };
  }

  async function expiring(limit: number): Promise<ExpiringCertificate[]> {
    // Every worker serves the same bundle: the first answer is the answer.
    for (const { answer } of await ask((id) => ({ type: 'mtlsgate:expiring', id, limit }))) if (answer?.certificates) return answer.certificates;
    return [];
  }

  const stopAll = (reason: string) => {
    // A worker that has not said hello may not listen for messages yet; it serves nothing: a signal stops it.
    for (const w of live())
      if (greeted.has(w.id)) send(w, { type: 'mtlsgate:stop', reason });
      else w.process.kill('SIGTERM');
  };
  const allExited = () =>
    new Promise<void>((resolve) => {
      const check = () => (Object.keys(cluster.workers ?? {}).length === 0 ? resolve() : setTimeout(check, 50));
      check();
    });

  // From the first fork on: SIGHUP's default action would end the primary, and with it every
  // worker, during a start-up that can take as long as a bundle URL takes to answer. A worker
  // that has not said hello reads everything after it anyway.
  const onHup = () => {
    log.info({ workers: live().length }, 'reload requested (SIGHUP): every worker reloads its server certificate and bundle');
    for (const w of live()) if (greeted.has(w.id)) send(w, { type: 'mtlsgate:reload' });
  };
  process.on('SIGHUP', onHup);
  /** A start-up that failed, said once in the log and on stderr: exit status 2. */
  const cannotStart = (err: unknown): number => {
    authority?.stop();
    budget.stop();
    log.fatal({ error: (err as Error).message }, 'mtlsgate cannot start');
    log.flush();
    console.error(`mtlsgate serve: ${(err as Error).message}`);
    process.off('SIGHUP', onHup);
    removeHandoffDir(crlDir);
    return 2;
  };
  // Start-up: every worker listening, or the first failure stops them all (exit 2).
  // The state file is read (and proven writable) before any worker starts: a bad one is one message.
  let state: StateWriter | null = null;
  try {
    state = (await startState(cfg.stateDir, undefined, undefined, (error) => log.error({ error }, 'state not saved'))).writer;
  } catch (err) {
    return cannotStart(err);
  }
  const started = new Promise<void>((resolve, reject) => (startup = { resolve, reject }));
  for (let i = 0; i < cfg.workers; i++) fork();
  try {
    await started;
  } catch (err) {
    stopping = true;
    startup = null;
    for (const w of live()) w.process.kill('SIGKILL');
    await allExited();
    return cannotStart(err);
  }
  startup = null;

  let admin: AdminServer | null = null;
  if (cfg.admin) {
    try {
      admin = await startAdminServer(cfg.admin.host, cfg.admin.port, {
        health,
        onLimiterError: cfg.onLimiterError,
        draining: () => stopping,
        bundleDigest: () => digest,
        metrics: async () => {
          const answers = await ask((id) => ({ type: 'mtlsgate:metrics', id }));
          return {
            contentType: metrics.registry.contentType,
            body: await metrics.text(answers.map(({ worker, answer }) => ({ worker: worker.id, metrics: answer?.metrics }))),
          };
        },
        expiring,
      });
    } catch (err) {
      stopping = true;
      stopAll('start-up failed');
      await allExited();
      authority?.stop();
      const e = err as NodeJS.ErrnoException;
      const message = `cannot listen on ${cfg.admin.host}:${cfg.admin.port} (--admin): ${e.code === 'EADDRINUSE' ? 'the address is already in use' : e.message}`;
      log.fatal({ error: message }, 'mtlsgate cannot start');
      console.error(`mtlsgate serve: ${message}`);
      process.off('SIGHUP', onHup);
      removeHandoffDir(crlDir);
      return 2;
    }
  }
  log.info(
    {
      version: VERSION,
      listen: listenAddress,
      admin: admin ? `${admin.address.address}:${admin.address.port}` : null,
      workers: cfg.workers,
      pids: live().map((w) => w.process.pid),
      limiter: cfg.redisUrl ? 'redis' : 'primary-leases',
    },
    'mtlsgate serving',
  );

  return new Promise<number>((resolveExit) => {
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second stop signal: stopping the workers without waiting for the drain');
        for (const w of live()) w.process.kill('SIGKILL');
        log.flush();
        removeHandoffDir(crlDir);
        process.exit(1);
      }
      stopping = true;
      log.info({ reason: signal, workers: live().length, drain_timeout_ms: cfg.drainTimeoutMs }, 'draining: every worker finishes its requests in flight');
      stopAll(signal);
      // A worker that does not finish within its drain timeout (plus slack) is killed.
      const killer = setTimeout(() => {
        for (const w of live()) w.process.kill('SIGKILL');
      }, cfg.drainTimeoutMs + 5_000).unref();
      void allExited().then(async () => {
        clearTimeout(killer);
        process.off('SIGHUP', onHup);
        process.off('SIGTERM', onStop);
        process.off('SIGINT', onStop);
        authority?.stop();
        budget.stop();
        await admin?.close();
        await state?.flushed();
        removeHandoffDir(crlDir);
        log.info({ reason: signal }, 'mtlsgate stopped');
        resolveExit(0);
      });
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
  });
}
