// Two keys whose certificate_match can match the same certificate: at runtime that certificate
// would name two keys (and be refused), so the compiler reports the pair, with both positions.
// Matchers only overlap under the same issuer, and when their values overlap: every field both
// constrain can hold one value matching both, and either they share a field or one constrains
// a subset of the other's fields (an issuer-only rule overlaps everything under its CA). Rules on
// disjoint fields (one by subject_cn, one by san_uri) are not an error: only a certificate carrying
// both values matches both, and the runtime refuses that one (auth.cert_ambiguous). But the CA can
// issue one (cert-manager and step-ca put a CN and SANs in one certificate), so they are a warning,
// one per pair of field sets under an issuer (naming its first pair of keys and how many more), so
// 100,000 keys make a few warnings, not billions. With 100,000 keys
// pairwise comparison is too slow, so exact matchers are hash-joined on the fields they share,
// and only wildcard matchers (few, by design) are compared with every matcher of their issuer.
import type { CertMatch } from '../bundle/types.ts';
import { count } from '../common/count.ts';
import type { DiagnosticLog, Site } from './diagnostics.ts';
import { MATCH_FIELDS, type MatchField, WILDCARD_STOPS } from '../bundle/match-fields.ts';

export interface KeyMatcher {
  key: string;
  match: CertMatch;
  site: Site;
}

/** Reports beyond this many pairs would bury the first ones; the last report says how many more. */
const MAX_REPORTS = 50;

function fieldsOf(m: CertMatch): MatchField[] {
  return MATCH_FIELDS.filter((f) => m[f] !== null);
}

function hasWildcard(m: CertMatch): boolean {
  return MATCH_FIELDS.some((f) => m[f]?.includes('*'));
}

/** Tokens: segments split by the field's stop characters, the stops kept (they must line up). */
function tokens(field: MatchField, value: string): string[] {
  const stops = WILDCARD_STOPS[field];
  if (stops === '') return [value];
  return value.split(new RegExp(`([${stops.replace(/[\\\]^-]/g, '\\$&')}])`));
}

/** Could one string match both segment patterns (each holding `*` = one or more characters)? */
function segmentsOverlap(a: string, b: string): boolean {
  const aw = a.includes('*');
  const bw = b.includes('*');
  if (!aw && !bw) return a === b;
  if (aw && bw) {
    const pa = a.slice(0, a.indexOf('*'));
    const pb = b.slice(0, b.indexOf('*'));
    const sa = a.slice(a.lastIndexOf('*') + 1);
    const sb = b.slice(b.lastIndexOf('*') + 1);
    return (pa.startsWith(pb) || pb.startsWith(pa)) && (sa.endsWith(sb) || sb.endsWith(sa));
  }
  const [glob, literal] = aw ? [a, b] : [b, a];
  const source = glob
    .split('*')
    .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.+');
  return new RegExp(`^${source}$`).test(literal);
}

export function valuesOverlap(field: MatchField, a: string, b: string): boolean {
  const ta = tokens(field, a);
  const tb = tokens(field, b);
  if (ta.length !== tb.length) return false;
  for (let i = 0; i < ta.length; i++) if (!segmentsOverlap(ta[i], tb[i])) return false;
  return true;
}

/** Do two field sets make rules comparable: a common field, or one a subset of the other. */
function comparable(a: MatchField[], b: MatchField[]): boolean {
  const common = a.filter((f) => b.includes(f)).length;
  return common > 0 || a.length === 0 || b.length === 0;
}

export function matchersOverlap(a: CertMatch, b: CertMatch): boolean {
  if (a.issuer !== b.issuer || !comparable(fieldsOf(a), fieldsOf(b))) return false;
  for (const f of MATCH_FIELDS) {
    const va = a[f];
    const vb = b[f];
    if (va !== null && vb !== null && !valuesOverlap(f, va, vb)) return false;
  }
  return true;
}

export function reportOverlaps(matchers: KeyMatcher[], log: DiagnosticLog): void {
  let reported = 0;
  let suppressed = 0;
  const seen = new Set<string>();
  const report = (a: KeyMatcher, b: KeyMatcher) => {
    const [first, second] = a.key < b.key ? [a, b] : [b, a];
    const pair = `${first.key}\n${second.key}`;
    if (seen.has(pair)) return;
    seen.add(pair);
    if (reported >= MAX_REPORTS) {
      suppressed++;
      return;
    }
    reported++;
    log.report(
      'E_MATCH_OVERLAP',
      second.site,
      `keys "${first.key}" and "${second.key}" have certificate_match rules that can match the same certificate (same issuer, overlapping values): at runtime such a certificate would be refused; make the rules disjoint`,
      [{ site: first.site, message: `key "${first.key}" matches here` }],
    );
  };

  const byIssuer = new Map<string, KeyMatcher[]>();
  for (const m of matchers) {
    const list = byIssuer.get(m.match.issuer);
    if (list) list.push(m);
    else byIssuer.set(m.match.issuer, [m]);
  }
  for (const list of byIssuer.values()) {
    const exact = list.filter((m) => !hasWildcard(m.match));
    const wild = list.filter((m) => hasWildcard(m.match));
    // Wildcards against everything under the issuer (bounded by the number of wildcard rules).
    for (const w of wild) for (const other of list) if (other !== w && matchersOverlap(w.match, other.match)) report(w, other);
    // Exact rules, grouped by the set of fields they constrain, hash-joined on the common fields.
    const groups = new Map<string, { fields: MatchField[]; items: KeyMatcher[] }>();
    for (const m of exact) {
      const fields = fieldsOf(m.match);
      const name = fields.join(',');
      const g = groups.get(name);
      if (g) g.items.push(m);
      else groups.set(name, { fields, items: [m] });
    }
    const all = [...groups.values()];
    for (let i = 0; i < all.length; i++) {
      for (let j = i; j < all.length; j++) {
        if (!comparable(all[i].fields, all[j].fields)) continue;
        const common = all[i].fields.filter((f) => all[j].fields.includes(f));
        const seenValues = new Map<string, KeyMatcher>();
        const keyOf = (m: KeyMatcher) => common.map((f) => m.match[f]).join('\0');
        for (const m of all[i].items) {
          const k = keyOf(m);
          const first = seenValues.get(k);
          if (first === undefined) seenValues.set(k, m);
          else if (i === j) report(first, m);
        }
        if (i === j) continue;
        for (const m of all[j].items) {
          const first = seenValues.get(keyOf(m));
          if (first !== undefined) report(first, m);
        }
      }
    }
  }
  reportDisjointFields(byIssuer, log);
  if (suppressed > 0) {
    const last = matchers[0];
    log.report(
      'E_MATCH_OVERLAP',
      last.site,
      `and ${count(suppressed, 'more pair', 'more pairs')} of keys whose certificate_match rules overlap (only the first ${MAX_REPORTS} are listed)`,
    );
  }
}

/**
 * W_MATCH_FIELDS_DIFFER: under each issuer, each two groups of rules whose field sets share no
 * field (neither empty: an issuer-only rule is an E_MATCH_OVERLAP above). A certificate holding a
 * value of each can match both rules whatever the values, so the pair is reported once, with
 * the first key of each group at its position.
 */
function reportDisjointFields(byIssuer: ReadonlyMap<string, KeyMatcher[]>, log: DiagnosticLog): void {
  let reported = 0;
  for (const list of byIssuer.values()) {
    const groups = new Map<string, { fields: MatchField[]; items: KeyMatcher[] }>();
    for (const m of list) {
      const fields = fieldsOf(m.match);
      if (fields.length === 0) continue;
      const g = groups.get(fields.join(','));
      if (g) g.items.push(m);
      else groups.set(fields.join(','), { fields, items: [m] });
    }
    const all = [...groups.values()];
    for (let i = 0; i < all.length; i++) {
      for (let j = i + 1; j < all.length; j++) {
        if (all[i].fields.some((f) => all[j].fields.includes(f))) continue;
        if (reported++ >= MAX_REPORTS) return;
        const [a, b] = [all[i].items[0], all[j].items[0]];
        const pairs = all[i].items.length * all[j].items.length;
        const more = pairs > 1 ? ` (and ${count(pairs - 1, 'more pair', 'more pairs')} of keys matched on these fields under this issuer)` : '';
        const rule = (m: KeyMatcher) =>
          fieldsOf(m.match)
            .map((f) => `${f} ${m.match[f]}`)
            .join(' and ');
        log.report(
          'W_MATCH_FIELDS_DIFFER',
          b.site,
          `keys "${a.key}" (${rule(a)}) and "${b.key}" (${rule(b)}) match certificates of the same issuer on different fields: a certificate with both values matches both and is refused at runtime (401 auth.cert_ambiguous)${more}`,
          [{ site: a.site, message: `key "${a.key}" matches here` }],
        );
      }
    }
  }
}
