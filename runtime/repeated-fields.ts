// Header fields sent twice, read the same over HTTP/1.1 and HTTP/2 (docs/security.md sections 45,
// 45b and 51). node:http (joinDuplicateHeaders, runtime/http1.ts) joins every copy with ", ";
// node:http2 keeps the first copy of the fields it calls single-valued. So a field sent twice
// reached the upstream as "a, b" over HTTP/1.1 and as "a" over HTTP/2. Every field of node:http2's
// single-valued list (Node 20's kSingleValueHeaders) is one of these (`content-length` and `host`
// nghttp2 refuses itself):
// - a field whose definition holds one value, not a list (RFC 9110 5.3: a sender must not send
//   it twice) sent twice is refused on both transports (request.field_repeated), as Envoy refuses
//   two Content-Length: those that mean something to the upstream (`content-type`, `range`, the
//   date conditionals, `max-forwards`, `user-agent`, `referer`, `from`, `date`, `content-range`,
//   `content-location`, the CORS preflight's method...) and the response fields a request has no
//   use for (`etag`, `location`...), which an upstream may still read;
// - a list field node:http2 takes for single-valued (`if-match`, `if-none-match`,
//   `content-encoding`, `content-language`) and the credentials (`authorization`,
//   `proxy-authorization`, which auth.auth_field_repeated then refuses) are joined over HTTP/2
//   as over HTTP/1.1.
// The walk costs per field a test of its length against a bit mask of the sets' lengths; only a
// field of one of those lengths has its slot computed (two character reads) and its name
// compared to the slot's.
import type { IncomingHttpHeaders } from 'node:http';

/** Fields that hold one value, refused when sent twice (any values). */
const SINGLE = [
  'content-type',
  'range',
  'if-range',
  'if-modified-since',
  'if-unmodified-since',
  'max-forwards',
  'user-agent',
  'referer',
  'from',
  'date',
  'content-location',
  'content-range',
  'content-md5',
  'access-control-request-method',
  'dnt',
  'upgrade-insecure-requests',
  // Response fields: no use in a request, but single-valued all the same.
  'age',
  'etag',
  'expires',
  'last-modified',
  'location',
  'retry-after',
  'access-control-allow-credentials',
  'access-control-max-age',
  'tk',
  'x-content-type-options',
] as const;
/** Fields node:http2 keeps the first copy of, joined with ", " as node:http joins them. */
const JOINED_OVER_HTTP2 = ['authorization', 'proxy-authorization', 'if-match', 'if-none-match', 'content-encoding', 'content-language'] as const;

/**
 * node:http2's single-valued fields (Node 20's kSingleValueHeaders, the pseudo-headers aside):
 * those above and the two nghttp2 refuses twice itself. Answers use it too
 * (runtime/proxy-headers.ts): node:http2 throws on an array for any of them.
 */
export const ONE_VALUE_OVER_HTTP2: ReadonlySet<string> = new Set([...SINGLE, ...JOINED_OVER_HTTP2, 'content-length', 'host']);

const SLOTS = 64;
/** The longest name of the sets (access-control-allow-credentials). */
const LONGEST = 32;
/** A field name's slot, letter case ignored: length, first and last character. */
function slotOf(name: string): number {
  const n = name.length;
  return (n * 2 + (name.charCodeAt(n - 1) | 32) * 21 + (name.charCodeAt(0) | 32) * 27) & (SLOTS - 1);
}
/** Bit n mod 32 set: some name of the sets has that length (32 and 0 share bit 0: no name is empty). */
let LENGTHS = 0;
/** The name in each slot (lower case), and its bit for a SINGLE name (0 for a joined one). */
const SLOT_NAME: (string | undefined)[] = new Array(SLOTS).fill(undefined);
const SLOT_BIT = new Uint32Array(SLOTS);
for (const [i, name] of [...SINGLE, ...JOINED_OVER_HTTP2].entries()) {
  const slot = slotOf(name);
  // A collision would hide a name: the hash was chosen so that these 32 have a slot each.
  if (SLOT_NAME[slot] !== undefined) throw new Error(`repeated-fields: ${name} and ${SLOT_NAME[slot]} share slot ${slot}`);
  SLOT_NAME[slot] = name;
  LENGTHS |= 1 << name.length;
  if (i < SINGLE.length) SLOT_BIT[slot] = (1 << i) >>> 0;
}

/** `name` is `lower` in any letter case (HTTP/1.1 field names keep the client's case in rawHeaders). */
function sameName(name: string, lower: string): boolean {
  if (name === lower) return true;
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) if ((name.charCodeAt(i) | 32) !== lower.charCodeAt(i)) return false;
  return true;
}

/**
 * Scratch of repeatedSingleField: per slot, the index in the raw list of the first field there
 * (meaningful only where that call's `seen` has the slot's bit). Module-level: the call is
 * synchronous and allocates nothing.
 */
const FIRST_AT = new Int32Array(SLOTS);

/**
 * HTTP/1.1: whether a SINGLE field came more than once (node:http joined the copies). Names are
 * compared only at a second field in a slot: User-Agent, on nearly every request, is not
 * compared letter by letter (that compare was most of the walk's cost, section 51).
 */
export function repeatedSingleField(raw: readonly string[]): boolean {
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    // Many fields stop here: no name of the sets has their length (>>> takes the length mod 32).
    if (((LENGTHS >>> name.length) & 1) === 0 || name.length > LONGEST) continue;
    const slot = slotOf(name);
    const bit = SLOT_BIT[slot];
    if (bit === 0) continue;
    if ((seen & bit) === 0) {
      seen |= bit;
      FIRST_AT[slot] = i;
      continue;
    }
    const lower = SLOT_NAME[slot]!;
    if (!sameName(name, lower)) continue;
    if (sameName(raw[FIRST_AT[slot]], lower)) return true;
    FIRST_AT[slot] = i; // the first was another name of this slot: this one is the first
  }
  return false;
}

/**
 * HTTP/2: joins the later copies of a JOINED_OVER_HTTP2 field into `headers` as node:http would,
 * and says whether a SINGLE field came more than once. A later copy equal to what is kept so
 * far is left out: it says the same thing to every reader.
 */
export function joinRepeatedFields(headers: IncomingHttpHeaders, raw: readonly string[]): boolean {
  let seen = 0;
  // The pseudo-headers come first (RFC 9113 8.3; nghttp2 refuses one after a field) and are
  // none of these: skipped on their first character, not hashed (:method and :authority have
  // the lengths of referer and user-agent).
  let start = 0;
  while (start < raw.length && raw[start].charCodeAt(0) === 58) start += 2;
  for (let i = start; i < raw.length; i += 2) {
    const name = raw[i];
    if (((LENGTHS >>> name.length) & 1) === 0 || name.length > LONGEST) continue;
    const slot = slotOf(name);
    if (name !== SLOT_NAME[slot]) continue;
    const bit = SLOT_BIT[slot];
    if (bit !== 0) {
      if ((seen & bit) !== 0) return true;
      seen |= bit;
      continue;
    }
    // The first copy is the very value node kept; a later one differs from it (or from the join so far).
    const kept = headers[name];
    if (kept !== raw[i + 1]) headers[name] = `${kept}, ${raw[i + 1]}`;
  }
  return false;
}
