// Keys identified by subject under a CA (certificate_match), indexed for one lookup per TLS
// connection: by issuer, then by one exact field value (a hash lookup per value the leaf
// carries); rules with only wildcard values sit in a short per-issuer list checked in order.
// The verdict is cached on the connection's identity together with the index it came from, so
// later requests on the connection cost one comparison, and a reload recomputes it once.
import { fieldPattern, MATCH_FIELDS, type MatchField } from '../bundle/match-fields.ts';
import type { CertMatch } from '../bundle/types.ts';
import { type CertFacts, commonNames } from '../cert/cert-facts.ts';
import { AMBIGUOUS, type ClientIdentity, type TrustedCa } from './identity.ts';

/**
 * One field's test: an exact string or an anchored pattern. `svid`: the value is a SPIFFE ID,
 * which only an X.509-SVID carries, and an X.509-SVID has exactly one URI SAN (the SPIFFE
 * X509-SVID spec; go-spiffe and Envoy's SPIFFE validator refuse a leaf with two): a leaf
 * carrying a second URI beside the ID is not that workload's.
 */
type FieldTest = ({ exact: string } | { pattern: RegExp }) & { svid: boolean };

export interface PreparedMatch {
  readonly ca: TrustedCa;
  readonly tests: readonly [MatchField, FieldTest][];
  /** The key it identifies (certificate_match) or null (an API's client_certificates entry). */
  readonly key: string | null;
}

function fieldTest(field: MatchField, value: string): FieldTest {
  const svid = field === 'san_uri' && value.startsWith('spiffe://');
  return value.includes('*') ? { pattern: fieldPattern(field, value), svid } : { exact: value, svid };
}

export function prepareMatch(match: CertMatch, ca: TrustedCa, key: string | null): PreparedMatch {
  const tests: [MatchField, FieldTest][] = [];
  for (const f of MATCH_FIELDS) {
    const v = match[f];
    if (v !== null) tests.push([f, fieldTest(f, v)]);
  }
  return { ca, tests, key };
}

/** The leaf's values for one field (emails: domain lower-cased, as the compiler writes rules). */
function valuesOf(facts: CertFacts, field: MatchField): string[] {
  switch (field) {
    case 'san_uri':
      return facts.sanUris;
    case 'san_dns':
      return facts.sanDns;
    case 'san_email':
      return facts.sanEmails.map((e) => {
        const at = e.lastIndexOf('@');
        return at < 0 ? e : e.slice(0, at) + e.slice(at).toLowerCase();
      });
    case 'subject_cn':
      return commonNames(facts);
  }
}

function passes(test: FieldTest, values: readonly string[]): boolean {
  if (test.svid && values.length !== 1) return false;
  if ('exact' in test) return values.includes(test.exact);
  return values.some((v) => test.pattern.test(v));
}

/** Every field of the rule holds for the leaf, and the leaf chains to the rule's CA (path validation). */
export function matches(rule: PreparedMatch, identity: ClientIdentity, now: number): boolean {
  const facts = identity.facts();
  if (facts === null) return false;
  for (const [field, test] of rule.tests) if (!passes(test, valuesOf(facts, field))) return false;
  return identity.issuedBy(rule.ca, now);
}

interface IssuerRules {
  readonly ca: TrustedCa;
  /** "field\0value" of the rule's first exact field -> the rules anchored there. */
  readonly exact: Map<string, PreparedMatch[]>;
  /** Rules without an exact field (wildcards, or the issuer alone): checked one by one. */
  readonly rest: PreparedMatch[];
}

export class MatchIndex {
  private readonly issuers: IssuerRules[] = [];

  constructor(rules: Iterable<PreparedMatch>) {
    const byCa = new Map<string, IssuerRules>();
    for (const rule of rules) {
      let entry = byCa.get(rule.ca.fingerprint);
      if (entry === undefined) {
        entry = { ca: rule.ca, exact: new Map(), rest: [] };
        byCa.set(rule.ca.fingerprint, entry);
        this.issuers.push(entry);
      }
      const anchor = rule.tests.find(([, t]) => 'exact' in t);
      if (anchor === undefined) entry.rest.push(rule);
      else {
        const name = `${anchor[0]}\0${(anchor[1] as { exact: string }).exact}`;
        const list = entry.exact.get(name);
        if (list) list.push(rule);
        else entry.exact.set(name, [rule]);
      }
    }
  }

  get size(): number {
    return this.issuers.length;
  }

  /** The key id the leaf's subject identifies, null for none, AMBIGUOUS for more than one. Cached on the identity. */
  keyOf(identity: ClientIdentity, now: number): string | null {
    const memo = identity.matchMemo;
    if (memo !== null && memo.index === this) return memo.key;
    const key = this.lookup(identity, now);
    identity.matchMemo = { index: this, key };
    return key;
  }

  private lookup(identity: ClientIdentity, now: number): string | null {
    const facts = identity.facts();
    if (facts === null) return null;
    let found: string | null = null;
    const take = (rule: PreparedMatch): boolean => {
      if (rule.key === found || !matches(rule, identity, now)) return false;
      if (found !== null) return true; // a second key: ambiguous
      found = rule.key;
      return false;
    };
    for (const issuer of this.issuers) {
      // The chain check is cached per CA on the identity; the field lookups are hash lookups.
      for (const field of MATCH_FIELDS) {
        for (const value of valuesOf(facts, field)) {
          const rules = issuer.exact.get(`${field}\0${value}`);
          if (rules !== undefined) for (const rule of rules) if (take(rule)) return AMBIGUOUS;
        }
      }
      for (const rule of issuer.rest) if (take(rule)) return AMBIGUOUS;
    }
    return found;
  }
}
