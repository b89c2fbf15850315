// The bundle being served, and the one place it changes.
//
// A reload verifies the bytes (bundle/read.ts `loadBundle`: format, digest, shape), builds
// the request-path snapshot from them (runtime/snapshot.ts `buildSnapshot`), and only then
// replaces the current snapshot with one reference assignment. JavaScript runs one thing at a
// time, so no request ever sees half a swap; a request that already read `current()` keeps the
// snapshot it started with until it finishes, and the next request (on any connection, keep-
// alive included) reads the new one. Anything that throws before the assignment leaves the
// old bundle serving and is recorded as the last reload error (for /health and the log).
//
// `reloadAsync` does the same for big bundles without stalling requests: a worker thread
// verifies and parses the bytes (runtime/bundle-worker.ts) and hands back a compact form the
// snapshot is built from in a few milliseconds; the swap is the same single assignment.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { KeyObject } from 'node:crypto';
import type { VerifiedSignature } from '../bundle/sign.ts';
import type { Bundle } from '../bundle/types.ts';
import { startShardWorkerEarly, verifyInWorker, warmShardWorker } from './bundle-worker-client.ts';
import type { CompactBundle } from './bundle-worker-compact.ts';
import { type BundleFloor, checkOrder, floorOfServed, higherFloor } from './bundle-floor.ts';
import { bytesHash, checkSignature, type ServedBundle, servedBytes, servedCompact, servedSet } from './served-bundle.ts';
import { loadShardsHere, loadShardsOffThread } from './shard-reload.ts';
import type { ShardSet } from './sharded-keys.ts';
import type { ShardLocation } from './shard-set.ts';

export interface ReloadError {
  message: string;
  /** ISO-8601 time of the failed attempt. */
  at: string;
  /** Where the refused bytes came from (file path or URL). */
  source: string;
}

export type ReloadResult =
  | {
      status: 'loaded';
      digest: string;
      previousDigest: string;
      apis: number;
      keys: number;
      ms: number;
      /**
       * A sharded reload: the longest time it held the event loop in one go (verifying the
       * manifest's signature and posting it to the worker; taking the worker's answer, building the
       * snapshot and swapping), and the event loop's longest delay from its start to its swap
       * (1 ms resolution: anything else the thread ran meanwhile, GC included).
       */
      stallMs?: number;
      loopDelayMs?: number;
    }
  | { status: 'unchanged'; digest: string }
  | { status: 'failed'; error: ReloadError };

export interface StoreOptions<S> {
  /** Builds a snapshot from a worker-verified compact bundle; without it reloadAsync verifies on this thread. */
  buildCompact?: (compact: CompactBundle) => S;
  /** Bundles at least this many bytes are verified in a worker (smaller ones are quicker here). Default 1 MiB. */
  workerMinBytes?: number;
  /** Serve a bundle with no API (it routes nothing). Refused by default, at start and on reload. */
  allowEmpty?: boolean;
  /**
   * `serve --bundle-public-key`: only bundles whose digest this Ed25519 key signed are taken
   * (bundle/sign.ts); unsigned or wrongly signed ones are refused like any bad bundle.
   */
  publicKey?: KeyObject;
  /** Builds the snapshot of a sharded bundle (runtime/shard-set.ts). */
  buildSharded?: (set: ShardSet) => S;
  /**
   * With publicKey: a bundle signed before this is refused (runtime/bundle-floor.ts), at start and
   * on reload; `serve --state-dir` and `--bundle-not-before` set it. The bundle serving raises it.
   */
  floor?: BundleFloor | null;
  /** A signed bundle was swapped in (serve --state-dir records its signing time). */
  onSigned?: (signature: VerifiedSignature) => void;
}

/** Why a bundle that routes nothing is refused (an empty config compiled by mistake, a truncated build). */
const EMPTY_BUNDLE = 'the bundle has no API, so it would route nothing (serve --allow-empty serves it anyway)';

/** Below this a bundle verifies on the main thread in a few ms, quicker than starting a worker. */
const WORKER_MIN_BYTES = 1 << 20;

/** The compact builder, for a bundle big enough to be served from its columns. */
function bigEnough<S>(bytes: Buffer, options: StoreOptions<S>): ((c: CompactBundle) => S) | undefined {
  return bytes.length >= (options.workerMinBytes ?? WORKER_MIN_BYTES) ? options.buildCompact : undefined;
}

export class BundleStore<S> {
  private served: ServedBundle<S>;
  private lastError: ReloadError | null = null;
  /** The earliest signing time a bundle may have (runtime/bundle-floor.ts); null: none yet. */
  private floor: BundleFloor | null;
  /** reloadAsync calls run one after another, so they swap in the order they were asked. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly build: (bundle: Bundle) => S,
    initial: ServedBundle<S>,
    private readonly options: StoreOptions<S>,
    /** Where a sharded bundle's shards are read from; null for a single-file bundle. */
    private readonly shardLocation: ShardLocation | null = null,
  ) {
    this.served = initial;
    this.floor = higherFloor(initial.signature && floorOfServed(initial.signature), options.floor ?? null);
  }

  /**
   * The first load of a sharded bundle (a manifest and its shards: bundle/shards.ts): every
   * shard read and verified on this thread. Errors throw (start-up fails).
   */
  static async createSharded<S>(
    manifest: Buffer,
    source: string,
    location: ShardLocation,
    build: (bundle: Bundle) => S,
    options: StoreOptions<S>,
  ): Promise<BundleStore<S>> {
    if (!options.buildSharded) throw new Error('internal error: a sharded bundle needs buildSharded');
    const signature = checkSignature(manifest, options.publicKey, options.floor ?? null);
    const bytesSha256 = bytesHash(manifest);
    // The reload worker starts now, and its warm-up once the set is loaded. Started after the
    // load (2026-12-03), a change made right after the first answer waited for the worker's
    // start and warm-up: 0.35-0.47 s at 100,000 keys, 0.6 s at 1,000,000. Started before, with
    // its warm-up too, it took 0.3-0.6 s of the load's CPU where the gateway has one core. Now
    // only its start (~50-100 ms of CPU, the worker's code without undici) runs during the load,
    // and the warm-up gives way to a reload that arrives: that first change is served in ~70 ms
    // at 100,000 keys, for ~50 ms more before the first answer on one core (docs/scale.md).
    startShardWorkerEarly();
    const set = await loadShardsHere(manifest, bytesSha256, location, null);
    const initial = servedSet(set, options.buildSharded(set), source, bytesSha256, signature);
    if (initial.apis === 0 && !options.allowEmpty) throw new Error(EMPTY_BUNDLE);
    warmShardWorker(manifest, bytesSha256, location);
    return new BundleStore(build, initial, options, location);
  }

  /** The first load: there is no old bundle to fall back to, so errors throw (start-up fails). */
  static create<S>(bytes: Buffer, source: string, build: (bundle: Bundle) => S, options: StoreOptions<S> = {}): BundleStore<S> {
    const checked = (b: Buffer) => checkSignature(b, options.publicKey, options.floor ?? null);
    const initial = servedBytes(bytes, bytesHash(bytes), source, build, checked, bigEnough(bytes, options));
    if (initial.apis === 0 && !options.allowEmpty) throw new Error(EMPTY_BUNDLE);
    return new BundleStore(build, initial, options);
  }

  /** The snapshot a request arriving now must use. */
  current(): S {
    return this.served.snapshot;
  }

  info(): Readonly<ServedBundle<S>> {
    return this.served;
  }

  /**
   * Raises the floor to `floor` if it is higher (another worker took a newer signed bundle:
   * runtime/peer-floors.ts). True when the bundle serving was signed before it: a reload should
   * look for the newer one.
   */
  raiseFloor(floor: BundleFloor): boolean {
    this.floor = higherFloor(this.floor, floor);
    const signedAt = this.served.signature?.signedAt ?? null;
    return signedAt === null || signedAt < floor.signedAt;
  }

  /** The most recent refused reload since the last successful one, or null. */
  lastReloadError(): ReloadError | null {
    return this.lastError;
  }

  /** The source was checked and still holds what is serving (HTTP 304): an earlier failure is history. */
  confirmCurrent(): void {
    this.lastError = null;
  }

  /** A reload that failed before there were bytes to judge (unreadable file, failed download). */
  recordFailure(message: string, source: string): ReloadResult {
    this.lastError = { message, at: new Date().toISOString(), source };
    return { status: 'failed', error: this.lastError };
  }

  /**
   * Verifies, builds and swaps in `bytes`. Never throws: a refused bundle leaves the current
   * one serving. The very bytes already serving are a no-op (editors and watchers often
   * report one save several times).
   */
  reload(bytes: Buffer, source: string): ReloadResult {
    if (this.shardLocation) return this.refuse('internal error: a sharded bundle is reloaded with reloadAsync (its shards are read asynchronously)', source);
    const hash = bytesHash(bytes);
    if (hash === this.served.bytesSha256 && !this.takeForce()) return this.unchanged();
    const started = performance.now();
    let next: ServedBundle<S>;
    try {
      next = servedBytes(bytes, hash, source, this.build, (b) => checkSignature(b, this.options.publicKey, this.floor), bigEnough(bytes, this.options));
    } catch (err) {
      return this.refuse((err as Error).message, source);
    }
    return this.swap(next, started);
  }

  /**
   * `reload` for callers that can wait: the same checks, messages and swap, but a bundle of
   * `workerMinBytes` or more is verified in a worker thread, so requests keep being served
   * (by the current snapshot) meanwhile. Never rejects.
   */
  reloadAsync(bytes: Buffer, source: string): Promise<ReloadResult> {
    const run = this.queue.then(() => (this.shardLocation ? this.reloadShards(bytes, source, this.shardLocation) : this.reloadOffThread(bytes, source)));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async reloadOffThread(bytes: Buffer, source: string): Promise<ReloadResult> {
    const buildCompact = this.options.buildCompact;
    if (buildCompact === undefined || bytes.length < (this.options.workerMinBytes ?? WORKER_MIN_BYTES)) return this.reload(bytes, source);
    const started = performance.now();
    // Header only (~0.1 ms): done here, before the worker hashes and parses the content.
    const signed = this.signatureOf(bytes);
    if ('problem' in signed) return this.refuse(signed.problem, source);
    let verdict: Awaited<ReturnType<typeof verifyInWorker>>;
    try {
      verdict = await verifyInWorker(bytes, this.takeForce() ? '' : this.served.bytesSha256);
    } catch {
      // The worker could not run (resources, a missing build file): verify here, slower but correct.
      return this.reload(bytes, source);
    }
    if (verdict.status === 'unchanged') return this.unchanged();
    if (verdict.status === 'refused') return this.refuse(verdict.message, source);
    if (verdict.status !== 'verified') return this.refuse(`internal error: the bundle worker answered ${verdict.status}`, source);
    const compact = verdict.bundle;
    let snapshot: S;
    try {
      snapshot = buildCompact(compact);
    } catch (err) {
      return this.refuse((err as Error).message, source);
    }
    return this.swap(servedCompact(compact, snapshot, source, compact.bytesSha256, signed.signature), started);
  }

  /** A sharded bundle's new manifest: only shards with a new digest are read (in a worker). */
  private async reloadShards(manifest: Buffer, source: string, location: ShardLocation): Promise<ReloadResult> {
    const started = performance.now();
    const hash = bytesHash(manifest);
    if (hash === this.served.bytesSha256 && !this.takeForce()) return this.unchanged();
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    try {
      const signed = this.signatureOf(manifest);
      if ('problem' in signed) return this.refuse(signed.problem, source);
      const pending = loadShardsOffThread(manifest, hash, location, this.served.shards!);
      const sent = performance.now() - started;
      const loaded = await pending;
      if ('refused' in loaded) return this.refuse(loaded.refused, source);
      let snapshot: S;
      try {
        snapshot = this.options.buildSharded!(loaded.set);
      } catch (err) {
        return this.refuse((err as Error).message, source);
      }
      const result = this.swap(servedSet(loaded.set, snapshot, source, hash, signed.signature), started);
      if (result.status !== 'loaded') return result;
      // From taking the answer to here is one synchronous run (the awaits between resolve in one microtask pass).
      const stallMs = Math.max(sent, performance.now() - loaded.receivedAt);
      return { ...result, stallMs, loopDelayMs: loop.max / 1e6 };
    } finally {
      loop.disable();
    }
  }

  /** `bytes`' signature checked (header only, before any parsing), or why it fails `--bundle-public-key` and the floor. */
  private signatureOf(bytes: Buffer): { signature: VerifiedSignature | null } | { problem: string } {
    try {
      return { signature: checkSignature(bytes, this.options.publicKey, this.floor) };
    } catch (err) {
      return { problem: (err as Error).message };
    }
  }

  private unchanged(): ReloadResult {
    // The source holds what is serving again: an earlier refused version is history.
    this.lastError = null;
    return { status: 'unchanged', digest: this.served.digest };
  }

  private refuse(message: string, source: string): ReloadResult {
    this.lastError = { message, at: new Date().toISOString(), source };
    return { status: 'failed', error: this.lastError };
  }

  private forceOnce = false;

  /**
   * The next reload builds the snapshot even from the very bytes already serving (SIGHUP: files
   * the snapshot reads from disk, such as proxy.upstream_tls's client key, may have changed).
   */
  forceNextReload(): void {
    this.forceOnce = true;
  }

  private takeForce(): boolean {
    const force = this.forceOnce;
    this.forceOnce = false;
    return force;
  }

  private swap(next: ServedBundle<S>, started: number): ReloadResult {
    if (next.apis === 0 && !this.options.allowEmpty) return this.refuse(EMPTY_BUNDLE, next.source);
    // Ordered again: the floor may have risen while the bundle was verified off this thread (a
    // newer bundle another worker took: runtime/peer-floors.ts).
    if (next.signature !== null) {
      try {
        checkOrder(next.signature, this.floor);
      } catch (err) {
        return this.refuse((err as Error).message, next.source);
      }
    }
    const previousDigest = this.served.digest;
    this.served = next;
    this.floor = higherFloor(next.signature && floorOfServed(next.signature), this.floor);
    this.lastError = null;
    if (next.signature !== null) this.options.onSigned?.(next.signature);
    return { status: 'loaded', digest: next.digest, previousDigest, apis: next.apis, keys: next.keys, ms: performance.now() - started };
  }
}
