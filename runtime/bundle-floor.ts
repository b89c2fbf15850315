// The order of signed bundles (docs/security.md section 30). Every bundle a key ever signed
// verifies, so a signature alone lets whoever writes the bundle file or answers its URL serve an
// old one: from before a key was removed, a certificate unpinned, an API closed. A v2 signature
// carries its signing time (bundle/sign.ts); the gateway keeps a floor, the signing time of the
// newest bundle it has taken, and refuses anything signed before it. The floor comes from the
// bundle serving, from `serve --state-dir` (the last bundle taken before a restart:
// runtime/state-file.ts) and from `serve --bundle-not-before`; the highest of them holds.
import { type VerifiedSignature, SignatureError } from '../bundle/sign.ts';

/** The earliest signing time a bundle may have to be taken. */
export interface BundleFloor {
  /** ms since the epoch. */
  signedAt: number;
  /** The bundle signed at that time; null for an operator's --bundle-not-before. */
  digest: string | null;
  /** Where the floor comes from, as a message names it. */
  from: string;
}

const iso = (ms: number) => new Date(ms).toISOString();
const short = (digest: string) => `${digest.slice(0, 19)}…`;

/** The floor a served v2 bundle sets. */
export function floorOfServed(sig: VerifiedSignature): BundleFloor | null {
  return sig.signedAt === null ? null : { signedAt: sig.signedAt, digest: sig.digest, from: 'the bundle serving' };
}

/** The higher of two floors (the first on a tie: the caller passes the one to name first). */
export function higherFloor(a: BundleFloor | null, b: BundleFloor | null): BundleFloor | null {
  if (a === null) return b;
  if (b === null) return a;
  return b.signedAt > a.signedAt ? b : a;
}

function describe(floor: BundleFloor): string {
  return floor.digest === null ? `${floor.from} ${iso(floor.signedAt)}` : `${floor.from} (${short(floor.digest)}, signed at ${iso(floor.signedAt)})`;
}

/**
 * Throws SignatureError when a verified signature may not be taken above `floor`:
 * - signed before the floor: an older bundle, a replay or a rollback;
 * - signed at the floor's very time with another digest: neither is newer, and two honest
 *   signings never share a millisecond (one process signs at increasing times), so the bundle
 *   serving stays (the same digest at the same time is the bundle serving again: taken);
 * - a v1 signature (no time) once there is a floor: it cannot be ordered at all.
 */
export function checkOrder(sig: VerifiedSignature, floor: BundleFloor | null): void {
  if (floor === null) return;
  if (sig.signedAt === null)
    throw new SignatureError(
      `bundle has a v1 signature, which carries no signing time, and ${describe(floor)} is v2-signed: a v1 bundle cannot be ordered, so it could be an old one replayed; sign it again with this version (\`mtlsgate compile --sign\`)`,
    );
  if (sig.signedAt < floor.signedAt)
    throw new SignatureError(
      `bundle ${short(sig.digest)} was signed at ${iso(sig.signedAt)}, before ${describe(floor)}: an older bundle is refused (a replay or a rollback); to serve an older config, sign it again (\`mtlsgate compile --sign\`)`,
    );
  if (sig.signedAt === floor.signedAt && floor.digest !== null && sig.digest !== floor.digest)
    throw new SignatureError(
      `bundle ${short(sig.digest)} was signed at ${iso(sig.signedAt)}, the very time of ${describe(floor)} but with another digest: neither is newer, so the one taken first stays; sign the new bundle again`,
    );
}

/** `--bundle-not-before TIME`: an ISO-8601 instant with a zone (2026-12-04T19:00:00Z). Throws Error with a message. */
export function parseNotBefore(text: string): number {
  const t = text.trim();
  // A zone is required: a bare local time would mean another instant on a host in another zone.
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,3})?)?(Z|[+-]\d\d:\d\d)$/.test(t) || Number.isNaN(Date.parse(t)))
    throw new Error(`must be an ISO-8601 time with a zone, e.g. 2026-12-04T19:00:00Z, not ${JSON.stringify(text)}`);
  return Date.parse(t);
}
