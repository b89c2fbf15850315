// A key of the bundle as the request path uses it (expiry as a number, access rights as a Map,
// allowed_urls patterns compiled), made on the key's first request from its definition; and
// where a snapshot finds those definitions (a parsed bundle here; runtime/compact-keys.ts and
// runtime/sharded-keys.ts for the other forms).
import { keyExpiry, keyPattern, type PatternCache, type UrlPattern } from '../bundle/checks.ts';
import type { BundleContent, BundleKey } from '../bundle/types.ts';

interface PreparedUrl {
  readonly pattern: UrlPattern;
  /** null = every method. */
  readonly methods: ReadonlySet<string> | null;
}

export interface PreparedKey {
  readonly def: BundleKey;
  readonly id: string;
  /** ms since the epoch; Infinity = never. */
  readonly expiresAt: number;
  /** api id -> null (the whole API) or the allowed URLs. */
  readonly rights: ReadonlyMap<string, readonly PreparedUrl[] | null>;
  /** Has a rate limit or quota: the limiter is consulted. */
  readonly limited: boolean;
}

export function prepareKey(key: BundleKey, cache: PatternCache): PreparedKey {
  const rights = new Map<string, PreparedUrl[] | null>();
  for (const [apiId, right] of Object.entries(key.access_rights)) {
    rights.set(
      apiId,
      right.allowed_urls === null
        ? null
        : right.allowed_urls.map((allowed, i) => ({
            pattern: keyPattern(cache, key, apiId, i, allowed.url),
            methods: allowed.methods.length === 0 ? null : new Set(allowed.methods.map((m) => m.toUpperCase())),
          })),
    );
  }
  return { def: key, id: key.id, expiresAt: keyExpiry(key), rights, limited: key.rate !== null || key.quota !== null };
}

/** Where a snapshot finds key definitions: a parsed bundle, or a compact one from the worker. */
export interface KeySource {
  key(id: string): BundleKey | undefined;
  keyIdByCert(fingerprint: string): string | undefined;
  keyIdByToken(sha256Hex: string): string | undefined;
}

export class ParsedKeys implements KeySource {
  constructor(private readonly content: BundleContent) {}

  key(id: string): BundleKey | undefined {
    return Object.hasOwn(this.content.keys, id) ? this.content.keys[id] : undefined;
  }

  keyIdByCert(fingerprint: string): string | undefined {
    const certs = this.content.index.certs;
    return Object.hasOwn(certs, fingerprint) ? (certs[fingerprint].key ?? undefined) : undefined;
  }

  keyIdByToken(sha256Hex: string): string | undefined {
    const tokens = this.content.index.tokens;
    return Object.hasOwn(tokens, sha256Hex) ? tokens[sha256Hex] : undefined;
  }
}
