// Who is on the other end of a TLS connection: the leaf certificate the client presented,
// computed once at 'secureConnection' and cached on the socket. Only the leaf identifies a
// client; the rest of the chain it sent is only used to decide whether the leaf was issued by
// a CA an API trusts. Reading the peer certificate per request would halve
// throughput (BENCH-NOTES: getPeerCertificate() per request 4-5k req/s vs 12k cached).
import { X509Certificate } from 'node:crypto';
import { fingerprintOf } from '../cert/fingerprint.ts';
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
const MAX_PROVEN_CHAINS = 50_000;
/** Intermediates a client may send between its leaf and a trusted CA. */
const MAX_CHAIN_DEPTH = 8;

export interface TrustedCa {
  fingerprint: string;
  cert: X509Certificate;
}

export class ClientIdentity {
  /** Lowercase hex SHA-256 of the leaf's DER. */
  readonly fingerprint: string;
  /** notAfter, ms since the epoch. */
  readonly notAfter: number;
  private chain: X509Certificate[] | null = null;
  /** CA fingerprint -> does the leaf chain to it (a CA fingerprint fixes the CA, so this never goes stale). */
  private verdicts: Map<string, boolean> | null = null;
  private xfcc: string | null = null;

  constructor(
    readonly leaf: X509Certificate,
    /** Certificates sent behind the leaf (DER), when captured. */
    private readonly chainDer: Buffer[] | null,
  ) {
    this.fingerprint = fingerprintOf(leaf.raw);
    this.notAfter = Date.parse(leaf.validTo);
  }

  expired(now: number): boolean {
    return now > this.notAfter;
  }

  /** True when the leaf chains to `ca` through certificates the client sent (or directly). */
  issuedBy(ca: TrustedCa, now: number): boolean {
    this.verdicts ??= new Map();
    let verdict = this.verdicts.get(ca.fingerprint);
    if (verdict === undefined) {
      const pair = `${this.fingerprint}>${ca.fingerprint}`;
      verdict = provenChains.has(pair) || chainsTo(this.leaf, this.intermediates(), ca.cert, now);
      if (verdict && !provenChains.has(pair)) {
        if (provenChains.size >= MAX_PROVEN_CHAINS) provenChains.clear();
        provenChains.add(pair);
      }
      this.verdicts.set(ca.fingerprint, verdict);
    }
    return verdict;
  }

  /** X-Forwarded-Client-Cert value, Envoy format: Hash=<sha256 hex>;Subject="<RFC 2253 DN>". */
  forwardedClientCert(): string {
    this.xfcc ??= `Hash=${this.fingerprint};Subject="${rfc2253(this.leaf.subject).replace(/["\\]/g, '\\$&')}"`;
    return this.xfcc;
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

function withinValidity(cert: X509Certificate, now: number): boolean {
  return now >= Date.parse(cert.validFrom) && now <= Date.parse(cert.validTo);
}

/** `cert` was signed by `issuer` (names match and the signature verifies). */
function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/**
 * Walks from the leaf to `ca`: each step must be signed by the next certificate, and every
 * certificate above the leaf must be a CA within its validity period. The leaf's own validity
 * is judged by the caller (an expired leaf gets its own error).
 */
function chainsTo(leaf: X509Certificate, intermediates: readonly X509Certificate[], ca: X509Certificate, now: number): boolean {
  if (!ca.ca || !withinValidity(ca, now)) return false;
  let current = leaf;
  const used = new Set<X509Certificate>();
  for (let depth = 0; depth <= MAX_CHAIN_DEPTH; depth++) {
    if (signedBy(current, ca)) return true;
    const next = intermediates.find((c) => !used.has(c) && c.ca && withinValidity(c, now) && signedBy(current, c));
    if (next === undefined) return false;
    used.add(next);
    current = next;
  }
  return false;
}

/** "C=US\nO=Acme\nCN=alice" (Node's order, top-down) -> "CN=alice,O=Acme,C=US" (RFC 2253). */
function rfc2253(subject: string): string {
  return subject
    .split('\n')
    .filter((line) => line.length > 0)
    .reverse()
    .map((line) => {
      const eq = line.indexOf('=');
      const value = line.slice(eq + 1).replace(/[,+"\\<>;]/g, '\\$&');
      return line.slice(0, eq + 1) + value;
    })
    .join(',');
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
