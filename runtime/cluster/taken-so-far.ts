// What the workers of `serve --workers N` took, as the primary keeps it to hand each worker it
// forks later (runtime/peer-floors.ts): the newest signed bundle and, per crl_url and CA, the
// newest CRL with its bytes (a large one's as its hand-off file: runtime/cluster/crl-files.ts).
//
// The primary holds no bundle, so it cannot tell which crl_urls are configured: a worker (a bug,
// or one taken over through its request path) can report a CRL, signed by a CA of its own, for a
// URL nobody named, and each is kept, bytes and all, and written to --state-dir's file. So what
// is kept is bounded (docs/security.md section 49): at most MAX_PEER_CRL_URLS URLs and
// MAX_PEER_CRL_BYTES of CRLs in all. Past either, a CRL of a URL not kept yet, or one that would
// grow the total past the bound, is dropped with a log line (the primary's `refuse`); what is kept
// stays, so the URLs a bundle names, reported first at start, are not pushed out by made-up ones.
import { MAX_CRL_BYTES } from '../../common/size-limits.ts';
import type { PeerTaken } from '../peer-floors.ts';
import type { CrlFloor } from '../revocation.ts';
import { type BundleRecord, crlFloorKey, crlStateKey, raiseCrlFloor } from '../state-file.ts';
import type { PeerFloorMessage } from './lease-protocol.ts';

/** More crl_urls than a bundle is expected to name (one per CA that publishes a list, a few each). */
export const MAX_PEER_CRL_URLS = 64;
/** Four CRLs of the largest size fetched (64 MiB each). */
export const MAX_PEER_CRL_BYTES = 4 * MAX_CRL_BYTES;

type TakenCrl = NonNullable<PeerTaken['crl']>;

/** The newest signed bundle and, per crl_url and CA, the newest CRL any worker took (runtime/peer-floors.ts). */
export class TakenSoFar {
  private bundle: BundleRecord | undefined;
  /** The floors as the state file keeps them (one per CA of a URL), and the messages that carried them. */
  private readonly floors = new Map<string, CrlFloor>();
  private readonly crls = new Map<string, TakenCrl>();
  private readonly urls = new Set<string>();
  private bytes = 0;

  constructor(
    private readonly maxUrls = MAX_PEER_CRL_URLS,
    private readonly maxBytes = MAX_PEER_CRL_BYTES,
  ) {}

  /** Why `crl` is more than the primary keeps (a new URL past the count, or bytes past the total), or null. */
  crlRefusal(crl: TakenCrl): string | null {
    const key = crlStateKey(crl.url);
    if (!this.urls.has(key) && this.urls.size >= this.maxUrls)
      return `CRL of ${key}: ${this.maxUrls} crl_urls are kept already, not one more (no bundle names that many; a worker reporting URLs nobody configured?)`;
    const replaced = this.crls.get(crlFloorKey(key, crl.floor.ca));
    const total = this.bytes - derBytes(replaced) + derBytes(crl);
    if (total > this.maxBytes) return `CRL of ${key}: keeping it would hold ${total} bytes of CRLs, more than ${this.maxBytes}`;
    return null;
  }

  /**
   * Keeps what `m` raises. `kept`: its CRL is now the newest of its URL and CA (a CRL that is
   * not reached the other workers before, as the one kept); `displaced`: the CRL it replaced.
   */
  add(m: PeerTaken): { kept: boolean; displaced?: TakenCrl } {
    if (m.bundle !== undefined && (this.bundle === undefined || m.bundle.signedAt > this.bundle.signedAt)) this.bundle = m.bundle;
    const crl = m.crl;
    if (crl === undefined || (crl.der === undefined && crl.file === undefined)) return { kept: false };
    // Per CA: the primary holds no bundle, so it cannot tell which CA the URL is bound to; a CRL
    // of a worker's own CA then keeps its own place and never takes the real CA's.
    const key = crlStateKey(crl.url);
    if (!raiseCrlFloor(this.floors, key, crl.floor)) return { kept: false };
    const at = crlFloorKey(key, crl.floor.ca);
    const displaced = this.crls.get(at);
    this.bytes += derBytes(crl) - derBytes(displaced);
    this.crls.set(at, crl);
    this.urls.add(key);
    return { kept: true, displaced };
  }

  /** A CRL kept is in the hand-off file `name` (a report naming it again must not have it removed). */
  holdsFile(name: string): boolean {
    for (const crl of this.crls.values()) if (crl.file?.name === name) return true;
    return false;
  }

  messages(): PeerFloorMessage[] {
    const out: PeerFloorMessage[] = [];
    if (this.bundle !== undefined) out.push({ type: 'mtlsgate:floor', bundle: this.bundle });
    for (const crl of this.crls.values()) out.push({ type: 'mtlsgate:floor', crl });
    return out;
  }
}

/** The CRL's size as held: base64, as the IPC channel carried a small one; a large one's file. */
const derBytes = (crl: TakenCrl | undefined): number => crl?.der?.length ?? crl?.file?.bytes ?? 0;
