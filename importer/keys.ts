// Tyk key sessions (the JSON of GET /tyk/keys/{key}, saved as <key id>.json, or a Dashboard
// key {"key_id", "key_hash", "data": {session}}) as kind: key. Tyk stores a key under a hash of
// its token; only a SHA-256 hash (64 hex digits; Tyk's hash_key_function sha256) is the
// token_sha256 mtlsgate needs. A murmur hash cannot be turned back into anything: such a key
// needs a new token, and without a certificate it is written commented out (check skips it).
// Where Tyk does not hash (tyk.conf hash_keys: false) the key id is the token itself, and only
// its SHA-256 is written.
import { createHash } from 'node:crypto';
import { isAbsolute } from 'node:path';
import type { KeySpec } from '../compiler/model.ts';
import { certEntry } from './cert-ids.ts';
import { relocatedCertPath } from './cert-files.ts';
import type { ImportContext } from './context.ts';
import { reportLeftovers } from './leftovers.ts';
import type { PolicyIndex } from './policies.ts';
import { checkCombination } from './partitions.ts';
import { ptr } from './report.ts';
import { convertLimits, convertRights } from './rights.ts';
import { bool, isObject, isUnset, num, str, type JsonObject } from './values.ts';

const HANDLED = new Set([
  'access_rights',
  'apply_policies',
  'apply_policy_id',
  'rate',
  'per',
  'quota_max',
  'quota_renewal_rate',
  'certificate',
  'expires',
  'is_inactive',
  'alias',
]);
/** Runtime state Tyk keeps in the session, not configuration. */
const SILENT = new Set([
  'allowance',
  'last_check',
  'quota_remaining',
  'quota_renews',
  'date_created',
  'last_updated',
  'org_id',
  'id_extractor_deadline',
  'data_expires',
  'key_id',
]);
const OFF_WHEN_NEGATIVE = ['throttle_interval', 'throttle_retry_limit', 'max_query_depth'];
const MURMUR_BY_LENGTH: Record<number, string> = { 8: 'murmur32', 16: 'murmur64', 32: 'murmur128' };

export function isKeyWrapper(o: JsonObject): boolean {
  return isObject(o.data) && ('key_id' in o || 'key_hash' in o || 'key' in o);
}
export function isSession(o: JsonObject): boolean {
  return 'apply_policies' in o || 'allowance' in o || 'last_check' in o || 'quota_remaining' in o || 'certificate' in o || 'alias' in o;
}

/** A Tyk token in its JSON form (base64 of {"org","id","h"}); a hash never looks like this. */
function isJsonToken(s: string): boolean {
  if (!s.startsWith('ey')) return false;
  try {
    const t = JSON.parse(Buffer.from(s, 'base64').toString('utf8'));
    return isObject(t) && 'id' in t;
  } catch {
    return false;
  }
}

/** The last moment a JavaScript Date can hold (year 275,760). */
const MAX_DATE_MS = 8.64e15;

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/**
 * `session`: the session object; `keyRef`: {value, isHash, pointer} naming the key (an explicit
 * key_hash, else the key id, else the file name).
 */
export function convertKey(
  ctx: ImportContext,
  policies: PolicyIndex,
  session: JsonObject,
  sourceFile: string,
  base: string,
  keyRef: { value: string; explicitHash: boolean; pointer: string },
): void {
  const alias = str(session.alias);
  const isHash = keyRef.explicitHash || (ctx.hashKeys ?? !isJsonToken(keyRef.value));
  // A key named by its token (hash_keys: false) has the token in its file name: never print it.
  const file = isHash ? sourceFile : sourceFile.replaceAll(keyRef.value, '<token>');
  // Never derive an id from a token: the id is a digest of what names the key unless it has an alias.
  const id = ctx.keyIds.add(alias || `key-${sha256(keyRef.value).slice(0, 12)}`, file, alias ? ptr(base, 'alias') : keyRef.pointer);
  const spec: KeySpec = { kind: 'key', id };
  let disabledBecause: string | undefined;

  const cert = str(session.certificate);
  if (cert) {
    const e = certEntry(cert);
    if ('pin' in e) spec.certificate = e.pin;
    else if ('path' in e) spec.certificate = isAbsolute(e.path) ? relocatedCertPath(ctx, e.path, file, ptr(base, 'certificate')) : e.path;
    else ctx.report.drop(file, ptr(base, 'certificate'), `certificate ${JSON.stringify(cert)} not converted: not a Tyk certificate id`, 'wider');
  }

  let tokenProblem: string | undefined;
  if (!isHash) {
    spec.token_sha256 = sha256(keyRef.value);
    ctx.report.note(file, keyRef.pointer, 'the key id is the token itself (tyk.conf hash_keys: false): only its SHA-256 is written');
  } else if (/^[0-9a-fA-F]{64}$/.test(keyRef.value)) {
    spec.token_sha256 = keyRef.value.toLowerCase();
  } else {
    const fn = MURMUR_BY_LENGTH[keyRef.value.length] ?? 'a hash function other than sha256';
    tokenProblem = `Tyk stored this key's token hashed with ${fn}: mtlsgate needs its SHA-256, which cannot be derived from that hash; the key needs a new token (mtlsgate token, then set token_sha256)`;
  }
  if (tokenProblem !== undefined) {
    if (spec.certificate) ctx.report.drop(file, keyRef.pointer, `token not converted: ${tokenProblem}. Its certificate still identifies it`);
    else {
      ctx.report.drop(file, keyRef.pointer, `key not activated: ${tokenProblem}. Written commented out`);
      disabledBecause = tokenProblem;
    }
  }

  const applied: string[] = [];
  const rawPolicies = Array.isArray(session.apply_policies) ? session.apply_policies : [];
  const legacy = str(session.apply_policy_id);
  const named = [...rawPolicies.filter((p): p is string => typeof p === 'string'), ...(legacy && !rawPolicies.includes(legacy) ? [legacy] : [])];
  named.forEach((tykPolicy, i) => {
    const pid = policies.ids.get(tykPolicy);
    const at = i < rawPolicies.length ? ptr(base, 'apply_policies', i) : ptr(base, 'apply_policy_id');
    if (pid === undefined) ctx.report.drop(file, at, `policy ${JSON.stringify(tykPolicy)} not converted: it is not among the imported policies`);
    else if (!applied.includes(pid)) applied.push(pid);
  });
  if (named.length > 0) {
    // With policies, Tyk recomputes the session's rights and limits from them: the session's own
    // copies are derived values, not configuration.
    if (applied.length > 0) spec.apply_policies = applied;
  } else {
    const rights = convertRights(ctx, file, ptr(base, 'access_rights'), session.access_rights, { kind: 'key', id });
    if (rights) spec.access_rights = rights;
    Object.assign(spec, convertLimits(ctx, file, base, session));
  }

  // Tyk: a Unix time in seconds; 0 (or less) never expires. Anything else that cannot be read as
  // a date (a string, a number past year 275,760, 1e400 read as Infinity) is not dropped: the key
  // would never expire. It is written commented out, like a key without a usable token.
  const expires = session.expires;
  if (typeof expires === 'number' && expires > 0 && expires * 1000 <= MAX_DATE_MS) {
    spec.expires = new Date(Math.trunc(expires) * 1000).toISOString().replace('.000Z', 'Z');
  } else if (!isUnset(expires) && !(typeof expires === 'number' && expires < 0)) {
    const why = `its expires ${typeof expires === 'number' ? String(expires) : JSON.stringify(expires)} is not a Unix time in seconds mtlsgate can write as a date, and without it the key would never expire`;
    ctx.report.drop(file, ptr(base, 'expires'), `key not activated: ${why}. Written commented out`);
    disabledBecause ??= why;
  }
  // How Tyk combines the key's policies: what it refuses the key for, and what mtlsgate's merge grants more (importer/partitions.ts).
  const refusedBecause = checkCombination(
    ctx,
    applied.map((p) => policies.facts.get(p)!),
    file,
    ptr(base, 'apply_policies'),
  );
  if (bool(session.is_inactive)) spec.is_inactive = true;
  else if (applied.some((p) => policies.inactive.has(p))) {
    spec.is_inactive = true;
    ctx.report.note(file, ptr(base, 'apply_policies'), 'written with is_inactive: true: it applies an inactive Tyk policy');
  } else if (refusedBecause !== undefined) {
    spec.is_inactive = true;
    ctx.report.note(file, ptr(base, 'apply_policies'), `written with is_inactive: true: ${refusedBecause}`);
  }
  const silent = new Set(SILENT);
  for (const f of OFF_WHEN_NEGATIVE) if ((num(session[f]) ?? 0) <= 0) silent.add(f);
  reportLeftovers(ctx.report, file, base, session, HANDLED, silent);
  ctx.keys.push({ spec, file, pointer: base, origin: `Tyk key ${alias ? JSON.stringify(alias) : id}`, ...(disabledBecause ? { disabledBecause } : {}) });
}
