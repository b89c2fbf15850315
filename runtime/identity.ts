// Who is on the other end of a TLS connection: the leaf certificate the client presented,
// computed once at 'secureConnection' and cached on the socket. Only the leaf identifies a
// client; the rest of the chain it sent is only used to decide whether the leaf was issued by
// a CA an API trusts. Reading the peer certificate per request would halve
// throughput (BENCH-NOTES: getPeerCertificate() per request 4-5k req/s vs 12k cached).
import { X509Certificate } from 'node:crypto';
import type { XfccField } from '../bundle/types.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { certificateSerial } from '../bundle/crl.ts';
import { allowsClientAuth, type CertFacts, certFacts, issuerDefect } from '../cert/cert-facts.ts';
import { MAX_KEY_BITS } from '../cert/der.ts';
import { nameConstraintViolation } from '../cert/name-constraints.ts';
import { xfccValue } from './forward-identity.ts';
import type { TLSSocket } from 'node:tls';

const IDENTITY = Symbol('mtlsgate.clientIdentity');

/**
 * "leaf fingerprint > CA fingerprint" pairs proven on some connection. A resumed TLS session
 * carries the leaf but not the chain the client sent on its full handshake, so a leaf that
 * needed an intermediate would be refused on every resumption without this. Only successes
 * are remembered (a failure may just be a connection without its chain); fingerprints fix the
 * certificates, so an entry never goes stale (expiry of the leaf is checked per request).
 */
const provenChains = new Set<string>();
/**
 * Leaf fingerprint -> the intermediates of its proven paths: a resumed session has no chain,
 * and revocation must still see an intermediate its CA revoked (runtime/revocation.ts).
 * Cleared with provenChains.
 */
const provenIntermediates = new Map<string, readonly X509Certificate[]>();
const MAX_PROVEN_CHAINS = 50_000;
/** Intermediates a client may send between its leaf and a trusted CA. */
const MAX_CHAIN_DEPTH = 8;

export interface TrustedCa {
  fingerprint: string;
  cert: X509Certificate;
}

/** What the match index (runtime/match-index.ts) left on an identity, for one snapshot. */
interface MatchMemo {
  readonly index: object;
  /** Key id, null (no rule matched), or AMBIGUOUS. */
  readonly key: string | null;
}
export const AMBIGUOUS = '\0ambiguous';

export class ClientIdentity {
  /** Lowercase hex SHA-256 of the leaf's DER. */
  readonly fingerprint: string;
  /** notAfter and notBefore, ms since the epoch. */
  readonly notAfter: number;
  readonly notBefore: number;
  private chain: X509Certificate[] | null = null;
  /** CA fingerprint -> does the leaf chain to it (a CA fingerprint fixes the CA, so this never goes stale). */
  private verdicts: Map<string, boolean> | null = null;
  private parsed: CertFacts | null | undefined;
  private xfcc: Map<string, string> | null = null;
  /** The certificate-match verdict for the snapshot it was computed on (runtime/match-index.ts). */
  matchMemo: MatchMemo | null = null;
  /** Revocation verdict, with the view and the fetched-CRL generation it was computed for (runtime/revocation.ts). */
  revokedView: object | null = null;
  revokedMemo = -1;
  revocation: 'revoked' | 'unknown' | null = null;

  constructor(
    readonly leaf: X509Certificate,
    /** Certificates sent behind the leaf (DER), when captured. */
    private readonly chainDer: Buffer[] | null,
  ) {
    this.fingerprint = fingerprintOf(leaf.raw);
    this.notAfter = Date.parse(leaf.validTo);
    this.notBefore = Date.parse(leaf.validFrom);
  }

  expired(now: number): boolean {
    return now > this.notAfter;
  }

  notYetValid(now: number): boolean {
    return now < this.notBefore;
  }

  /** The leaf's extensions and subject, read once; null when the DER is beyond this reader. */
  facts(): CertFacts | null {
    if (this.parsed === undefined) {
      try {
        this.parsed = certFacts(this.leaf.raw);
      } catch {
        this.parsed = null;
      }
    }
    return this.parsed;
  }

  /**
   * Usable as a TLS client certificate (RFC 5280 4.2.1.12): no extendedKeyUsage, or one with
   * clientAuth. A server certificate (serverAuth only) is refused, the gateway's own included.
   */
  clientAuth(): boolean {
    const f = this.facts();
    return f !== null && allowsClientAuth(f);
  }

  /**
   * The leaf's key is over MAX_KEY_BITS: no key may be bound to it (E_CERT_KEY_SIZE, the portal),
   * and a certificate_match rule may not admit it either. (The handshake already verified its
   * signature with it: that cost is OpenSSL's, before any code here runs.)
   */
  keyTooLarge(): boolean {
    return (this.facts()?.keyBits ?? 0) > MAX_KEY_BITS;
  }

  /** True when the leaf chains to `ca` through certificates the client sent (or directly), by RFC 5280 path validation. */
  issuedBy(ca: TrustedCa, now: number): boolean {
    this.verdicts ??= new Map();
    let verdict = this.verdicts.get(ca.fingerprint);
    if (verdict === undefined) {
      const pair = `${this.fingerprint}>${ca.fingerprint}`;
      verdict = provenChains.has(pair);
      if (!verdict) {
        const path = chainsTo(this.leaf, this.intermediates(), ca.cert, now);
        verdict = path !== null;
        if (path !== null) {
          if (provenChains.size >= MAX_PROVEN_CHAINS) {
            provenChains.clear();
            provenIntermediates.clear();
          }
          provenChains.add(pair);
          const known = provenIntermediates.get(this.fingerprint) ?? [];
          const added = path.filter((c) => !known.some((k) => k.raw.equals(c.raw)));
          if (added.length > 0) provenIntermediates.set(this.fingerprint, [...known, ...added]);
        }
      }
      this.verdicts.set(ca.fingerprint, verdict);
    }
    return verdict;
  }

  /** Was the leaf signed directly by `ca` (for CRL lookups: a CRL lists the serials its issuer signed)? */
  signedBy(ca: TrustedCa): boolean {
    const key = `signed>${ca.fingerprint}`;
    this.verdicts ??= new Map();
    let verdict = this.verdicts.get(key);
    if (verdict === undefined) {
      verdict = signedBy(this.leaf, ca.cert);
      this.verdicts.set(key, verdict);
    }
    return verdict;
  }

  /** Serial number: lowercase hex, no leading zeros (as CRLs in the bundle write it). */
  serial(): string {
    return certificateSerial(this.leaf.serialNumber);
  }

  /**
   * The certificates above the leaf that may stand in its path: those the client sent, and
   * (a resumed session sends none) the intermediates of paths proven for this leaf before.
   */
  certificatesAbove(): readonly X509Certificate[] {
    const proven = provenIntermediates.get(this.fingerprint);
    if (proven === undefined) return this.intermediates();
    return [...this.intermediates(), ...proven.filter((p) => !this.intermediates().some((c) => c.raw.equals(p.raw)))];
  }

  /** DER of the certificates the client sent behind the leaf ([] when not captured). */
  chainDers(): readonly Buffer[] {
    return this.chainDer ?? [];
  }

  /** X-Forwarded-Client-Cert value, Envoy format, with the elements `fields` names (cached per set). */
  forwardedClientCert(fields: readonly XfccField[] = XFCC_DEFAULT): string {
    const name = fields.join(',');
    this.xfcc ??= new Map();
    let value = this.xfcc.get(name);
    if (value === undefined) {
      value = xfccValue(this, this.facts(), fields);
      this.xfcc.set(name, value);
    }
    return value;
  }

  private intermediates(): X509Certificate[] {
    if (this.chain !== null) return this.chain;
    const chain: X509Certificate[] = [];
    for (const der of this.chainDer ?? []) {
      try {
        chain.push(new X509Certificate(der));
      } catch {
        break;
      }
    }
    this.chain = chain;
    return chain;
  }
}

const XFCC_DEFAULT: readonly XfccField[] = ['Hash', 'Subject'];

/**
 * DER of the leaf and of the certificates the client sent behind it, or null without a
 * certificate. Must run before anything else reads the peer certificate: on Node 20, once
 * getPeerX509Certificate() has run, getPeerCertificate(true) no longer returns the chain.
 */
function peerChainDer(socket: TLSSocket): { leaf: Buffer; rest: Buffer[] } | null {
  let cert = socket.getPeerCertificate(true);
  if (!cert?.raw) return null;
  const leaf = cert.raw;
  const rest: Buffer[] = [];
  const seen = new Set<object>();
  // issuerCertificate points at itself at a self-signed end.
  while (cert.issuerCertificate && !seen.has(cert.issuerCertificate) && rest.length < MAX_CHAIN_DEPTH) {
    seen.add(cert);
    cert = cert.issuerCertificate;
    if (!cert.raw) break;
    rest.push(cert.raw);
  }
  return { leaf, rest };
}

/** `cert` was signed by `issuer` (names match and the signature verifies). */
export function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

const factsCache = new WeakMap<X509Certificate, CertFacts | null>();
function factsOf(cert: X509Certificate): CertFacts | null {
  let f = factsCache.get(cert);
  if (f === undefined) {
    try {
      f = certFacts(cert.raw);
    } catch {
      f = null;
    }
    factsCache.set(cert, f);
  }
  return f;
}

/**
 * May `cert` issue a certificate `below` steps under it (0 = the certificate right below)?
 * It is a CA (OpenSSL's X509_check_ca, as before), may issue at all (cert/cert-facts.ts
 * `issuerDefect`: validity, keyUsage, purpose, extensions) and its pathLenConstraint admits the
 * intermediates between it and the leaf.
 */
function mayIssue(cert: X509Certificate, intermediatesBelow: number, now: number): boolean {
  if (!cert.ca) return false;
  const f = factsOf(cert);
  if (f === null || issuerDefect(f, Date.parse(cert.validFrom), Date.parse(cert.validTo), now) !== null) return false;
  return f.pathLen === null || f.pathLen >= intermediatesBelow;
}

/**
 * What RFC 5280 checks across a whole path (leaf first, the trusted CA last): no certificate
 * with a critical extension left unprocessed, and every CA's name constraints hold for every
 * certificate below it (6.1.3 b, c; a self-issued intermediate is exempt, the leaf never is).
 */
function pathHolds(path: readonly X509Certificate[]): boolean {
  const facts: CertFacts[] = [];
  for (const cert of path) {
    const f = factsOf(cert);
    if (f === null || f.unprocessable !== null) return false;
    facts.push(f);
  }
  for (let i = 1; i < path.length; i++) {
    const nc = facts[i].nameConstraints;
    if (nc === null) continue;
    for (let j = 0; j < i; j++) {
      if (j > 0 && path[j].checkIssued(path[j])) continue;
      if (nameConstraintViolation(facts[j].names, nc) !== null) return false;
    }
  }
  return true;
}

/**
 * Walks from the leaf to `ca` as RFC 5280 path validation does: each step signed by the next
 * certificate; every certificate above the leaf a CA (basicConstraints cA, keyCertSign) within
 * its validity whose pathLenConstraint admits the intermediates below it; then the checks of
 * the whole path (pathHolds). The leaf's own validity and extendedKeyUsage are judged by the
 * caller (each has its own error). Returns the intermediates of the path, or null.
 */
function chainsTo(leaf: X509Certificate, intermediates: readonly X509Certificate[], ca: X509Certificate, now: number): X509Certificate[] | null {
  const path: X509Certificate[] = [leaf];
  let current = leaf;
  for (let depth = 0; depth <= MAX_CHAIN_DEPTH; depth++) {
    // depth = intermediates already between the leaf and the certificate that signs `current`.
    if (signedBy(current, ca)) return mayIssue(ca, depth, now) && pathHolds([...path, ca]) ? path.slice(1) : null;
    const next = intermediates.find((c) => !path.includes(c) && mayIssue(c, depth, now) && signedBy(current, c));
    if (next === undefined) return null;
    path.push(next);
    current = next;
  }
  return null;
}

/**
 * Records the client's leaf on the socket; call on 'secureConnection'. `withChain`: also keep
 * the certificates sent behind the leaf (only needed while some API trusts a CA, and costly
 * enough per connection to skip otherwise). A leaf that a trusted CA signed directly needs no
 * chain, so a CA entry added by a later reload still admits those on older connections.
 */
export function attachIdentity(socket: TLSSocket, withChain: boolean): void {
  let identity: ClientIdentity | null = null;
  if (withChain) {
    const chain = peerChainDer(socket);
    if (chain !== null) identity = new ClientIdentity(new X509Certificate(chain.leaf), chain.rest);
  } else {
    const leaf = socket.getPeerX509Certificate();
    if (leaf !== undefined) identity = new ClientIdentity(leaf, null);
  }
  (socket as unknown as Record<symbol, ClientIdentity | null>)[IDENTITY] = identity;
}

/** The identity attachIdentity recorded, or null (no certificate, or a server that asks for none). */
export function identityOf(socket: unknown): ClientIdentity | null {
  return (socket as Record<symbol, ClientIdentity | null | undefined>)[IDENTITY] ?? null;
}
