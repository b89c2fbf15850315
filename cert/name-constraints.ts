// RFC 5280 4.2.1.10 name constraints, as path validation applies them (6.1.3 b, c): a CA's
// permitted and excluded subtrees bound the names of every certificate below it in the path.
// Without this, a sub-CA constrained to `.b.example.com` (a tenant's own intermediate) could
// issue a leaf named `api.a.example.com` and be another tenant's key to a certificate_match.
// The forms mtlsgate matches on are enforced (DNS, email, URI host, IP, directory name); a
// constraint of another form, or with minimum/maximum, is not understood and the path fails.
import { childrenOf, oidText, readTlv, type Tlv } from './der.ts';

export type NameForm = 'dns' | 'email' | 'uri' | 'ip' | 'dn';

export interface Subtree {
  /** The form, or the GeneralName tag of a form this code does not evaluate. */
  readonly form: NameForm | number;
  /** dns/uri: lower-cased text; email: its host lower-cased; ip: address then mask; dn: canonical RDNs. */
  readonly value: string | Buffer | readonly string[];
}

export interface NameConstraints {
  readonly permitted: readonly Subtree[];
  readonly excluded: readonly Subtree[];
  /** A subtree with minimum or maximum (RFC 5280 profile: never used): not understood. */
  readonly unsupported: boolean;
}

/** The names of a certificate that constraints bound, by form (read by cert-facts.ts). */
export interface ConstrainedNames {
  dns: string[];
  email: string[];
  uri: string[];
  ip: Buffer[];
  /** Subject DN (when not empty) and SAN directoryNames, each as canonical RDNs. */
  dn: string[][];
  /** GeneralName tags of SANs of other forms (otherName, x400Address, ...). */
  other: number[];
}

const OID_EMAIL_ADDRESS = '1.2.840.113549.1.9.1';
const OID_CN = '2.5.4.3';
/** A common name written as a host name: what a DNS constraint must also bound (OpenSSL checks it too). */
const HOST_LIKE = /^[a-z0-9*_-]+(\.[a-z0-9*_-]+)+\.?$/i;

function latin1(der: Uint8Array, t: Tlv): string {
  return Buffer.from(der.buffer, der.byteOffset + t.start, t.end - t.start).toString('latin1');
}

/** One attribute value compared as RFC 4518 roughly does: case folded, spaces collapsed. */
function canonicalValue(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** A Name as canonical RDN strings ("oid=value+oid=value", each RDN's values sorted). */
export function canonicalRdns(der: Uint8Array, name: Tlv, decode: (t: Tlv) => string): string[] {
  return childrenOf(der, name).map((rdn) =>
    childrenOf(der, rdn)
      .map((atv) => {
        const [type, value] = childrenOf(der, atv);
        return `${oidText(der, type)}=${canonicalValue(decode(value))}`;
      })
      .sort()
      .join('+'),
  );
}

/** Adds the subject's constrained names: its DN, emailAddress attributes, host-like common names. */
export function addSubjectNames(names: ConstrainedNames, rdns: string[], subject: readonly [string, string][]): void {
  if (rdns.length > 0) names.dn.push(rdns);
  for (const [type, value] of subject) {
    if (type === OID_EMAIL_ADDRESS) names.email.push(value);
    else if (type === OID_CN && HOST_LIKE.test(value)) names.dns.push(value);
  }
}

/** Parses the nameConstraints extension's value (NameConstraints SEQUENCE). */
export function parseNameConstraints(der: Uint8Array, value: Tlv, decode: (t: Tlv) => string): NameConstraints {
  const permitted: Subtree[] = [];
  const excluded: Subtree[] = [];
  let unsupported = false;
  for (const part of childrenOf(der, value)) {
    const into = part.tag === 0xa0 ? permitted : part.tag === 0xa1 ? excluded : null;
    if (into === null) {
      unsupported = true;
      continue;
    }
    for (const subtree of childrenOf(der, part)) {
      const [base, ...bounds] = childrenOf(der, subtree);
      // minimum [0] DEFAULT 0 written as 0 is allowed; anything else is outside the profile.
      if (bounds.some((b) => b.tag !== 0x80 || b.end - b.start !== 1 || der[b.start] !== 0)) unsupported = true;
      into.push(subtreeOf(der, base, decode));
    }
  }
  return { permitted, excluded, unsupported };
}

function subtreeOf(der: Uint8Array, base: Tlv, decode: (t: Tlv) => string): Subtree {
  switch (base.tag) {
    case 0x81: {
      // A mailbox keeps its local part's case (it is case-sensitive); hosts are not.
      const text = latin1(der, base);
      const at = text.lastIndexOf('@');
      return { form: 'email', value: text.slice(0, at + 1) + text.slice(at + 1).toLowerCase() };
    }
    case 0x82:
      return { form: 'dns', value: latin1(der, base).toLowerCase() };
    case 0x86:
      return { form: 'uri', value: latin1(der, base).toLowerCase() };
    case 0x87:
      return { form: 'ip', value: Buffer.from(der.subarray(base.start, base.end)) };
    case 0xa4:
      return { form: 'dn', value: canonicalRdns(der, readTlv(der, base.start, base.end), decode) };
    default:
      return { form: base.tag, value: '' };
  }
}

/**
 * A DNS name (or a URI's host) under a base: "" is everything, ".x" the subdomains of x, "x"
 * itself and (DNS) its subdomains or (URI, `exactHost`) only that host.
 */
function dnsWithin(name: string, base: string, exactHost: boolean): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (base === '') return true;
  if (base.startsWith('.')) return n.endsWith(base) && n.length > base.length;
  return n === base || (!exactHost && n.endsWith(`.${base}`));
}

/** An email under a base: a mailbox exactly, "host" its mailboxes, ".host" mailboxes of its subdomains. */
function emailWithin(email: string, base: string): boolean | null {
  const at = email.lastIndexOf('@');
  if (at <= 0) return null;
  const domain = email.slice(at + 1).toLowerCase();
  if (base.includes('@')) {
    const b = base.lastIndexOf('@');
    return email.slice(0, at) === base.slice(0, b) && domain === base.slice(b + 1);
  }
  if (base.startsWith('.')) return domain.endsWith(base);
  return domain === base;
}

/**
 * The host of an absolute URI with an authority; null when there is none, when it has userinfo
 * or an IP literal, or when the host is not a host name (letters, digits, ".", "-", "_"): a
 * `\`, a `%` or another byte that parsers read differently (WHATWG URL reads
 * `https://evil.other\.corp.example/` as host evil.other; a decoder reads `%2F` as "/") is
 * no name a constraint can vouch for, so under a URI constraint it fails (OpenSSL compares the
 * text up to a ":" or "/" and passes it).
 */
export function uriHost(uri: string): string | null {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(uri);
  if (m === null) return null;
  const authority = m[1];
  if (authority.includes('@') || authority.startsWith('[')) return null;
  const host = authority.replace(/:\d*$/, '');
  return HOST_NAME.test(host) ? host.toLowerCase() : null;
}

const HOST_NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?$/;
/** A DNS name as a certificate may carry it: host name labels, a "*" label (a wildcard certificate). */
const DNS_NAME = /^[A-Za-z0-9*_-]+(?:\.[A-Za-z0-9*_-]+)*\.?$/;

function ipWithin(ip: Buffer, base: Buffer): boolean {
  if (base.length !== ip.length * 2) return false;
  for (let i = 0; i < ip.length; i++) if ((ip[i] & base[ip.length + i]) !== (base[i] & base[ip.length + i])) return false;
  return true;
}

function dnWithin(rdns: readonly string[], base: readonly string[]): boolean {
  return base.length <= rdns.length && base.every((rdn, i) => rdns[i] === rdn);
}

/** Is the name (of `form`) within the subtree? null: the name cannot be read as that form (a violation). */
function within(form: NameForm, name: string | Buffer | string[], subtree: Subtree): boolean | null {
  const base = subtree.value;
  switch (form) {
    case 'dns':
      // A NUL, "/" or a backslash in a DNS name is read another way by whoever decodes it (a C string
      // ends at the NUL): no name a constraint can vouch for.
      return DNS_NAME.test(name as string) ? dnsWithin(name as string, base as string, false) : null;
    case 'email':
      return emailWithin(name as string, base as string);
    case 'uri': {
      const host = uriHost(name as string);
      return host === null ? null : dnsWithin(host, base as string, true);
    }
    case 'ip':
      return ipWithin(name as Buffer, base as Buffer);
    case 'dn':
      return dnWithin(name as string[], base as string[]);
  }
}

const FORMS: readonly NameForm[] = ['dns', 'email', 'uri', 'ip', 'dn'];

/** Why the names break the constraints, or null when they hold (RFC 5280 6.1.3 b and c). */
export function nameConstraintViolation(names: ConstrainedNames, nc: NameConstraints): string | null {
  if (nc.unsupported) return 'name constraints with minimum, maximum or an unknown part';
  for (const form of FORMS) {
    const values = names[form] as (string | Buffer | string[])[];
    if (values.length === 0) continue;
    const permitted = nc.permitted.filter((s) => s.form === form);
    const excluded = nc.excluded.filter((s) => s.form === form);
    for (const value of values) {
      if (permitted.length > 0 && !permitted.some((s) => within(form, value, s) === true)) return `${form} name outside the permitted subtrees`;
      for (const s of excluded) {
        const inside = within(form, value, s);
        if (inside !== false) return `${form} name in an excluded subtree`;
      }
    }
  }
  // Forms not evaluated here: a certificate carrying such a name under such a constraint fails.
  for (const s of [...nc.permitted, ...nc.excluded]) {
    if (typeof s.form === 'number' && names.other.includes(s.form)) return `a name constraint of a form not supported (tag 0x${s.form.toString(16)})`;
  }
  return null;
}
