// What another worker of `serve --workers N` took, applied here (docs/workers.md). Every worker
// follows the bundle source and the crl_urls by itself, so for a moment after a change they
// differ: one worker may admit a certificate another has just seen revoked, until its own next
// fetch; and whoever writes the bundle file or answers a URL could use that moment to hand a
// worker that has not read the newer bundle yet an older one, still newer than its own. The
// worker that takes a signed bundle or a CRL tells the primary, which tells the others: they
// raise their bundle floor at once (and re-read the source when they serve an older one), and
// verify and take the same CRL bytes as if they had fetched them.
import type { CrlFetcher } from './crl-fetcher.ts';
import type { CrlFloor } from './revocation.ts';
import type { BundleRecord } from './state-file.ts';
import type { BundleStore } from './store.ts';

export interface PeerTaken {
  bundle?: BundleRecord;
  /** `der`: the CRL's bytes, base64 (the IPC channel carries JSON). */
  crl?: { url: string; floor: CrlFloor; der?: string };
}

export interface PeerFloorTargets {
  store: BundleStore<unknown>;
  crls: Pick<CrlFetcher, 'offer'>;
  /** Re-reads the bundle source (the serving bundle was signed before the one a peer took). */
  reloadBundle(): Promise<void>;
}

export function applyPeerFloors(taken: PeerTaken, to: PeerFloorTargets): void {
  if (taken.bundle !== undefined) {
    const { signedAt, digest } = taken.bundle;
    if (to.store.raiseFloor({ signedAt, digest, from: 'the bundle another worker took' })) void to.reloadBundle();
  }
  if (taken.crl?.der !== undefined) to.crls.offer(taken.crl.url, Buffer.from(taken.crl.der, 'base64'));
}
