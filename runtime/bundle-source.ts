// Where the serving bundle comes from and how it is kept current: a file (watched: in-place
// writes, atomic renames, ConfigMap swaps; runtime/watch-file.ts) or an http(s) URL (polled
// with ETags; runtime/poll-url.ts). Every reload goes through the store (verify, build, swap)
// and is reported (log line, metrics); a refused bundle leaves the old one serving.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isManifest, MANIFEST_FILE } from '../bundle/read-sharded.ts';
import { errnoMessage } from '../common/errno.ts';
import { readRegularFileAsync } from '../common/regular-file.ts';
import { MAX_BUNDLE_BYTES } from '../common/size-limits.ts';
import type { Logger } from './log.ts';
import type { GatewayMetrics } from './metrics.ts';
import { oneAtATime } from './one-at-a-time.ts';
import { fetchBundle, pollUrl } from './poll-url.ts';
import type { BundleStore, ReloadResult } from './store.ts';
import type { ShardLocation } from './shard-set.ts';
import { watchFile } from './watch-file.ts';

const round1 = (ms: number): number => Math.round(ms * 10) / 10;

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

export interface InitialBundle {
  bytes: Buffer;
  etag: string | null;
  /** A sharded bundle (its manifest is `bytes`): where its shards are; null for a single-file bundle. */
  shards: ShardLocation | null;
  /** The file to watch (a sharded bundle's manifest), or the URL to poll. */
  follow: string;
}

/**
 * A bundle file or manifest: a regular file of at most MAX_BUNDLE_BYTES, read from one open
 * descriptor (common/regular-file.ts). A named pipe is refused at once (it used to hold
 * start-up, or every later reload, waiting for a writer), /dev/zero before a byte is read.
 */
const readBundleFile = (path: string): Promise<Buffer> => readRegularFileAsync(path, MAX_BUNDLE_BYTES);

/**
 * The bundle at start-up: a bundle file, a sharded bundle's directory (or its manifest.json), or
 * an http(s) URL of either. Throws Error with a message for the user (the caller exits 2).
 */
export async function readInitialBundle(source: string): Promise<InitialBundle> {
  if (isUrl(source)) {
    const r = await fetchBundle(source, null, 30_000);
    if (r.status !== 'modified') throw new Error('server answered 304 to an unconditional request');
    return { bytes: r.bytes, etag: r.etag, shards: isManifest(r.bytes) ? { kind: 'url', manifestUrl: source } : null, follow: source };
  }
  const manifest = join(source, MANIFEST_FILE);
  if (statSync(source, { throwIfNoEntry: false })?.isDirectory() && existsSync(manifest)) {
    try {
      return { bytes: await readBundleFile(manifest), etag: null, shards: { kind: 'file', dir: source }, follow: manifest };
    } catch (err) {
      throw new Error(`--bundle ${source}: cannot read ${manifest}: ${errnoMessage(err)}`);
    }
  }
  try {
    const bytes = await readBundleFile(source);
    return { bytes, etag: null, shards: isManifest(bytes) ? { kind: 'file', dir: dirname(source) } : null, follow: source };
  } catch (err) {
    // A config directory given as the bundle: never suggest compiling into it.
    if (statSync(source, { throwIfNoEntry: false })?.isDirectory())
      throw new Error(
        `--bundle ${source} is a directory: serve takes a compiled bundle; if it is the config directory, compile it with \`mtlsgate compile ${source} -o bundle.json\` and serve --bundle bundle.json`,
      );
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(`cannot read --bundle ${source}: ${errnoMessage(err)}${missing ? `; compile one with \`mtlsgate compile CONFIG_DIR -o ${source}\`` : ''}`);
  }
}

interface BundleSourceOptions<S> {
  /** A file path (a sharded bundle's manifest), or an http(s):// URL. */
  source: string;
  /** The source as logs and /health show it (a URL redacted: runtime/redact.ts). */
  shown: string;
  /** ETag of the bundle already serving (URL sources). */
  etag: string | null;
  store: BundleStore<S>;
  pollIntervalMs: number;
  /** File watch debounce; default 50 ms. */
  watchDebounceMs?: number;
  log: Logger;
  metrics: GatewayMetrics;
}

export interface BundleSource {
  /** SIGHUP: read the source now (a file again, the URL polled); resolves when judged. */
  reloadNow(): Promise<void>;
  close(): Promise<void>;
}

/** Starts following `source`; resolves once a file watch is ready to report changes. */
export async function followBundle<S>(opts: BundleSourceOptions<S>): Promise<BundleSource> {
  const { source, shown, store, log, metrics } = opts;
  const report = (result: ReloadResult): boolean => {
    if (result.status === 'loaded') {
      metrics.bundleLoaded(store.info(), false);
      log.info(
        {
          source: shown,
          digest: result.digest,
          previous_digest: result.previousDigest,
          apis: result.apis,
          keys: result.keys,
          load_ms: Math.round(result.ms),
          // A sharded reload: what it cost the event loop (docs/scale.md).
          ...(result.stallMs === undefined ? {} : { stall_ms: round1(result.stallMs), loop_delay_ms: round1(result.loopDelayMs ?? 0) }),
        },
        'bundle reloaded',
      );
      return true;
    }
    if (result.status === 'unchanged') {
      log.debug({ source: shown, digest: result.digest }, 'bundle unchanged');
      return true;
    }
    metrics.reloadFailed();
    log.error({ source: shown, error: result.error.message, serving: store.info().digest }, 'bundle refused; the previous bundle keeps serving');
    return false;
  };

  if (isUrl(source)) {
    const poll = pollUrl(source, {
      intervalMs: opts.pollIntervalMs,
      etag: opts.etag,
      // Big bundles are verified in a worker thread: requests keep flowing meanwhile.
      onBundle: async (bytes) => report(await store.reloadAsync(bytes, shown)),
      onNotModified: () => {
        store.confirmCurrent();
        log.debug({ source: shown }, 'bundle not modified (304)');
      },
      onError: (err) => report(store.recordFailure(err.message, shown)),
    });
    return { reloadNow: () => poll.pollNow(), close: async () => poll.close() };
  }

  // Watch events during a reload coalesce into one more pass after it. An early pass (a rename
  // event, taken before the quiet time: runtime/watch-file.ts) does not report a failure: the
  // watch reads again after the quiet time, and that pass reports it.
  let nextIsEarly = false;
  let earlyFailed = false;
  const reload = oneAtATime(async () => {
    const early = nextIsEarly;
    nextIsEarly = false;
    const failed = (result: ReloadResult) => {
      if (early) {
        earlyFailed = true;
        log.debug(
          { source: shown, error: result.status === 'failed' ? result.error.message : '' },
          'bundle not taken on its rename event; read again after the quiet time',
        );
      } else report(result);
    };
    let bytes: Buffer;
    try {
      bytes = await readBundleFile(source);
    } catch (err) {
      failed(store.recordFailure(`cannot read bundle file ${source}: ${errnoMessage(err)}`, shown));
      return;
    }
    const result = await store.reloadAsync(bytes, shown);
    if (result.status === 'failed') failed(result);
    else report(result);
  });
  const onEarly = async (): Promise<boolean> => {
    nextIsEarly = true;
    earlyFailed = false;
    await reload.run();
    return !earlyFailed;
  };
  const watch = watchFile(source, () => void reload.run(), {
    debounceMs: opts.watchDebounceMs,
    onEarly,
    onError: (err) => log.error({ error: err.message }, 'bundle file watch error'),
  });
  await watch.ready;
  return { reloadNow: () => reload.run(), close: () => watch.close() };
}
