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

/**
 * How far ahead of this gateway's clock a signing time may be. A bundle from the future would
 * raise the floor to that future time, and every bundle signed later on a correct clock would be
 * refused until then (section 30): a signer with a wrong clock is refused at once instead, loudly,
 * while the bundle serving stays. NTP keeps honest clocks within a second; five minutes is the
 * skew Kerberos tolerates.
 */
export const MAX_SIGNED_AHEAD_MS = 5 * 60_000;
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
 * - a v1 signature (no time) once there is a floor: it cannot be ordered at all;
 * - signed more than MAX_SIGNED_AHEAD_MS after `now`: the signer's clock runs ahead (or this
 *   host's behind), with or without a floor, since taking it would set one in the future.
 */
export function checkOrder(sig: VerifiedSignature, floor: BundleFloor | null, now = Date.now()): void {
  if (sig.signedAt !== null && sig.signedAt > now + MAX_SIGNED_AHEAD_MS)
    throw new SignatureError(
      `bundle ${short(sig.digest)} was signed at ${iso(sig.signedAt)}, ${aheadBy(sig.signedAt - now)} ahead of this gateway's clock (${iso(now)}): the signer's clock runs ahead, or this host's is behind; taken, it would refuse every bundle signed on a correct clock until then, so it is refused (more than ${MAX_SIGNED_AHEAD_MS / 60_000} minutes ahead); fix the clock and sign it again`,
    );
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

function aheadBy(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  return minutes < 120 ? `${minutes} minutes` : `${Math.round(minutes / 60)} hours`;
}

/**
 * `--bundle-not-before TIME`: an ISO-8601 instant with a zone (2026-12-04T19:00:00Z), not in the
 * future (a floor ahead of now refuses every bundle signed until then). Throws Error with a message.
 */
export function parseNotBefore(text: string, now = Date.now()): number {
  const t = text.trim();
  // A zone is required: a bare local time would mean another instant on a host in another zone.
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,3})?)?(Z|[+-]\d\d:\d\d)$/.test(t) || Number.isNaN(Date.parse(t)))
    throw new Error(`must be an ISO-8601 time with a zone, e.g. 2026-12-04T19:00:00Z, not ${JSON.stringify(text)}`);
  const at = Date.parse(t);
  if (at > now + MAX_SIGNED_AHEAD_MS)
    throw new Error(
      `${t} is ${aheadBy(at - now)} in the future (this host's clock says ${iso(now)}): every bundle signed before it would be refused; give the signing time of the bundle to serve, or earlier`,
    );
  return at;
}
