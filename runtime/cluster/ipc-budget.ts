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
// checked field by field, not kept, not spread into /health), and its sender is killed, so the
// cost it can impose is one parse per worker life, plus the replacement's start. Measured:
// JSON.parse of a 16 MiB line costs the primary's loop ~40-80 ms (docs/security.md section 64).
import type { ToPrimary } from './lease-protocol.ts';

/** An answer to the primary's query (/metrics: every series of a worker's registries) may be this large (bytes of JSON, roughly). */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;
/** Any other message: a CRL under 1 MiB as base64 with its CA (crl-report.ts) is the largest, ~1.5 MB. */
export const MAX_MESSAGE_BYTES = 2 * 1024 * 1024;
/**
 * Messages a worker may send in one second. A worker sends a lease request per key whose lease
 * ran out: at ~20,000 requests a second (one core's most), each of a new key, it sends ~20,000.
 */
export const MAX_MESSAGES_PER_SECOND = 50_000;
/**
 * Reports of a bundle or CRL taken, per second: each costs the primary a signature check, a CRL's
 * a file read and a hash of up to the CRL ceiling. Over it they are dropped: every worker follows
 * the bundle source and the crl_urls itself, so a dropped report only delays the others' floor.
 */
export const MAX_TAKEN_PER_SECOND = 16;
/** Malformed messages (ipc-check.ts) a worker may send in its life before it is restarted: mtlsgate's own worker sends none. */
export const MAX_MALFORMED = 16;

/**
 * Whether `m`, written as JSON, would take more than `limit` bytes, give or take the separators:
 * walked with a stack of its own (a message nested 1,000,000 deep recurses nowhere) and given up
 * as soon as the count passes `limit`, so it costs at most `limit`'s worth of work, never the message's.
 */
export function jsonSizeOver(m: unknown, limit: number): boolean {
  let size = 0;
  const stack: unknown[] = [m];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') size += v.length + 2;
    else if (v === null || typeof v !== 'object') size += 8;
    else if (Array.isArray(v)) {
      size += 2 + v.length;
      for (let i = 0; i < v.length && size <= limit; i++) stack.push(v[i]);
    } else {
      size += 2;
      for (const k in v) {
        size += k.length + 4;
        stack.push((v as Record<string, unknown>)[k]);
        if (size > limit) break;
      }
    }
    if (size > limit) return true;
  }
  return false;
}

/** The largest message of `type` the primary acts on. */
export function sizeBound(type: string): number {
  return type === ('mtlsgate:answer' satisfies ToPrimary['type']) ? MAX_ANSWER_BYTES : MAX_MESSAGE_BYTES;
}

/** Per worker, what it sent in the current second (counts cleared each second by one timer). */
export class WorkerMessageBudget {
  private messages = new Map<number, number>();
  private taken = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly perSecond = MAX_MESSAGES_PER_SECOND,
    private readonly takenPerSecond = MAX_TAKEN_PER_SECOND,
  ) {
    this.timer = setInterval(() => {
      this.messages.clear();
      this.taken.clear();
    }, 1_000).unref();
  }

  /** Counts a message of worker `id`: false once it sent more than its share this second. */
  admit(id: number): boolean {
    const n = (this.messages.get(id) ?? 0) + 1;
    this.messages.set(id, n);
    return n <= this.perSecond;
  }

  /** Counts a report of worker `id`: false once it sent more than its share this second. */
  admitTaken(id: number): boolean {
    const n = (this.taken.get(id) ?? 0) + 1;
    this.taken.set(id, n);
    return n <= this.takenPerSecond;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
