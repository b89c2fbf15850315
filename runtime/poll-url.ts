// Polls a bundle URL (`serve --bundle https://...`) with conditional requests: the ETag of the
// last bundle taken goes out as If-None-Match, and 304 Not Modified costs no download and no
// verification. Any failure (network, status, timeout) leaves the serving bundle alone; the
// next poll tries again. HTTPS verifies the server against Node's CA store, which
// NODE_EXTRA_CA_CERTS extends for a private CA.
import { MAX_BUNDLE_BYTES } from '../common/size-limits.ts';
import { type ByteBudget, readCapped, TooLarge } from './capped-read.ts';
import { oneAtATime } from './one-at-a-time.ts';
import { outboundGet } from './outbound-get.ts';
import { redactUrl, redactUrlsIn } from './redact.ts';

type FetchResult = { status: 'modified'; bytes: Buffer; etag: string | null } | { status: 'not-modified' };

class BundleFetchError extends Error {
  override name = 'BundleFetchError';
}

/**
 * The whole download, headers and body, within this many times the per-read timeout (100 to
 * 300 s for a poll, 300 s at start-up; 512 MiB at 1.7 MB/s). `timeoutMs` alone bounds each wait
 * for a byte: a server (or whoever is on the path to a plain-HTTP URL) sending one byte every
 * few seconds kept a download, and with it every later poll and SIGHUP, going for ever, the
 * gateway silently on its old bundle (docs/security.md section 37).
 */
export const DOWNLOAD_DEADLINE_FACTOR = 10;

/**
 * What the downloads of one sharded set share (runtime/shard-set.ts): one deadline and one byte
 * ceiling for all its shards, not one per shard (docs/security.md section 54).
 */
export interface SharedDownload {
  /** Aborted at the set's deadline, or when another of its downloads failed. */
  signal: AbortSignal;
  /** Why the signal aborted, for messages. */
  aborted: () => string;
  bytes: ByteBudget;
}

/**
 * One conditional GET. Throws BundleFetchError with the URL and the reason (a body over
 * `maxBytes` is one, a download over its deadline another). With `share`, its signal and byte
 * budget bound this download together with the others of its set.
 */
export async function fetchBundle(
  url: string,
  etag: string | null,
  timeoutMs: number,
  maxBytes = MAX_BUNDLE_BYTES,
  deadlineMs = timeoutMs * DOWNLOAD_DEADLINE_FACTOR,
  share?: SharedDownload,
): Promise<FetchResult> {
  const signal = share?.signal ?? AbortSignal.timeout(deadlineMs);
  const overDeadline = (err: unknown): string =>
    signal.aborted ? (share?.aborted() ?? `the download took longer than ${deadlineMs / 1000} s`) : redactUrlsIn((err as Error).message);
  let res;
  try {
    // No redirect is followed: a 3xx fails the poll (section 29). Userinfo goes out as Basic (section 49).
    ({ res } = await outboundGet(url, {
      headers: etag ? { 'if-none-match': etag, accept: 'application/json' } : { accept: 'application/json' },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal,
      redirects: 0,
    }));
  } catch (err) {
    throw new BundleFetchError(`cannot fetch bundle from ${redactUrl(url)}: ${overDeadline(err)}`);
  }
  if (res.statusCode === 304) {
    await res.body.dump();
    // Not modified since what? Taken as "the bundle serving is current", it cleared the last
    // reload error in /health without the server having been asked about that bundle.
    if (etag === null) throw new BundleFetchError(`cannot fetch bundle from ${redactUrl(url)}: HTTP 304 to a request without If-None-Match`);
    return { status: 'not-modified' };
  }
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new BundleFetchError(`cannot fetch bundle from ${redactUrl(url)}: HTTP ${res.statusCode}${redirectNote(res.statusCode, res.headers.location)}`);
  }
  let bytes: Buffer;
  try {
    bytes = await readCapped(res.body, maxBytes, share?.bytes);
  } catch (err) {
    if (err instanceof TooLarge) throw new BundleFetchError(`bundle from ${redactUrl(url)} refused: ${err.message}`);
    throw new BundleFetchError(`bundle download from ${redactUrl(url)} broke off: ${overDeadline(err)}`);
  }
  const header = res.headers.etag;
  return { status: 'modified', bytes, etag: typeof header === 'string' ? header : null };
}

/**
 * A redirect is not followed from a bundle URL or a shard's (section 29): the bundle is served
 * from where --bundle points, and a shard server cannot send the gateway elsewhere. Says so, and
 * where it led, rather than a bare status.
 */
function redirectNote(status: number, location: string | string[] | undefined): string {
  if (status < 300 || status > 399 || typeof location !== 'string') return '';
  return ` (a redirect to ${JSON.stringify(redactUrl(location).slice(0, 200))}: not followed; a bundle and its shards are read only from the URL --bundle names)`;
}

interface UrlPollOptions {
  intervalMs: number;
  /** ETag of the bundle already serving (from the start-up fetch). */
  etag: string | null;
  /**
   * Per-read timeout (headers, then each wait for body bytes); the whole download gets
   * DOWNLOAD_DEADLINE_FACTOR times it. Default: the interval, at least 10 s and at most 30 s (polls never overlap).
   */
  timeoutMs?: number;
  /** New bytes arrived; return true if they were taken (their ETag is then remembered). */
  onBundle: (bytes: Buffer) => boolean | Promise<boolean>;
  onNotModified?: () => void;
  onError: (err: Error) => void;
}

interface UrlPoll {
  /** Polls right away (SIGHUP), or once more after the running poll; resolves when it is done. */
  pollNow(): Promise<void>;
  close(): void;
}

export function pollUrl(url: string, opts: UrlPollOptions): UrlPoll {
  const timeoutMs = opts.timeoutMs ?? Math.min(Math.max(opts.intervalMs, 10_000), 30_000);
  let etag = opts.etag;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const once = async () => {
    try {
      const r = await fetchBundle(url, etag, timeoutMs);
      if (closed) return;
      if (r.status === 'not-modified') opts.onNotModified?.();
      // A refused bundle's ETag is not remembered, so it is fetched and judged again next
      // time rather than silently skipped.
      else if (await opts.onBundle(r.bytes)) etag = r.etag;
    } catch (err) {
      if (!closed) opts.onError(err as Error);
    }
  };
  const pollNow = oneAtATime(once).run;
  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => void pollNow().finally(schedule), opts.intervalMs);
    timer.unref();
  };
  schedule();
  return {
    pollNow,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
    },
  };
}
