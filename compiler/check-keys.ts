// Keys: credentials (certificate and/or token hash, each identifying exactly one key), policy and
// API references, and the effective session: the key's own rights and limits merged with its
// policies' at compile time, so the runtime never merges.
import { checkExpires } from '../bundle/checks.ts';
import { KEY_DEFAULTS } from '../bundle/defaults.ts';
import type { BundleApi, BundleKey, CertMatch, Fingerprint } from '../bundle/types.ts';
import { parsePin } from '../cert/fingerprint.ts';
import { type CertInfo, type CertLoader, isInlinePem } from './certs.ts';
import { checkAccessRights, mergeAccessRights } from './check-rights.ts';
import type { DiagnosticLog, Site } from './diagnostics.ts';
import { excerpt } from './excerpt.ts';
import type { KeyTable } from './key-table.ts';
import { uniqueById } from './ids.ts';
import { checkLimits, mostGenerousQuota, mostGenerousRate } from './limits.ts';
import { type CaRegistry, resolveMatch } from './match.ts';
import { type KeyMatcher, reportOverlaps } from './match-overlap.ts';
import type { AccessRightsSpec, KeyDoc, KeySpec, LimitsSpec, PolicyDoc } from './model.ts';
import { locate } from './source.ts';
import { didYouMean } from './suggest.ts';

/** Who owns each credential so far, to report the second key naming one. */
interface Owners {
  /** token SHA-256 -> key id */
  tokens: Map<string, string>;
  /** certificate fingerprint -> key id */
  certs: Map<Fingerprint, string>;
  /** certificate fingerprint -> where its key names it (for the duplicate's related site) */
  certSites: Map<Fingerprint, (string | number)[]>;
}

/** Keys in bundle form (compiler/emit.ts derives the certificate and token indexes from them). */
export interface ResolvedKeys {
  /** Records by id; or, from worker threads (compiler/parallel-keys.ts), the same keys as columns. */
  keys: Map<string, BundleKey> | KeyTable;
  /** key id -> its certificate_match */
  matches: Map<string, CertMatch>;
  /** notAfter (ms) of every key certificate given as a PEM */
  notAfter: Map<Fingerprint, number>;
  /** Every certificate_match, for the overlap check (compiler/key-cache.ts re-runs it across files). */
  matchers: KeyMatcher[];
}

/** The part of a key that comes from merging it with its policies, and what follows from it. */
interface Session extends Pick<BundleKey, 'policies' | 'access_rights' | 'rate' | 'quota' | 'on_limiter_error'> {
  /** API ids granted. */
  granted: string[];
  /** Granted APIs where a certificate alone is not enough (token auth without use_certificate). */
  tokenOnlyApis: string[];
}

function siteOf(key: KeyDoc, path: (string | number)[]): Site {
  return { file: key.doc.file, offset: locate(key.doc.root, path) };
}

/** A policy's checked rights, computed once however many keys apply it. */
type PolicyRights = Map<string, AccessRightsSpec>;

/**
 * One entry of a key's `certificate` / `certificates[i]` (at `path`): its fingerprint, or null
 * when unusable (reported). A SHA-256 pin (cert/fingerprint.ts `parsePin`) is taken as it is (a migration from another gateway
 * often has only the hash); a PEM must hold exactly one leaf, which is checked for expiry.
 */
function keyCertificate(
  key: KeyDoc,
  entry: string,
  path: (string | number)[],
  certs: CertLoader,
  log: DiagnosticLog,
): { fingerprint: Fingerprint; notAfter: number | null } | null {
  const site: Site = { file: key.doc.file, offset: locate(key.doc.root, path) };
  const label = isInlinePem(entry) ? 'the inline certificate' : entry;
  const pin = parsePin(entry);
  if (pin !== null) {
    if (pin.ok) return { fingerprint: pin.fingerprint, notAfter: null };
    log.report('E_FIELD_VALUE', site, `${path.join('.').replace(/\.(\d+)/g, '[$1]')} ${excerpt(entry)} ${pin.problem}`);
    return null;
  }
  const loaded: CertInfo[] | null = certs.load(entry, site, key.doc.file.absPath);
  if (!loaded) return null;
  if (loaded.length > 1) {
    log.report('E_KEY_CERT_CHAIN', site, `${label} holds ${loaded.length} certificates; a key is identified by exactly one (its leaf certificate)`);
    return null;
  }
  if (loaded[0].isCa) {
    log.report(
      'E_KEY_CERT_CA',
      site,
      `${label} is a CA certificate (basicConstraints cA); a key is identified by a client certificate. To trust every certificate this CA issued, list it in an API's client_certificates`,
    );
    return null;
  }
  return { fingerprint: loaded[0].fingerprint, notAfter: loaded[0].notAfter.getTime() };
}

/** The entries of `certificate` (one) or `certificates` (several), each with its YAML path. */
function certificateEntries(spec: KeySpec): [string, (string | number)[]][] {
  if (spec.certificates !== undefined) return spec.certificates.map((entry, i) => [entry, ['certificates', i]]);
  return spec.certificate === undefined ? [] : [[spec.certificate, ['certificate']]];
}

/** The key's expiry as the bundle holds it (normalised ISO-8601), or null after reporting why the runtime could not read it. */
function expiryOf(expires: string, site: Site, log: DiagnosticLog): { value: string | null } {
  const checked = checkExpires(expires);
  if (checked.ok) return { value: new Date(checked.value).toISOString() };
  log.report('E_FIELD_VALUE', site, `expires ${excerpt(expires)} ${checked.problem} the gateway can read; write it as 2027-01-01T00:00:00Z`);
  return { value: null };
}

/**
 * The merged sessions and policy rights resolveKeys computed, for another call against the same
 * policies and APIs (a worker of compiler/parallel-keys.ts resolves many files): keys of every
 * file then share their session's objects, which the worker sends as JSON once per object.
 */
export interface SessionCache {
  sessions: Map<string, Session>;
  policyRights: PolicyRights;
}

export function sessionCache(): SessionCache {
  return { sessions: new Map(), policyRights: new Map() };
}

/** `broken`: ids of APIs and policies that failed the schema (they exist; references to them are not errors). */
export function resolveKeys(
  docs: KeyDoc[],
  policies: ReadonlyMap<string, Pick<PolicyDoc, 'spec'>>,
  apis: Map<string, BundleApi>,
  broken: { api: ReadonlySet<string>; policy: ReadonlySet<string> },
  certs: CertLoader,
  cas: CaRegistry,
  now: Date,
  log: DiagnosticLog,
  checkOverlaps = true,
  cache: SessionCache = sessionCache(),
): ResolvedKeys & { keys: Map<string, BundleKey> } {
  const out = {
    keys: new Map<string, BundleKey>(),
    matches: new Map<string, CertMatch>(),
    notAfter: new Map<Fingerprint, number>(),
    matchers: [] as KeyMatcher[],
  };
  const owners: Owners = { tokens: new Map(), certs: new Map(), certSites: new Map() };
  const matchers = out.matchers;
  const policyRights = cache.policyRights;
  const rightsOf = (p: Pick<PolicyDoc, 'spec'>) => {
    let r = policyRights.get(p.spec.id);
    if (!r) {
      // Already reported by checkPolicies; filter silently here.
      r = Object.fromEntries(Object.entries(p.spec.access_rights ?? {}).filter(([id]) => apis.has(id)));
      policyRights.set(p.spec.id, r);
    }
    return r;
  };

  // Most keys only apply policies: their merged session depends on the policy list alone, so
  // it is computed once per distinct list and shared (the bundle is read-only data).
  const sessions = cache.sessions;
  const sessionOf = (applied: Pick<PolicyDoc, 'spec'>[], spec: KeySpec, ownRights: AccessRightsSpec): Session => {
    const own = Object.keys(ownRights).length > 0 || spec.rate !== undefined || spec.quota_max !== undefined;
    const cacheKey = own ? null : applied.map((p) => p.spec.id).join('\n');
    const cached = cacheKey === null ? undefined : sessions.get(cacheKey);
    if (cached) return cached;
    const limits: LimitsSpec[] = [spec, ...applied.map((p) => p.spec)];
    const accessRights = mergeAccessRights([ownRights, ...applied.map(rightsOf)]);
    const granted = Object.keys(accessRights);
    const session: Session = {
      access_rights: accessRights,
      policies: [...new Set(applied.map((p) => p.spec.id))].sort(),
      quota: mostGenerousQuota(limits),
      rate: mostGenerousRate(limits),
      // The strictest wins: one policy asking for deny on a limiter outage denies the key.
      on_limiter_error: applied.some((p) => p.spec.on_limiter_error === 'deny') ? 'deny' : undefined,
      granted,
      tokenOnlyApis: granted.filter((id) => !apis.get(id)!.use_certificate && !apis.get(id)!.use_keyless),
    };
    if (cacheKey !== null) sessions.set(cacheKey, session);
    return session;
  };
  const keyDocs = uniqueById(docs, 'key', log);

  for (const key of keyDocs.values()) {
    const { doc, spec } = key;
    const at = (path: (string | number)[], atKey = false): Site => ({ file: doc.file, offset: locate(doc.root, path, atKey) });
    const entries = certificateEntries(spec);
    if (spec.certificate !== undefined && spec.certificates !== undefined) {
      log.report(
        'E_KEY_CERTIFICATES_BOTH',
        at(['certificates'], true),
        `key "${spec.id}" has both certificate and certificates: list every certificate under certificates (certificate is its one-item form)`,
        [{ site: at(['certificate'], true), message: 'certificate is set here' }],
      );
    }
    if (entries.length === 0 && spec.certificate_match === undefined && spec.token_sha256 === undefined) {
      log.report(
        'E_KEY_NO_CREDENTIAL',
        at(['id']),
        `key "${spec.id}" has neither a certificate, a certificate_match nor a token_sha256, so no request can ever use it`,
      );
    }
    let match: CertMatch | null = null;
    if (spec.certificate_match !== undefined) {
      match = resolveMatch(spec.certificate_match, (f) => at(['certificate_match', f]), doc.file.absPath, certs, cas, null, log);
      if (match !== null) {
        out.matches.set(spec.id, match);
        matchers.push({ key: spec.id, match, site: at(['certificate_match'], true) });
      }
    }

    const fingerprints: Fingerprint[] = [];
    for (const [entry, path] of entries) {
      const cert = keyCertificate(key, entry, path, certs, log);
      if (cert === null || fingerprints.includes(cert.fingerprint)) continue;
      const fingerprint = cert.fingerprint;
      if (cert.notAfter !== null) out.notAfter.set(fingerprint, cert.notAfter);
      fingerprints.push(fingerprint);
      const first = owners.certs.get(fingerprint);
      if (first === undefined) {
        owners.certs.set(fingerprint, spec.id);
        owners.certSites.set(fingerprint, path);
      } else {
        log.report(
          'E_DUPLICATE_CERT',
          at(path),
          `keys "${first}" and "${spec.id}" use the same certificate (sha256:${fingerprint}); a certificate identifies one key`,
          [{ site: siteOf(keyDocs.get(first)!, owners.certSites.get(fingerprint)!), message: `key "${first}" uses it here` }],
        );
      }
    }

    const token = spec.token_sha256?.toLowerCase() ?? null;
    if (token) {
      const first = owners.tokens.get(token);
      if (first === undefined) owners.tokens.set(token, spec.id);
      else {
        log.report('E_DUPLICATE_TOKEN', at(['token_sha256']), `keys "${first}" and "${spec.id}" have the same token_sha256; a token identifies one key`, [
          { site: siteOf(keyDocs.get(first)!, ['token_sha256']), message: `key "${first}" has it here` },
        ]);
      }
    }

    const applied: Pick<PolicyDoc, 'spec'>[] = [];
    let brokenReference = false;
    (spec.apply_policies ?? []).forEach((name, i) => {
      const p = policies.get(name);
      if (p) {
        applied.push(p);
        return;
      }
      brokenReference = true;
      if (!broken.policy.has(name))
        log.report(
          'E_UNKNOWN_POLICY',
          at(['apply_policies', i]),
          `key "${spec.id}" applies policy ${excerpt(name)}, which does not exist${didYouMean(name, policies.keys())}`,
        );
    });
    const ownRights = checkAccessRights(spec.access_rights, doc, `key "${spec.id}"`, apis, broken.api, log);
    if (Object.keys(ownRights).length < Object.keys(spec.access_rights ?? {}).length) brokenReference = true;
    checkLimits(spec, doc, log);

    const session = sessionOf(applied, spec, ownRights);
    // The schema's date-time format admits what Date cannot read (a leap second, 23:59:60Z): the
    // runtime would refuse the key, so it is an error here, at the value.
    const expires = spec.expires === undefined ? { value: KEY_DEFAULTS.expires } : expiryOf(spec.expires, at(['expires']), log);
    // Fields in sorted order, as in every record the compiler builds.
    const bundleKey: BundleKey = {
      access_rights: session.access_rights,
      certificate_match: match,
      certificates: fingerprints.sort(),
      expires: expires.value,
      id: spec.id,
      is_inactive: spec.is_inactive ?? KEY_DEFAULTS.is_inactive,
      // Only when set: bundles without it keep their bytes and digest.
      ...(session.on_limiter_error === 'deny' ? { on_limiter_error: 'deny' as const } : {}),
      policies: session.policies,
      quota: session.quota,
      rate: session.rate,
      token_sha256: token,
    };

    // With a broken reference the key's rights are unknown, and that error says enough.
    if (session.granted.length === 0 && !brokenReference) {
      log.report(
        'W_KEY_UNREACHABLE',
        at(['id']),
        `key "${spec.id}" grants no API (no access_rights and no policy granting one): every request with it gets 403`,
      );
    }
    if ((entries.length > 0 || match !== null) && token === null) {
      for (const apiId of session.tokenOnlyApis) {
        log.report(
          'W_CERT_NEEDS_TOKEN',
          at([entries.length > 0 ? entries[0][1][0] : 'certificate_match']),
          `key "${spec.id}" has a certificate but no token, and is granted API "${apiId}", which does not set auth.use_certificate: there the certificate alone gets 401 "Authorization field missing"`,
        );
      }
    }
    if (bundleKey.expires !== null && Date.parse(bundleKey.expires) <= now.getTime()) {
      log.report(
        'W_KEY_EXPIRED',
        at(['expires']),
        `key "${spec.id}" expired on ${bundleKey.expires}: requests with it get 401 "Key has expired, please renew"`,
      );
    }

    out.keys.set(spec.id, bundleKey);
  }
  // A compile cache resolves one file at a time and checks overlaps across all of them itself.
  if (checkOverlaps) reportOverlaps(matchers, log);
  return out;
}
