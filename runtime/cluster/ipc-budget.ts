// What the primary of `serve --workers N` takes from one worker: messages of a bounded size, at a
// bounded rate (docs/security.md section 64). A worker runs this very code; one that sends more
// is buggy or taken over through its request path, and is restarted.
//
// Where the bound applies, honestly: node:cluster's channel parses a message before any mtlsgate
// code sees it. In its default 'json' serialization (lib/internal/child_process/serialization.js)
// the primary buffers a worker's bytes up to a newline and JSON.parses the whole line; in
// 'advanced' it buffers as many bytes as a message's 4-byte header states (up to 4 GiB) and
// deserializes them. Neither has a limit or a hook before the parse, so switching gains no
// bound (and v8.deserialize of what a hostile worker wrote is more surface than JSON.parse).
// What can be bounded is what follows: a message over the size is acted on by nothing (not
// checked field by field, not kept, not spread into /health), and its sender is killed, so
// the cost a worker can impose is what it sends within the per-second budget, plus one message
// over it, per worker life. What a parse costs is mostly the count of values (JSON.parse of
// 16.6 MiB of small objects: ~350 ms; of one 16 MiB string: ~25 ms), so both are bounded.
import type { ToPrimary } from './lease-protocol.ts';

export interface MessageBound {
  /** Bytes of its JSON, roughly (strings, keys, 8 a number). */
  bytes: number;
  /** Values in it: strings, numbers, objects, arrays, ... */
  values: number;
}

/** Any message but an answer the primary asked for: a CRL under 1 MiB as base64 (crl-report.ts) is the largest, ~1.5 MB; a lease request's closes (2 * MAX_LEASE numbers) the most values. */
export const MESSAGE_BOUND: MessageBound = { bytes: 2 * 1024 * 1024, values: 10_000 };
/** An answer to a query the primary sent (/metrics: every series of a worker's registries). */
export const ANSWER_BOUND: MessageBound = { bytes: 16 * 1024 * 1024, values: 2_000_000 };
/**
 * What a worker may send in one second, answers the primary asked for aside. A worker sends a
 * lease request per key whose lease ran out: at ~20,000 requests a second (one core's most),
 * each of a new key, ~20,000 messages of ~15 values and ~150 bytes: 300,000 values, 3 MB.
 * The bytes leave room for ~40 CRLs under 1 MiB reported in one second.
 */
export const PER_SECOND: MessageBound = { bytes: 64 * 1024 * 1024, values: 600_000 };
/**
 * Reports of a bundle or CRL taken, per second: each costs the primary a signature check, a CRL's
 * a file read and a hash of up to the CRL ceiling. Twice the CRL URLs the primary keeps (64,
 * section 49): a worker reporting every list it holds at once stays under it. Over it they are dropped: every worker follows
 * the bundle source and the crl_urls itself, so a dropped report only delays the others' floor.
 */
export const MAX_TAKEN_PER_SECOND = 128;
/** Malformed messages (ipc-check.ts) a worker may send in its life before it is restarted: mtlsgate's own worker sends none. */
export const MAX_MALFORMED = 16;

/**
 * The size of `m` as JSON (MessageBound), or null once it passes `bound`: walked with a stack of
 * its own (a message nested 1,000,000 deep recurses nowhere) and given up as soon as a count
 * passes, so it costs at most the bound's worth of work, never the message's.
 */
export function measure(m: unknown, bound: MessageBound): MessageBound | null {
  let bytes = 0;
  let values = 0;
  const stack: unknown[] = [m];
  while (stack.length > 0) {
    const v = stack.pop();
    values++;
    if (typeof v === 'string') bytes += v.length + 2;
    else if (v === null || typeof v !== 'object') bytes += 8;
    else if (Array.isArray(v)) {
      bytes += 2 + v.length;
      if (values + v.length > bound.values) return null;
      for (let i = 0; i < v.length; i++) stack.push(v[i]);
    } else {
      bytes += 2;
      for (const k in v) {
        bytes += k.length + 4;
        if (values + stack.length > bound.values || bytes > bound.bytes) return null;
        stack.push((v as Record<string, unknown>)[k]);
      }
    }
    if (bytes > bound.bytes || values > bound.values) return null;
  }
  return { bytes, values };
}

/** Per worker, what it sent in the current second (counts cleared each second by one timer). */
export class WorkerMessageBudget {
  private sent = new Map<number, MessageBound & { taken: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly perSecond = PER_SECOND) {
    this.timer = setInterval(() => this.sent.clear(), 1_000).unref();
  }

  /** Counts a message of worker `id` of `size`: what it went over this second, or null. */
  spend(id: number, size: MessageBound): string | null {
    let s = this.sent.get(id);
    if (s === undefined) this.sent.set(id, (s = { bytes: 0, values: 0, taken: 0 }));
    s.bytes += size.bytes;
    s.values += size.values;
    if (s.values > this.perSecond.values) return `more than ${this.perSecond.values} values in a second`;
    return s.bytes > this.perSecond.bytes ? `more than ${this.perSecond.bytes} bytes in a second` : null;
  }

  /** Counts a report of worker `id`: false once it sent more than MAX_TAKEN_PER_SECOND this second. */
  admitTaken(id: number): boolean {
    const s = this.sent.get(id);
    return s === undefined || ++s.taken <= MAX_TAKEN_PER_SECOND;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** The bound of a message of `type`: an answer's when it answers a query the primary is waiting on. */
export function boundOf(type: string, solicited: boolean): MessageBound {
  return type === ('mtlsgate:answer' satisfies ToPrimary['type']) && solicited ? ANSWER_BOUND : MESSAGE_BOUND;
}
