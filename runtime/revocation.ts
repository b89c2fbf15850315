// Revocation at runtime. Two sources: the bundle (CRL files compiled in, the deny list) and
// the CRLs of crl_urls, which the running gateway fetches, verifies and swaps in without a
// bundle reload (crl-fetcher.ts). A connection's verdict is cached on its identity with the
// view and the fetched-CRL generation it was computed for, so every request costs two
// comparisons, and the first request after a CRL changes (keep-alive or resumed session alike)
// is decided against the new list.
import type { BundleRevocation } from '../bundle/types.ts';
import { type ClientIdentity, signedBy, type TrustedCa } from './identity.ts';
import { normaliseSerial } from '../bundle/crl.ts';
import type { X509Certificate } from 'node:crypto';

/** What to do with certificates of a CA whose crl_url CRL is stale and cannot be refreshed. */
export type StalePolicy = 'open' | 'closed';

/** One crl_url's current CRL, as fetched and verified. */
export interface FetchedCrl {
  readonly url: string;
  /** The CA that signed it (null until a first fetch verified one). */
  caFingerprint: string | null;
  serials: ReadonlySet<string>;
  /** ms since the epoch, or null (no nextUpdate). */
  nextUpdate: number | null;
  /** The CRL in use: its thisUpdate (ms) and cRLNumber; a fetched CRL older than these is a replay. */
  thisUpdate: number | null;
  number: string | null;
  etag: string | null;
  /** Last successful fetch (200 or 304), ms since the epoch, or null. */
  fetchedAt: number | null;
  lastError: string | null;
  /** Past its nextUpdate (or never fetched): set by the fetcher's clock check. */
  stale: boolean;
}

/** The newest CRL taken from a crl_url before this start (`serve --state-dir`: runtime/state-file.ts). */
export interface CrlFloor {
  /** Fingerprint (hex) of the CA that signed it. */
  ca: string;
  /** Its thisUpdate, ms since the epoch. */
  thisUpdate: number;
  /** Its cRLNumber (normalised hex), or null. */
  number: string | null;
}

/** The fetched CRLs of the process, and a generation that moves whenever one changes. */
export class CrlStore {
  readonly byUrl = new Map<string, FetchedCrl>();
  /**
   * Shown crl_url (runtime/redact.ts) → the newest CRL taken before this start: until a first
   * CRL is taken, a fetched one must not be older (crl-fetcher.ts), as it must not be older than
   * the one in use after.
   */
  floors: ReadonlyMap<string, CrlFloor> = new Map();
  generation = 0;
  policy: StalePolicy = 'open';

  changed(): void {
    this.generation++;
  }

  /** URLs the config names now: new ones start stale (never fetched), gone ones are dropped. */
  setUrls(urls: readonly string[]): void {
    let changed = false;
    for (const url of urls) {
      if (this.byUrl.has(url)) continue;
      this.byUrl.set(url, {
        url,
        caFingerprint: null,
        serials: new Set(),
        nextUpdate: null,
        thisUpdate: null,
        number: null,
        etag: null,
        fetchedAt: null,
        lastError: null,
        stale: true,
      });
      changed = true;
    }
    for (const url of [...this.byUrl.keys()]) {
      if (urls.includes(url)) continue;
      this.byUrl.delete(url);
      changed = true;
    }
    if (changed) this.changed();
  }

  /** Any crl_url stale right now (/health says degraded). */
  anyStale(): boolean {
    for (const c of this.byUrl.values()) if (c.stale) return true;
    return false;
  }
}

/** The process's CRL store (like the upstream pools, one per process; serve sets its policy). */
export const crlStore = new CrlStore();

export type RevocationVerdict = 'revoked' | 'unknown' | null;

/**
 * An intermediate above the leaf (sent by the client, or proven in its path before) that `ca`
 * signed and revoked: every leaf below it is refused. Before, only the leaf's own serial was
 * looked up, so a CA revoking a compromised intermediate changed nothing for what it issued.
 */
function revokedAbove(above: readonly X509Certificate[], ca: TrustedCa, serials: ReadonlySet<string>): boolean {
  for (const cert of above) if (serials.has(normaliseSerial(cert.serialNumber)) && signedBy(cert, ca.cert)) return true;
  return false;
}

/** Revocation as one snapshot sees it: its bundle's lists plus the store's fetched CRLs. */
export class RevocationView {
  private readonly denied: ReadonlySet<string>;
  /** CA (or CRL-issuing intermediate) -> revoked serials, from the bundle's CRL files. */
  private readonly compiled: { ca: TrustedCa; serials: ReadonlySet<string> }[] = [];
  /** Nothing to check at all: the request path skips this stage's work. */
  readonly empty: boolean;

  constructor(
    revocation: BundleRevocation,
    /** The trusted CAs and the intermediates named as CRL issuers: a CRL revokes what its signer signed. */
    private readonly cas: ReadonlyMap<string, TrustedCa>,
    private readonly store: CrlStore,
  ) {
    this.denied = new Set(revocation.denied);
    for (const [fp, crl] of Object.entries(revocation.crls)) {
      const ca = cas.get(fp);
      if (ca !== undefined) this.compiled.push({ ca, serials: new Set(crl.serials) });
    }
    this.empty = this.denied.size === 0 && this.compiled.length === 0 && revocation.crl_urls.length === 0;
  }

  /** 'revoked', 'unknown' (a stale CRL under the closed policy), or null. Cached on the identity. */
  check(identity: ClientIdentity): RevocationVerdict {
    if (this.empty) return null;
    if (identity.revokedView === this && identity.revokedMemo === this.store.generation) return identity.revocation;
    const verdict = this.compute(identity);
    identity.revokedView = this;
    identity.revokedMemo = this.store.generation;
    identity.revocation = verdict;
    return verdict;
  }

  private compute(identity: ClientIdentity): RevocationVerdict {
    if (this.denied.has(identity.fingerprint)) return 'revoked';
    const serial = identity.serial();
    const above = identity.certificatesAbove();
    for (const { ca, serials } of this.compiled) {
      if (serials.has(serial) && identity.signedBy(ca)) return 'revoked';
      if (revokedAbove(above, ca, serials)) return 'revoked';
    }
    let unknown = false;
    for (const crl of this.store.byUrl.values()) {
      const ca = crl.caFingerprint === null ? undefined : this.cas.get(crl.caFingerprint);
      if (ca !== undefined && crl.serials.has(serial) && identity.signedBy(ca)) return 'revoked';
      if (ca !== undefined && revokedAbove(above, ca, crl.serials)) return 'revoked';
      // Closed: a stale list's CA is not trusted for the moment (before the first fetch the CA
      // is not known, so every certificate waits for it).
      if (crl.stale && this.store.policy === 'closed' && (ca === undefined || identity.signedBy(ca) || above.some((c) => signedBy(c, ca.cert)))) unknown = true;
    }
    return unknown ? 'unknown' : null;
  }
}
