// Revocation at runtime. Two sources: the bundle (CRL files compiled in, the deny list) and
// the CRLs of crl_urls, which the running gateway fetches, verifies and swaps in without a
// bundle reload (crl-fetcher.ts). A connection's verdict is cached on its identity with the
// view and the fetched-CRL generation it was computed for, so every request costs two
// comparisons, and the first request after a CRL changes (keep-alive or resumed session alike)
// is decided against the new list.
import type { BundleRevocation } from '../bundle/types.ts';
import { type ClientIdentity, signedBy, type TrustedCa } from './identity.ts';
import { certificateSerial } from '../bundle/crl.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import type { X509Certificate } from 'node:crypto';
import { type SerialArrays, type SerialLookup, SerialTable } from './serial-table.ts';

/** What to do with certificates of a CA whose crl_url CRL is stale and cannot be refreshed. */
export type StalePolicy = 'open' | 'closed';

/** One crl_url's current CRL, as fetched and verified. */
export interface FetchedCrl {
  readonly url: string;
  /**
   * The one CA (trusted, or a crl_issuers intermediate) whose CRLs this URL may serve, as the
   * bundle binds it (`revocation.crl_url_issuers`); null: none, every CRL is refused.
   */
  readonly issuer: string | null;
  /** The CA that signed the CRL in use (the issuer; null until a first fetch verified one). */
  caFingerprint: string | null;
  /** Its revoked serials: a Set, or (a large CRL, read in the CRL worker) a SerialTable. */
  serials: SerialLookup;
  /** ms since the epoch, or null (no nextUpdate). */
  nextUpdate: number | null;
  /** The CRL in use: its thisUpdate (ms) and cRLNumber; a fetched CRL older than these is a replay. */
  thisUpdate: number | null;
  number: string | null;
  etag: string | null;
  /** Last successful fetch (200 or 304), ms since the epoch, or null. */
  fetchedAt: number | null;
  lastError: string | null;
  /** The last fetch brought a CRL that was refused (wrong signer, replayed, malformed...), not a network or HTTP error. */
  refused: boolean;
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
   * crl_url as the state file keys it (crlStateKey in state-file.ts) → the newest CRL taken before this start: until a first
   * CRL is taken, a fetched one must not be older (crl-fetcher.ts), as it must not be older than
   * the one in use after.
   */
  floors: ReadonlyMap<string, CrlFloor> = new Map();
  generation = 0;
  policy: StalePolicy = 'open';

  changed(): void {
    this.generation++;
  }

  /**
   * URLs the config names now, each with the CA bound to it: new ones start stale (never
   * fetched), gone ones are dropped, and one bound to another CA than before starts over (the
   * list in use is that other CA's: it says nothing about what the new one revoked).
   */
  setUrls(urls: readonly string[], issuers: ReadonlyMap<string, string> = new Map()): void {
    let changed = false;
    for (const url of urls) {
      const issuer = issuers.get(url) ?? null;
      if (this.byUrl.get(url)?.issuer === issuer) continue;
      this.byUrl.set(url, {
        url,
        issuer,
        caFingerprint: null,
        serials: new Set(),
        nextUpdate: null,
        thisUpdate: null,
        number: null,
        etag: null,
        fetchedAt: null,
        lastError: null,
        refused: false,
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

type RevocationVerdict = 'revoked' | 'unknown' | null;

/**
 * An intermediate above the leaf (sent by the client, or proven in its path before) that `ca`
 * signed and revoked: every leaf below it is refused. Before, only the leaf's own serial was
 * looked up, so a CA revoking a compromised intermediate changed nothing for what it issued.
 */
function revokedAbove(above: readonly X509Certificate[], ca: TrustedCa, serials: SerialLookup): boolean {
  for (const cert of above) if (serials.has(certificateSerial(cert.serialNumber)) && signedBy(cert, ca.cert)) return true;
  return false;
}

/** Revocation as one snapshot sees it: its bundle's lists plus the store's fetched CRLs. */
export class RevocationView {
  private readonly denied: ReadonlySet<string>;
  /** The CAs and CRL-issuing intermediates of the bundle that are on the deny list themselves. */
  private readonly deniedCas: readonly TrustedCa[];
  /** CA (or CRL-issuing intermediate) -> revoked serials, from the bundle's CRL files. */
  private readonly compiled: { ca: TrustedCa; serials: SerialLookup }[] = [];
  /** Nothing to check at all: the request path skips this stage's work. */
  readonly empty: boolean;

  constructor(
    revocation: BundleRevocation,
    /** The trusted CAs and the intermediates named as CRL issuers: a CRL revokes what its signer signed. */
    private readonly cas: ReadonlyMap<string, TrustedCa>,
    private readonly store: CrlStore,
    /** CA -> its compiled CRL's serials as built in the bundle worker (runtime/bundle-worker-compact.ts), used as they are. */
    tables: Readonly<Record<string, SerialArrays>> = {},
  ) {
    this.denied = new Set(revocation.denied);
    this.deniedCas = [...cas.values()].filter((ca) => this.denied.has(ca.fingerprint));
    for (const [fp, crl] of Object.entries(revocation.crls)) {
      const ca = cas.get(fp);
      if (ca !== undefined) this.compiled.push({ ca, serials: Object.hasOwn(tables, fp) ? new SerialTable(tables[fp]) : new Set(crl.serials) });
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

  /**
   * The fingerprint of a deny-listed CA or intermediate in the identity's path, or null: an
   * intermediate the client sent (or proven in its path before), or a bundle CA that signed the
   * leaf or one of those. Before, only the leaf's fingerprint was looked up, so denying a
   * compromised issuing CA refused nothing it issued.
   */
  deniedAbove(identity: ClientIdentity): string | null {
    if (this.denied.size === 0) return null;
    const above = identity.certificatesAbove();
    for (const cert of above) {
      const fp = fingerprintOf(cert.raw);
      if (this.denied.has(fp)) return fp;
    }
    for (const ca of this.deniedCas) if (identity.signedBy(ca) || above.some((c) => signedBy(c, ca.cert))) return ca.fingerprint;
    return null;
  }

  private compute(identity: ClientIdentity): RevocationVerdict {
    if (this.denied.has(identity.fingerprint) || this.deniedAbove(identity) !== null) return 'revoked';
    const serial = identity.serial();
    const above = identity.certificatesAbove();
    for (const { ca, serials } of this.compiled) {
      if (serials.has(serial) && identity.signedBy(ca)) return 'revoked';
      if (revokedAbove(above, ca, serials)) return 'revoked';
    }
    let unknown = false;
    for (const crl of this.store.byUrl.values()) {
      // The URL's CA is known before its first fetch (the bundle binds it); a list in use was signed by it.
      const ca = crl.issuer === null ? undefined : this.cas.get(crl.issuer);
      const inUse = ca !== undefined && crl.caFingerprint === ca.fingerprint;
      if (inUse && crl.serials.has(serial) && identity.signedBy(ca)) return 'revoked';
      if (inUse && revokedAbove(above, ca, crl.serials)) return 'revoked';
      // Closed: a stale list's CA is not trusted for the moment (a URL bound to no CA of this
      // bundle holds every certificate).
      if (crl.stale && this.store.policy === 'closed' && (ca === undefined || identity.signedBy(ca) || above.some((c) => signedBy(c, ca.cert)))) unknown = true;
    }
    return unknown ? 'unknown' : null;
  }
}
