// Keeps the CRLs of crl_urls current while the gateway runs, without a bundle reload: each URL
// is fetched (If-None-Match with the last ETag), verified against the CAs of the current
// bundle, and swapped into the process's CRL store (runtime/revocation.ts), which moves its
// generation so every connection re-checks on its next request. A URL is fetched every
// `intervalMs`, or sooner when its CRL's nextUpdate comes first; past nextUpdate without a
// fresh copy, the CRL is stale and `--crl-stale open|closed` decides (runtime/revocation.ts).
import { type Crl, crlSignedBy, parseCrl, type SignedCrl, signedCrl } from '../bundle/crl.ts';
import { subjectNameDer } from '../cert/der.ts';
import { MAX_SIGNED_AHEAD_MS } from './bundle-floor.ts';
import { MAX_CRL_BYTES } from '../common/size-limits.ts';
import { CRL_ACCEPT_ENCODING, readDecoded } from './capped-read.ts';
import { MAX_REDIRECTS, outboundGet } from './outbound-get.ts';
import { crlFloorKey, crlStateKey, newerCrl } from './state-file.ts';
import { CRL_WORKER_MIN_BYTES, type CrlThread, crlThread, readCrlInWorker } from './crl-worker-client.ts';
import type { HandedCrlPath } from './cluster/crl-files.ts';
import type { TrustedCa } from './identity.ts';
import { type CrlFloor, type CrlStore, crlStore, type FetchedCrl } from './revocation.ts';
import { type SerialLookup, SerialTable } from './serial-table.ts';
import type { Snapshot } from './snapshot.ts';

export interface CrlFetcherOptions {
  snapshot: () => Snapshot;
  /** Longest wait between two fetches of one URL (default 300 s). */
  intervalMs?: number;
  /** Wait after a failed fetch (default min(interval, 30 s)). */
  retryMs?: number;
  timeoutMs?: number;
  /** A CRL larger than this is refused unread (default MAX_CRL_BYTES). */
  maxBytes?: number;
  store?: CrlStore;
  /** CRLs of this many bytes and more are read in a worker thread (default CRL_WORKER_MIN_BYTES). */
  workerMinBytes?: number;
  /** The thread large CRLs are read in (default: the process's one, runtime/crl-worker-client.ts). */
  thread?: CrlThread;
  /**
   * `taken` and `bytes`: the CRL an update fetched and took (serve --state-dir records it; a
   * cluster worker sends it to the others, with `issuer`, the DER of the CA it verified against,
   * so the primary verifies it too); `fromPeer`: the update took another worker's copy.
   */
  onEvent?: (event: {
    url: string;
    result: 'updated' | 'not_modified' | 'error';
    detail?: string;
    entries?: number;
    taken?: CrlFloor;
    bytes?: Buffer;
    issuer?: Buffer;
    fromPeer?: boolean;
  }) => void;
}

export interface CrlFetcher {
  /** Fetches every URL now (tests and start-up). */
  refreshAll(): Promise<void>;
  /**
   * The CRL another worker fetched from `url` (the URL itself, not as it is shown:
   * runtime/peer-floors.ts): verified and taken as a fetched one would be, when newer than the
   * list in use. A hand-off file (runtime/cluster/crl-files.ts: a large list) is read, and its
   * size and digest checked, in the CRL thread.
   */
  offer(url: string, bytes: Buffer | HandedCrlPath): void;
  stop(): void;
}

const CLOCK_TICK_MS = 1_000;

export function startCrlFetcher(opts: CrlFetcherOptions): CrlFetcher {
  const store = opts.store ?? crlStore;
  const interval = opts.intervalMs ?? 300_000;
  const retry = opts.retryMs ?? Math.min(interval, 30_000);
  const timeout = opts.timeoutMs ?? 10_000;
  const maxBytes = opts.maxBytes ?? MAX_CRL_BYTES;
  const workerMinBytes = opts.workerMinBytes ?? CRL_WORKER_MIN_BYTES;
  const thread = opts.thread ?? crlThread;
  // Keyed by the store's entry: a URL bound to another CA by a reload is a new entry, fetched at once.
  const due = new WeakMap<FetchedCrl, number>();
  const inFlight = new Map<FetchedCrl, Promise<void>>();
  let stopped = false;

  /**
   * Verifies the bytes in `blocks` (end to end, as readBlocks in runtime/capped-read.ts reads a
   * body) as the CRL of `crl` and puts it in use; throws Error with why not. `fromPeer`:
   * bytes another worker took (runtime/peer-floors.ts), taken only when newer than the list in
   * use, and not reported again (the worker that fetched them did). A CRL of `workerMinBytes` or
   * more is verified and walked in a worker thread (a promise then; it rejects with why not):
   * 1,000,000 entries held this thread, and every request, for seconds.
   * A peer's hand-off file (`blocks` names it) is read there too, checked against its size and digest.
   */
  function take(crl: FetchedCrl, blocks: readonly Uint8Array[] | HandedCrlPath, etag: string | null, fromPeer: boolean): Promise<void> | undefined {
    // Verified against the one CA the bundle binds to this URL: any other trusted CA's CRL
    // verifies too, and taken (even as the first list after a start) it would un-revoke what
    // the right CA revoked. The signature first, the entries only once it verifies: whoever
    // answers the URL cannot make the gateway walk a list the CA never signed.
    const cas = opts.snapshot().revocationCas();
    const bound = crl.issuer === null ? undefined : cas.find((ca) => ca.fingerprint === crl.issuer);
    if (bound === undefined) throw new RefusedCrl('the bundle being served binds no CA to this URL');
    const others = cas.filter((ca) => ca !== bound);
    // Everything of a large list off this thread, joining its blocks, its PEM decoding and its
    // signature's hash included (39 MB: ~100 ms to join, 64 MiB: ~80 ms to hash here before); its
    // bytes move to the thread and come back, joined, with the verdict.
    let size = 0;
    if (Array.isArray(blocks)) for (const b of blocks) size += b.byteLength;
    if (!Array.isArray(blocks) || size >= workerMinBytes)
      return readCrlInWorker(blocks, [bound.cert.raw, ...others.map((ca) => ca.cert.raw)], thread).then((read) => {
        if (read.status === 'refused') throw new RefusedCrl(read.message);
        if (read.status === 'unsigned') throw new RefusedCrl(notSignedBy(bound, read.signer < 1 ? undefined : others[read.signer - 1]));
        if (read.status !== 'read') throw new RefusedCrl(`internal error: the CRL thread answered ${read.status}`);
        const header = { thisUpdate: new Date(read.thisUpdate), nextUpdate: read.nextUpdate === null ? null : new Date(read.nextUpdate), number: read.number };
        const returned = Buffer.from(read.crl.buffer, read.crl.byteOffset, read.crl.byteLength);
        adopt(crl, bound, header, new SerialTable(read.serials), returned, etag, fromPeer);
      });
    const bytes = Buffer.concat(blocks as readonly Uint8Array[], size);
    let signed: SignedCrl;
    try {
      signed = signedCrl(bytes);
    } catch (err) {
      throw new RefusedCrl((err as Error).message);
    }
    if (!crlSignedBy(signed, bound.cert))
      throw new RefusedCrl(
        notSignedBy(
          bound,
          // Named for the message only: a CA whose subject is the CRL's issuer, not every CA's signature check.
          others.find((ca) => subjectNameDer(ca.cert.raw)?.equals(signed.issuer) === true && crlSignedBy(signed, ca.cert)),
        ),
      );
    let parsed: Crl;
    try {
      parsed = parseCrl(signed.der);
    } catch (err) {
      throw new RefusedCrl((err as Error).message);
    }
    adopt(crl, bound, parsed, new Set(parsed.serials), bytes, etag, fromPeer);
    return undefined;
  }

  /** Puts a verified CRL of `bound` in use at `crl` (checks of its times and replays first; throws RefusedCrl). */
  function adopt(crl: FetchedCrl, bound: TrustedCa, parsed: CrlHeader, serials: SerialLookup, bytes: Buffer, etag: string | null, fromPeer: boolean): void {
    if (parsed.nextUpdate !== null && parsed.nextUpdate.getTime() <= Date.now())
      throw new RefusedCrl(`it is past its nextUpdate (${parsed.nextUpdate.toISOString()})`);
    // Not yet valid (OpenSSL's CRL_NOT_YET_VALID). Taken, its thisUpdate would be the one to beat,
    // and every CRL the CA signs on a correct clock until then would be refused as older.
    if (parsed.thisUpdate.getTime() > Date.now() + MAX_SIGNED_AHEAD_MS)
      throw new RefusedCrl(
        `its thisUpdate (${parsed.thisUpdate.toISOString()}) is ahead of this gateway's clock (${new Date().toISOString()}): not yet valid; the CA's clock runs ahead, or this host's is behind`,
      );
    const taken: CrlFloor = { ca: bound.fingerprint, thisUpdate: parsed.thisUpdate.getTime(), number: parsed.number };
    // The same list again (a fetch without an ETag, a peer's copy of what is in use) changes
    // nothing: a peer's copy is dropped, and a fetched one is not reported again, so the other
    // workers of a cluster do not parse it once more (and answer with more of the same).
    const newer =
      crl.caFingerprint === null || crl.thisUpdate === null || newerCrl(taken, { ca: crl.caFingerprint, thisUpdate: crl.thisUpdate, number: crl.number });
    if (fromPeer && !newer) return;
    // Until a first CRL is taken, the newest one of the bound CA taken before this start
    // (--state-dir) is the one to beat (another CA's list says nothing about this one's numbers).
    const floor = crl.caFingerprint === null ? store.floors.get(crlFloorKey(crlStateKey(crl.url), bound.fingerprint)) : undefined;
    const beaten: InUse =
      floor === undefined
        ? { ...crl, what: 'the CRL in use' }
        : {
            caFingerprint: floor.ca,
            thisUpdate: floor.thisUpdate,
            number: floor.number,
            what: 'the last CRL taken from this URL before this start (--state-dir)',
          };
    const replayed = olderThanInUse(beaten, parsed);
    if (replayed !== null) throw new RefusedCrl(replayed);
    crl.caFingerprint = bound.fingerprint;
    crl.serials = serials;
    crl.nextUpdate = parsed.nextUpdate?.getTime() ?? null;
    crl.thisUpdate = taken.thisUpdate;
    crl.number = parsed.number;
    // A peer's copy carries no ETag: the next fetch asks for the whole list.
    crl.etag = etag;
    crl.fetchedAt = Date.now();
    crl.lastError = null;
    crl.refused = false;
    crl.stale = false;
    store.changed();
    opts.onEvent?.({
      url: crl.url,
      result: 'updated',
      entries: serials.size,
      ...(fromPeer ? { fromPeer } : newer ? { taken, bytes, issuer: bound.cert.raw } : {}),
    });
  }

  async function fetchOne(crl: FetchedCrl): Promise<void> {
    const now = Date.now();
    try {
      // Compressed if the server will (a CRL's repeated dates and DER framing compress, its
      // serials hardly), and what comes back is decoded within the ceiling of a raw CRL
      // (runtime/capped-read.ts readDecoded): servers that compress unasked are read too.
      const headers: Record<string, string> = { 'accept-encoding': CRL_ACCEPT_ENCODING };
      if (crl.etag !== null) headers['if-none-match'] = crl.etag;
      // Redirects followed within the policy of runtime/outbound-get.ts (section 49): CDNs
      // redirect CRL distribution points, but not to this host's ports or cloud metadata.
      const { res } = await outboundGet(crl.url, {
        headers,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
        redirects: MAX_REDIRECTS,
      });
      if (res.statusCode !== 200) await res.body.dump();
      if (res.statusCode === 304 && crl.fetchedAt !== null) {
        crl.fetchedAt = Date.now();
        crl.lastError = null;
        crl.refused = false;
        opts.onEvent?.({ url: crl.url, result: 'not_modified' });
        due.set(crl, nextFetch(crl, interval));
        return;
      }
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
      const etag = res.headers.etag;
      await take(crl, await readDecoded(res.body, res.headers['content-encoding'], maxBytes), typeof etag === 'string' ? etag : null, false);
      due.set(crl, nextFetch(crl, interval));
    } catch (err) {
      crl.lastError = `${(err as Error).message} (at ${new Date(now).toISOString()})`;
      // A CRL came and was not taken: /health says "refused" while no valid list is in use.
      crl.refused = err instanceof RefusedCrl;
      opts.onEvent?.({ url: crl.url, result: 'error', detail: crl.lastError });
      due.set(crl, Date.now() + retry);
    }
  }

  function fetchIfIdle(crl: FetchedCrl): Promise<void> {
    let running = inFlight.get(crl);
    if (running === undefined) {
      running = fetchOne(crl).finally(() => inFlight.delete(crl));
      inFlight.set(crl, running);
    }
    return running;
  }

  /** Once a second: fetch what is due, and mark lists that just went past nextUpdate stale. */
  function tick(): void {
    if (stopped) return;
    const now = Date.now();
    for (const crl of store.byUrl.values()) {
      const stale = crl.fetchedAt === null || (crl.nextUpdate !== null && now > crl.nextUpdate);
      if (stale !== crl.stale) {
        crl.stale = stale;
        store.changed();
      }
      if ((due.get(crl) ?? 0) <= now) void fetchIfIdle(crl);
    }
  }
  const timer = setInterval(tick, CLOCK_TICK_MS);
  timer.unref();
  tick();

  return {
    async refreshAll() {
      await Promise.all([...store.byUrl.values()].map((crl) => fetchIfIdle(crl)));
    },
    offer(url, bytes) {
      for (const crl of store.byUrl.values()) {
        // The exact URL: two crl_urls may differ only in what redaction hides (?part=1, ?part=2).
        if (crl.url !== url) continue;
        // Not for this worker's bundle (it has not read the one that trusts that CA yet, or has
        // moved past it): its own fetches decide, as before.
        const notTaken = (err: Error) => opts.onEvent?.({ url: crl.url, result: 'error', detail: `another worker's copy: ${err.message}`, fromPeer: true });
        try {
          take(crl, Buffer.isBuffer(bytes) ? [bytes] : bytes, null, true)?.catch(notTaken);
        } catch (err) {
          notTaken(err as Error);
        }
      }
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/** What is checked of a verified CRL before it is taken (its entries aside). */
type CrlHeader = Pick<Crl, 'thisUpdate' | 'nextUpdate' | 'number'>;

/** Why the bound CA's signature refuses a CRL: `other`, the CA whose signature verifies it, if one does. */
function notSignedBy(bound: TrustedCa, other: TrustedCa | undefined): string {
  return other === undefined
    ? `its signature does not verify against the CA this URL is bound to (sha256:${short(bound.fingerprint)})`
    : `it is signed by another CA (sha256:${short(other.fingerprint)}) than the one this URL is bound to (sha256:${short(bound.fingerprint)}; crl_urls issuer)`;
}

/** What a fetched CRL must not be older than: the CRL in use, or the floor of --state-dir. */
type InUse = Pick<FetchedCrl, 'caFingerprint' | 'thisUpdate' | 'number'> & { what: string };

/** Why a CRL came from the URL and was not taken: refused, not unreachable (/health: runtime/pki-status.ts). */
class RefusedCrl extends Error {}

const short = (fingerprint: string) => `${fingerprint.slice(0, 16)}...`;

/**
 * Why a CRL the bound CA signed may not replace the one in use at this URL, or null. Every CRL
 * the CA ever signed verifies, so whoever answers the URL (a crl_url is plain HTTP) could
 * otherwise un-revoke with a copy from before the revocation that is not past its nextUpdate yet.
 */
function olderThanInUse(inUse: InUse, next: CrlHeader): string | null {
  if (inUse.caFingerprint === null || inUse.thisUpdate === null) return null;
  const older = next.thisUpdate.getTime() < inUse.thisUpdate;
  const lowerNumber = next.number !== null && inUse.number !== null && compareHex(next.number, inUse.number) < 0;
  if (older || lowerNumber)
    return `it is older than ${inUse.what} (thisUpdate ${next.thisUpdate.toISOString()}, cRLNumber ${next.number ?? 'none'}; ${inUse.what === 'the CRL in use' ? 'in use' : 'taken before'}: ${new Date(inUse.thisUpdate).toISOString()}, ${inUse.number ?? 'none'}): a replayed copy`;
  return null;
}

/** Two normalised hex numbers compared as numbers. */
function compareHex(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

/** The next fetch: after the interval, or at nextUpdate when that comes first (never in the past). */
function nextFetch(crl: FetchedCrl, interval: number): number {
  const now = Date.now();
  const byInterval = now + interval;
  if (crl.nextUpdate === null) return byInterval;
  return Math.max(now + CLOCK_TICK_MS, Math.min(byInterval, crl.nextUpdate));
}
