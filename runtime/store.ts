// The bundle being served, and the one place it changes.
//
// A reload verifies the bytes (runtime/bundle.ts `loadBundle`: format, digest, shape), builds
// the request-path snapshot from them (runtime/snapshot.ts `buildSnapshot`), and only then
// replaces the current snapshot with one reference assignment. JavaScript runs one thing at a
// time, so no request ever sees half a swap; a request that already read `current()` keeps the
// snapshot it started with until it finishes, and the next request (on any connection, keep-
// alive included) reads the new one. Anything that throws before the assignment leaves the
// old bundle serving and is recorded as the last reload error (for /health and the log).
import { createHash } from 'node:crypto';
import { loadBundle, type Bundle } from './bundle.ts';

export interface ReloadError {
  message: string;
  /** ISO-8601 time of the failed attempt. */
  at: string;
  /** Where the refused bytes came from (file path or URL). */
  source: string;
}

export interface ServedBundle<S> {
  snapshot: S;
  digest: string;
  loadedAt: Date;
  source: string;
  apis: number;
  keys: number;
  /** SHA-256 of the file bytes it was loaded from (the digest covers the content only). */
  bytesSha256: string;
}

export type ReloadResult =
  | { status: 'loaded'; digest: string; previousDigest: string; apis: number; keys: number; ms: number }
  | { status: 'unchanged'; digest: string }
  | { status: 'failed'; error: ReloadError };

/** Hash of the exact file bytes: equal bytes = nothing to do. */
function bytesHash(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function prepare<S>(bytes: Buffer, bytesSha256: string, source: string, build: (bundle: Bundle) => S): ServedBundle<S> {
  const bundle = loadBundle(bytes);
  return {
    snapshot: build(bundle),
    digest: bundle.digest,
    loadedAt: new Date(),
    source,
    apis: Object.keys(bundle.content.apis).length,
    keys: Object.keys(bundle.content.keys).length,
    bytesSha256,
  };
}

export class BundleStore<S> {
  private served: ServedBundle<S>;
  private lastError: ReloadError | null = null;

  private constructor(
    private readonly build: (bundle: Bundle) => S,
    initial: ServedBundle<S>,
  ) {
    this.served = initial;
  }

  /** The first load: there is no old bundle to fall back to, so errors throw (start-up fails). */
  static create<S>(bytes: Buffer, source: string, build: (bundle: Bundle) => S): BundleStore<S> {
    return new BundleStore(build, prepare(bytes, bytesHash(bytes), source, build));
  }

  /** The snapshot a request arriving now must use. */
  current(): S {
    return this.served.snapshot;
  }

  info(): Readonly<ServedBundle<S>> {
    return this.served;
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
    const hash = bytesHash(bytes);
    if (hash === this.served.bytesSha256) {
      // The source holds what is serving again: an earlier refused version is history.
      this.lastError = null;
      return { status: 'unchanged', digest: this.served.digest };
    }
    const started = performance.now();
    let next: ServedBundle<S>;
    try {
      next = prepare(bytes, hash, source, this.build);
    } catch (err) {
      this.lastError = { message: (err as Error).message, at: new Date().toISOString(), source };
      return { status: 'failed', error: this.lastError };
    }
    const previousDigest = this.served.digest;
    this.served = next;
    this.lastError = null;
    return { status: 'loaded', digest: next.digest, previousDigest, apis: next.apis, keys: next.keys, ms: performance.now() - started };
  }
}
