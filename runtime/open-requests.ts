// Requests still open after they were admitted: a proxied request whose answer is still coming
// (a gRPC stream, server-sent events, a long download, a slow upstream) and a WebSocket tunnel.
// Each was decided once, under the bundle and the CRLs current when it arrived. While it stays
// open it is decided again (same request, same certificate; limits not counted again) when a
// reload installs another bundle, when a fetched CRL changes, and every few seconds anyway (a key
// or certificate that expires while it is open); one now refused is cut (HttpExchange.revoked).
//
// The request path pays for the list, not for the checks: an exchange is its own list node
// (linked on proxying, unlinked when its response closes: a few field writes, no allocation),
// and only the timer's walk, twice a second while anything is open, looks at what it holds.
import type { Refusal } from './errors.ts';
import { crlStore } from './revocation.ts';
import type { Snapshot } from './snapshot.ts';
import type { StageIdentity } from './stages/context.ts';
import { decide } from './stages/decide.ts';

/** How often open requests look for a new bundle or CRL. */
const RECHECK_MS = 500;
/** And how often each is decided again regardless (expiry of its key or certificate). */
export const REDECIDE_EVERY_MS = 5_000;

/** What the list holds (runtime/exchange.ts's HttpExchange): the request as decided, and its links. */
export interface OpenRequest {
  openPrev: OpenRequest | null;
  openNext: OpenRequest | null;
  /** The bundle it was last decided under (the stages' context's: the one current at arrival, at first). */
  snapshot: Snapshot;
  /** crlStore.generation when it was last decided. */
  decidedCrl: number;
  /** ms since the epoch when it was last decided (the context's `now`: its arrival, at first). */
  now: number;
  readonly method: string;
  readonly host: string;
  readonly rawPath: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly remote: string;
  readonly identity: StageIdentity | null;
  /** Decided again and refused: cut it. */
  revoked(refusal: Refusal): void;
}

export class OpenRequests {
  private head: OpenRequest | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly snapshot: () => Snapshot) {}

  add(r: OpenRequest): void {
    r.openPrev = null;
    r.openNext = this.head;
    if (this.head !== null) this.head.openPrev = r;
    this.head = r;
    if (this.timer === null) {
      this.timer = setInterval(() => this.recheck(), RECHECK_MS);
      this.timer.unref();
    }
  }

  /** Takes `r` off the list; nothing for one that is not on it (a refused request). */
  remove(r: OpenRequest): void {
    const prev = r.openPrev;
    const next = r.openNext;
    if (prev !== null) prev.openNext = next;
    else if (this.head === r) this.head = next;
    else return;
    if (next !== null) next.openPrev = prev;
    r.openPrev = null;
    r.openNext = null;
  }

  /** Decides open requests again (a new bundle or CRL, or their turn came); cuts those now refused. */
  recheck(): void {
    if (this.head === null) {
      clearInterval(this.timer!);
      this.timer = null;
      return;
    }
    const current = this.snapshot();
    const generation = crlStore.generation;
    const now = Date.now();
    // Cut after the walk: cutting one can close others (requests pipelined on its connection).
    let refused: [OpenRequest, Refusal][] | null = null;
    for (let r: OpenRequest | null = this.head; r !== null; r = r.openNext) {
      if (r.snapshot === current && r.decidedCrl === generation && now - r.now < REDECIDE_EVERY_MS) continue;
      r.snapshot = current;
      r.decidedCrl = generation;
      r.now = now;
      const d = decide(current, { method: r.method, host: r.host, path: r.rawPath, headers: r.headers, remote: r.remote }, r.identity, now);
      if (d.refusal !== null) (refused ??= []).push([r, d.refusal]);
    }
    if (refused === null) return;
    for (const [r, refusal] of refused) {
      this.remove(r);
      r.revoked(refusal);
    }
  }
}
