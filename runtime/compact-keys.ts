// Read access to a compact bundle (runtime/bundle-worker-compact.ts): a key by id, by
// certificate fingerprint or by token hash, each one hash-slot lookup; a key's record is made
// on demand from its columns and its interned session (shared objects, nothing copied).
import { BUNDLE_FORMAT, type Bundle, type BundleKey, type WireContent } from '../bundle/types.ts';
import { expandContent, sessionKey } from '../bundle/wire.ts';
import { type CompactBundle, expandedRevocation } from './bundle-worker-compact.ts';
import { findInSlots, hashHex, hashString } from './hash-slots.ts';

const HEX64 = 64;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class CompactKeys {
  private readonly ids: Buffer;
  private readonly fingerprints: Buffer;
  private readonly tokens: Buffer;
  private readonly inactive: ReadonlySet<string>;

  constructor(private readonly c: CompactBundle) {
    this.ids = asBuffer(c.keyIds);
    this.fingerprints = asBuffer(c.certFingerprints);
    this.tokens = asBuffer(c.tokenHashes);
    this.inactive = new Set(c.inactive);
  }

  /** Number of keys. */
  get count(): number {
    return this.c.keyIdEnds.length;
  }

  idAt(k: number): string {
    return this.ids.toString('utf8', k === 0 ? 0 : this.c.keyIdEnds[k - 1], this.c.keyIdEnds[k]);
  }

  fingerprintAt(i: number): string {
    return this.fingerprints.toString('latin1', i * HEX64, (i + 1) * HEX64);
  }

  private tokenAt(i: number): string {
    return this.tokens.toString('latin1', i * HEX64, (i + 1) * HEX64);
  }

  /** The record of key row `k`. */
  keyAt(k: number): BundleKey {
    const c = this.c;
    const id = this.idAt(k);
    const s = c.sessions[c.keySession[k]];
    const certificates: string[] = [];
    for (let j = c.keyCertStart[k]; j < c.keyCertStart[k + 1]; j++) certificates.push(this.fingerprintAt(c.keyCertList[j]));
    return sessionKey(s, {
      certificate_match: Object.hasOwn(c.matches, id) ? c.matches[id] : null,
      certificates,
      expires: Object.hasOwn(c.expires, id) ? c.expires[id] : null,
      id,
      is_inactive: this.inactive.has(id),
      token_sha256: c.keyToken[k] < 0 ? null : this.tokenAt(c.keyToken[k]),
    });
  }

  /** Row of the key `id`, or -1. */
  rowOf(id: string): number {
    return findInSlots(this.c.keyIdSlots, hashString(id), (k) => this.idAt(k) === id);
  }

  key(id: string): BundleKey | undefined {
    const k = this.rowOf(id);
    return k < 0 ? undefined : this.keyAt(k);
  }

  /** Index of a fingerprint in the certificate table, or -1. */
  certIndex(fingerprint: string): number {
    if (fingerprint.length !== HEX64) return -1;
    return findInSlots(this.c.certSlots, hashHex(fingerprint), (i) => this.fingerprintAt(i) === fingerprint);
  }

  /** Id of the key a certificate identifies (undefined: unknown fingerprint or no key). */
  keyIdByCert(fingerprint: string): string | undefined {
    const i = this.certIndex(fingerprint);
    return i < 0 ? undefined : this.keyIdOfCert(i);
  }

  keyIdByToken(sha256Hex: string): string | undefined {
    if (sha256Hex.length !== HEX64) return undefined;
    const i = findInSlots(this.c.tokenSlots, hashHex(sha256Hex), (t) => this.tokenAt(t) === sha256Hex);
    return i < 0 ? undefined : this.idAt(this.c.tokenKeys[i]);
  }

  /** The full parsed bundle (slow for big bundles: only for callers that really need it). */
  toBundle(): Bundle {
    const c = this.c;
    return { format: BUNDLE_FORMAT, digest: c.digest, signature: c.signature, content: expandContent(this.toWire()) };
  }

  /** The content in its file form again. */
  toWire(): WireContent {
    const c = this.c;
    const ids: string[] = [];
    for (let k = 0; k < this.count; k++) ids.push(this.idAt(k));
    const certNotAfter: (number | null)[] = new Array(c.certKeys.length).fill(null);
    const notAfter: Record<string, number> = {};
    for (let e = 0; e < c.expiryOrder.length; e++) {
      const i = c.expiryOrder[e];
      if (i >= 0) certNotAfter[i] = c.expiryTimes[e];
      else notAfter[c.otherExpiring[-i - 1]] = c.expiryTimes[e];
    }
    const wire: WireContent = {
      apis: c.apis,
      cas: c.cas,
      revocation: expandedRevocation(c),
      routes: c.routes,
      matches: c.matches,
      sessions: c.sessions,
      keys: { ids, session: [...c.keySession], expires: c.expires, inactive: c.inactive },
      certs: {
        hex: this.fingerprints.toString('latin1'),
        key: [...c.certKeys],
        not_after: certNotAfter,
        apis: Object.fromEntries(c.certApis.map(([i, apis]) => [this.fingerprintAt(i), apis])),
      },
      tokens: { hex: this.tokens.toString('latin1'), key: [...c.tokenKeys] },
      not_after: notAfter,
    };
    return wire;
  }

  /** Fingerprint of entry `e` of this bundle's expiry list (a certificate of the table, or a CA's). */
  expiringAt(e: number): string {
    const order = this.c.expiryOrder[e];
    return order >= 0 ? this.fingerprintAt(order) : this.c.otherExpiring[-order - 1];
  }

  /** Id of the key certificate `i` (of this table) identifies, or undefined (a pin only). */
  keyIdOfCert(i: number): string | undefined {
    const k = this.c.certKeys[i];
    return k < 0 ? undefined : this.idAt(k);
  }

  /** Id of the key of token hash `i` (of this table). */
  keyIdOfToken(i: number): string {
    return this.idAt(this.c.tokenKeys[i]);
  }

  tokenHashAt(i: number): string {
    return this.tokenAt(i);
  }
}
