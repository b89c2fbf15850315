// What differs between two Tyk definitions of one API id (importer/duplicates.ts): the JSON
// pointers of the fields whose values differ, so the report can say which definition to keep.
// Tyk's exports carry every field, mostly at its zero value, so a field absent on one side and
// unset on the other (false, 0, "", [], {}) is the same field; a difference in bookkeeping (ids,
// timestamps) is listed after the fields that route or admit requests.
import { ptr } from './report.ts';
import { isObject, isUnset } from './values.ts';

export interface FieldDifference {
  pointer: string;
  /** The value in the definition kept and in the one skipped (undefined: absent or unset there). */
  kept: unknown;
  skipped: unknown;
}

/** Fields of a definition that decide routing or who gets in: listed first. */
const DECISIVE =
  /^\/(proxy|domain|domain_disabled|active|use_keyless|use_standard_auth|use_basic_auth|use_oauth2|use_openid|use_mutual_tls_auth|client_certificates|auth|auth_configs|enable_jwt|enable_coprocess_auth|enable_signature_checking|custom_middleware\/auth_check|enable_ip_whitelisting|allowed_ips|enable_ip_blacklisting|blacklisted_ips|version_data\/not_versioned|version_data\/versions\/[^/]+\/extended_paths\/(white_list|black_list|ignored|internal)|x-tyk-api-gateway\/(server|upstream))(\/|$)/;
const BOOKKEEPING = /^\/(id|_id|org_id|last_updated|x-tyk-api-gateway\/info\/dbId)(\/|$)/;

/** Every leaf where `a` and `b` differ (an array that differs is one difference, at the array). */
export function definitionDifferences(a: unknown, b: unknown): FieldDifference[] {
  const out: FieldDifference[] = [];
  const walk = (x: unknown, y: unknown, at: string) => {
    if (isObject(x) && isObject(y)) {
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) walk(x[k], y[k], ptr(at, k));
      return;
    }
    if (isUnset(x) && isUnset(y)) return;
    if (JSON.stringify(x) === JSON.stringify(y)) return;
    out.push({ pointer: at, kept: isUnset(x) ? undefined : x, skipped: isUnset(y) ? undefined : y });
  };
  walk(a, b, '');
  const rank = (d: FieldDifference) => (DECISIVE.test(d.pointer) ? 0 : BOOKKEEPING.test(d.pointer) ? 2 : 1);
  return out.sort((p, q) => rank(p) - rank(q));
}

/** At most this many differences are named; the count of the rest follows. */
const SHOWN = 6;

const shown = (v: unknown) => {
  if (v === undefined) return 'unset';
  const s = JSON.stringify(v);
  return s.length <= 40 ? s : `${s.slice(0, 37)}...`;
};

/** One clause for the report: "identical", or the differing fields with both values. */
export function describeDifferences(diffs: FieldDifference[]): string {
  if (diffs.length === 0) return 'the two definitions are identical (fields left unset count as equal): either can go';
  const decisive = diffs.filter((d) => DECISIVE.test(d.pointer)).length;
  const named = diffs.slice(0, SHOWN).map((d) => `${d.pointer} (${shown(d.kept)} imported, ${shown(d.skipped)} here)`);
  const more = diffs.length > SHOWN ? `, and ${diffs.length - SHOWN} more` : '';
  const only = decisive === 0 ? '; none of them routes or admits requests' : '';
  return `they differ in ${diffs.length} field${diffs.length === 1 ? '' : 's'}${only}: ${named.join(', ')}${more}`;
}
