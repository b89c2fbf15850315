// What the admin listener says about certificates: expiry (how many of the config's pinned,
// key-bound and CA certificates expire within 7 and 30 days, the soonest; a list of the N
// soonest with who names each) and revocation (each crl_url's state, the stale policy). Series
// are bounded: a fixed set for expiry whatever the number of keys, one per crl_url.
import { Gauge, type Registry } from 'prom-client';
import type { CrlStore } from './revocation.ts';
import type { ExpiryList } from './expiry-list.ts';
import type { Snapshot } from './snapshot.ts';

const DAY_S = 86_400;

export function expiryCounts(expiry: ExpiryList, nowS: number): { expired: number; within7d: number; within30d: number; soonest: number | null } {
  const expired = expiry.countUpTo(nowS);
  const next = expiry.after(nowS, 1);
  return {
    expired,
    within7d: expiry.countUpTo(nowS + 7 * DAY_S) - expired,
    within30d: expiry.countUpTo(nowS + 30 * DAY_S) - expired,
    soonest: next.length > 0 ? next[0].time : null,
  };
}

export interface ExpiringCertificate {
  sha256: string;
  not_after: string;
  /** The key the certificate identifies (bound to it, or the one key matched under this CA), or null. */
  key: string | null;
  /** Every key it identifies: its bound key, or (a CA) the keys whose certificate_match names it as issuer; at most KEYS_LISTED. */
  keys: string[];
  /** How many keys it identifies in all (more than `keys` holds when over KEYS_LISTED). */
  keys_total: number;
  /** APIs that pin it, or (a CA) trust it, and the APIs the keys listed have rights on; sorted. */
  apis: string[];
}

/** Keys named per entry: a CA can issue for 100,000 subject-matched keys, and the list is a page, not a dump. */
const KEYS_LISTED = 20;

/** The `limit` soonest-expiring certificates not yet expired (expired ones too when `includeExpired`). */
export function soonestExpiring(snapshot: Snapshot, limit: number, nowS: number, includeExpired = false): ExpiringCertificate[] {
  return snapshot.expiry.after(includeExpired ? Number.NEGATIVE_INFINITY : nowS, limit).map(({ time, fingerprint }) => {
    const names = snapshot.namesOf(fingerprint);
    const all = names.key !== null ? [names.key] : snapshot.keysMatchedUnder(fingerprint);
    const keys = all.slice(0, KEYS_LISTED);
    const apis = new Set(names.apis);
    for (const id of keys) for (const api of snapshot.key(id)?.rights.keys() ?? []) apis.add(api);
    return {
      sha256: fingerprint,
      not_after: new Date(time * 1000).toISOString(),
      key: all.length === 1 ? all[0] : null,
      keys,
      keys_total: all.length,
      apis: [...apis].sort(),
    };
  });
}

export interface RevocationHealth {
  stale_policy: 'open' | 'closed';
  status: 'ok' | 'stale';
  /**
   * fresh: a valid list is in use; stale: none is (never fetched, or past its nextUpdate) and
   * the last fetch failed or brought nothing; refused: none is, and the last fetch brought a
   * CRL that was refused (signed by a CA not bound to the URL, replayed, not yet valid...).
   */
  crl_urls: {
    url: string;
    state: 'fresh' | 'stale' | 'refused';
    entries: number;
    next_update: string | null;
    fetched_at: string | null;
    last_error: string | null;
  }[];
}

/** Query strings and userinfo stay out of /health and /metrics (a presigned URL is a secret). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    if (u.search !== '') u.search = '?…';
    return u.toString();
  } catch {
    return url;
  }
}

export function revocationHealth(store: CrlStore): RevocationHealth {
  const urls = [...store.byUrl.values()].map((c) => ({
    url: redactUrl(c.url),
    state: c.stale ? (c.refused ? ('refused' as const) : ('stale' as const)) : ('fresh' as const),
    entries: c.serials.size,
    next_update: c.nextUpdate === null ? null : new Date(c.nextUpdate).toISOString(),
    fetched_at: c.fetchedAt === null ? null : new Date(c.fetchedAt).toISOString(),
    last_error: c.lastError,
  }));
  return { stale_policy: store.policy, status: store.anyStale() ? 'stale' : 'ok', crl_urls: urls };
}

/** Registers the certificate gauges on `registry`; they read the current snapshot at scrape time. */
export function registerPkiMetrics(registry: Registry, snapshot: () => Snapshot, store: CrlStore): void {
  const registers = [registry];
  new Gauge({
    name: 'mtlsgate_certificates_expiring',
    help: 'Certificates the config names by PEM (pinned, bound to a key, or a CA) expiring within the window (7d, 30d), or already expired',
    labelNames: ['within'],
    registers,
    collect() {
      const c = expiryCounts(snapshot().expiry, Date.now() / 1000);
      this.labels('7d').set(c.within7d);
      this.labels('30d').set(c.within30d);
      this.labels('expired').set(c.expired);
    },
  });
  new Gauge({
    name: 'mtlsgate_certificate_soonest_expiry_timestamp_seconds',
    help: 'notAfter of the certificate that expires first among those not yet expired (absent when none)',
    registers,
    collect() {
      this.reset();
      const soonest = expiryCounts(snapshot().expiry, Date.now() / 1000).soonest;
      if (soonest !== null) this.set(soonest);
    },
  });
  new Gauge({
    name: 'mtlsgate_crl_stale',
    help: 'A crl_url whose CRL is past its nextUpdate or was never fetched (1), or fresh (0); what happens then is mtlsgate_crl_fail_closed',
    labelNames: ['url'],
    registers,
    collect() {
      this.reset();
      for (const c of store.byUrl.values()) this.labels(redactUrl(c.url)).set(c.stale ? 1 : 0);
    },
  });
  new Gauge({
    name: 'mtlsgate_crl_entries',
    help: 'Revoked serials in the CRL last fetched from each crl_url',
    labelNames: ['url'],
    registers,
    collect() {
      this.reset();
      for (const c of store.byUrl.values()) this.labels(redactUrl(c.url)).set(c.serials.size);
    },
  });
  new Gauge({
    name: 'mtlsgate_crl_fail_closed',
    help: '--crl-stale: 1 = closed (a stale CRL refuses its CA certificates: mtls.revocation_unknown), 0 = open',
    registers,
    collect() {
      this.set(store.policy === 'closed' ? 1 : 0);
    },
  });
}
