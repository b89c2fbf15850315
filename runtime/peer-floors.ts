// What another worker of `serve --workers N` took, applied here (docs/workers.md). Every worker
// follows the bundle source and the crl_urls by itself, so for a moment after a change they
// differ: one worker may admit a certificate another has just seen revoked, until its own next
// fetch; and whoever writes the bundle file or answers a URL could use that moment to hand a
// worker that has not read the newer bundle yet an older one, still newer than its own. The
// worker that takes a signed bundle or a CRL tells the primary, which tells the others: they
// raise their bundle floor at once (and re-read the source when they serve an older one), and
// verify and take the same CRL bytes as if they had fetched them.
import { type BundleFloor, higherFloor } from './bundle-floor.ts';
import type { CrlFetcher } from './crl-fetcher.ts';
import { type HandedCrl, handedPath } from './cluster/crl-files.ts';
import type { CrlFloor } from './revocation.ts';
import { type BundleRecord, crlStateKey, raiseCrlFloor } from './state-file.ts';
import type { BundleStore } from './store.ts';

export interface PeerTaken {
  bundle?: BundleRecord;
  /**
   * `der`: the CRL's bytes, base64 (the IPC channel carries JSON), for a list under 1 MiB; `file`:
   * a larger one's hand-off file (runtime/cluster/crl-files.ts); `issuer`: the certificate (DER,
   * base64) of the CA that signed it.
   */
  crl?: { url: string; floor: CrlFloor; der?: string; file?: HandedCrl; issuer?: string };
}

export interface PeerFloorTargets {
  store: BundleStore<unknown>;
  crls: Pick<CrlFetcher, 'offer'>;
  /** Re-reads the bundle source (the serving bundle was signed before the one a peer took). */
  reloadBundle(): Promise<void>;
  /** The primary's hand-off directory, where a large CRL's file is (runtime/cluster/crl-files.ts). */
  crlDir?: string;
}

export function applyPeerFloors(taken: PeerTaken, to: PeerFloorTargets): void {
  if (taken.bundle !== undefined) {
    const { signedAt, digest } = taken.bundle;
    if (to.store.raiseFloor({ signedAt, digest, from: 'the bundle another worker took' })) void to.reloadBundle();
  }
  offerPeerCrls([taken], to.crls, to.crlDir);
}

/**
 * The floors a worker starts from: its own (--state-dir, --bundle-not-before) raised by what the
 * other workers took before it was forked, which the primary hands it before it reads anything
 * (runtime/cluster/worker.ts). So a replacement for a worker that died never takes an older
 * bundle or CRL than its peers refuse, not even for the moment before it reports ready.
 */
export function withPeerFloors<T extends { floor: BundleFloor | null; crlFloors: ReadonlyMap<string, CrlFloor> }>(own: T, taken: readonly PeerTaken[] = []): T {
  let floor = own.floor;
  const crlFloors = new Map(own.crlFloors);
  for (const t of taken) {
    if (t.bundle !== undefined) floor = higherFloor(floor, { signedAt: t.bundle.signedAt, digest: t.bundle.digest, from: 'the bundle another worker took' });
    if (t.crl === undefined) continue;
    raiseCrlFloor(crlFloors, crlStateKey(t.crl.url), t.crl.floor);
  }
  return { ...own, floor, crlFloors };
}

/** The CRLs the other workers took before this one started, taken (verified) before its own first fetch answers. */
export function offerPeerCrls(taken: readonly PeerTaken[] = [], crls: Pick<CrlFetcher, 'offer'>, crlDir?: string): void {
  for (const { crl } of taken) {
    if (crl?.der !== undefined) crls.offer(crl.url, Buffer.from(crl.der, 'base64'));
    // Read and checked against the size and digest the primary sent, in the CRL thread.
    const file = crl?.file === undefined || crlDir === undefined ? null : handedPath(crlDir, crl.file);
    if (crl !== undefined && file !== null) crls.offer(crl.url, file);
  }
}
