// The request as the stages see it: no socket, no server, no HTTP version. A transport
// adapter (runtime/http1.ts for node:https) fills the request part once per request; the
// stages fill in what they establish. `decide` (runtime/stages/decide.ts) builds one from a
// synthetic request, so the same stages answer "would this request pass?" without a network.
import type { ClientIdentity } from '../identity.ts';
import type { Limiter } from '../limits/limiter.ts';
import type { PreparedApi } from '../prepared-api.ts';
import type { PreparedKey } from '../prepared-key.ts';
import type { Snapshot } from '../snapshot.ts';

/** Request headers, lower-case names (node:http's IncomingHttpHeaders has this shape). */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** What the stages ask of a client identity (runtime/identity.ts's ClientIdentity has it). */
export type StageIdentity = ClientIdentity;

export class RequestContext {
  /** Set by the route stage. */
  api: PreparedApi | null = null;
  /** The normalised request path (no query string), set by the route stage. */
  path = '';
  /** Set by the authenticate stage (null on a keyless API). */
  key: PreparedKey | null = null;
  /** Headers for the client's response whatever the outcome (rate-limit headers), or null. */
  responseHeaders: Record<string, string> | null = null;
  /** Set by the access stage when the key's allowed_urls restrict methods: drop method-override headers. */
  stripMethodOverride = false;
  /** The name of the stage that refused the request, or null. */
  refusedBy: string | null = null;
  /**
   * A described request (decide) may state its token by SHA-256 (hex) instead of carrying it
   * in the auth header: access tests name a key's token without holding the secret. The
   * authenticate stage then treats the request as bearing that token. Transports never set it.
   */
  tokenSha256: string | null = null;

  constructor(
    /**
     * The bundle current when the request arrived, used by every stage. Once admitted, a request
     * still open is decided again under the bundle current then (runtime/open-requests.ts moves it).
     */
    public snapshot: Snapshot,
    /** The client's leaf certificate (computed once per TLS connection), or null. */
    readonly identity: StageIdentity | null,
    /** ms since the epoch: every time check of this request uses this instant (moved with `snapshot`). */
    public now: number,
    readonly method: string,
    /** Normalised host: lower case, no port, no root dot (runtime/route.ts hostOf). */
    readonly host: string,
    /** The request path as sent, without the query string. */
    readonly rawPath: string,
    readonly headers: RequestHeaders,
    /** The client's address ("" when unknown). */
    readonly remote: string,
    /** Consulted by the limits stage; null: limits are not applied. */
    readonly limiter: Limiter | null,
  ) {}
}
