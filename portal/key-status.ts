// What a portal key looks like to its owner and to admins: its status (awaiting approval,
// active, switched off, expired, or approved in the directory but not in the bundle yet) and
// each of its certificates (fingerprint, subject, expiry), from the key file, the bundle the
// gateway reads and the clock.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { subjectLine } from '../cert/subject.ts';
import { loadBundle } from '../bundle/read.ts';
import type { BundleContent } from '../bundle/types.ts';
import type { PortalKey } from './key-file.ts';

/**
 * pending: waits for approval. active: on in the config and in the bundle the gateway reads.
 * approved: on in the config, but the bundle has not been recompiled since (approve without --bundle).
 * switched_off: turned off by its owner. expired: the key's `expires`, or every certificate, has passed.
 */
export type KeyStatus = 'pending' | 'active' | 'approved' | 'switched_off' | 'expired';

export interface CertView {
  pem: string;
  /** Lowercase hex SHA-256, or null when the PEM does not parse. */
  fingerprint: string | null;
  subject: string;
  notAfter: string;
  expired: boolean;
}

export type KeyView = PortalKey & { status: KeyStatus; certs: CertView[]; expiresAt: string };

function certView(pem: string, now: number): CertView {
  try {
    const cert = new X509Certificate(pem);
    const notAfter = new Date(cert.validTo);
    return {
      pem,
      fingerprint: fingerprintOf(cert.raw),
      subject: subjectLine(cert),
      notAfter: notAfter.toISOString(),
      expired: notAfter.getTime() <= now,
    };
  } catch {
    return { pem, fingerprint: null, subject: 'unreadable', notAfter: '', expired: false };
  }
}

/** A function that views keys against the bundle at `bundlePath` as it is now (read once). */
export function keyViewer(bundlePath: string, now = Date.now()): (key: PortalKey) => KeyView {
  let live: BundleContent['keys'] | null = null;
  try {
    live = loadBundle(readFileSync(bundlePath)).content.keys;
  } catch {
    // No readable bundle: the file is all we know.
  }
  return (key) => {
    const certs = key.certificates.map((pem) => certView(pem, now));
    // Compared as instants, shown as UTC ISO: `expires` may carry any offset (+05:00), so its
    // text neither sorts against the certificates' nor reads as the "UTC" the pages print.
    const certExpiry = Math.max(...certs.map((c) => (c.notAfter ? Date.parse(c.notAfter) : Number.NaN)).filter((ms) => !Number.isNaN(ms)));
    const keyExpiry = key.expires === '' ? Number.NaN : Date.parse(key.expires);
    const soonest = Math.min(...[keyExpiry, certExpiry].filter((ms) => Number.isFinite(ms)));
    const expiresAt = Number.isFinite(soonest) ? new Date(soonest).toISOString() : '';
    const expired = (key.expires !== '' && Date.parse(key.expires) <= now) || (certs.length > 0 && certs.every((c) => c.expired));
    const status: KeyStatus = key.switchedOff
      ? 'switched_off'
      : key.pending
        ? 'pending'
        : expired
          ? 'expired'
          : live === null || live[key.keyId]?.is_inactive === false
            ? 'active'
            : 'approved';
    return { ...key, status, certs, expiresAt };
  };
}
