// Every diagnostic the compiler can report, in one table: code -> severity, title, how to fix.
// docs/diagnostics.md lists the same codes (test/compiler-codes.test.ts keeps them in step).
// Codes are stable API: CI scripts match on them. E_ codes are errors (no bundle), W_ codes are
// warnings (bundle still emitted); `--strict` turns every warning into an error (same code).
import type { Severity } from './diagnostics.ts';

interface CodeInfo {
  severity: Severity;
  title: string;
  fix: string;
}

const error = (title: string, fix: string) => ({ severity: 'error', title, fix }) as const satisfies CodeInfo;
const warning = (title: string, fix: string) => ({ severity: 'warning', title, fix }) as const satisfies CodeInfo;

export const CODES = {
  // ---- files and YAML ----
  E_FILE_READ: error('config file cannot be read', 'Check the file permissions; every *.yaml/*.yml under the config directory is read.'),
  E_FILE_TOO_LARGE: error(
    'config file larger than 64 MiB',
    'Split the file into several *.yaml files (a file of 64 MiB holds some 600,000 keys), or move a file that is not config (a log, a dump) out of the directory or into .mtlsgateignore.',
  ),
  E_PATH_OUTSIDE: error(
    'path resolves outside the config directory',
    'Move the file into the config directory (symlinks are followed first), or allow that one path with --allow-outside PATH.',
  ),
  E_ENCODING: error('file is not UTF-8', 'Re-save the file as UTF-8 (the position is the first invalid byte).'),
  E_YAML_SYNTAX: error('YAML syntax error', 'Fix the YAML at the position shown (indentation, quotes, a missing ":").'),
  E_YAML_DUPLICATE_KEY: error('duplicate key in a YAML mapping', 'Remove one of the two entries: YAML would silently keep only one.'),
  E_YAML_ALIAS_BOUND: error(
    'YAML aliases expand too far',
    'Use fewer or less nested aliases (*name): a document may expand at most 1,000 aliases and 100,000 nodes; write the values out instead.',
  ),
  E_YAML_TOO_LARGE: error(
    'YAML document or file too large to read',
    'Split a document of more than 200,000 lines or values (one document per key), and write a file of more than 4 MiB in block style (the plain subset every generator writes) or split it.',
  ),
  E_EMPTY_CONFIG: error(
    'no YAML documents in the config directory',
    'Add *.yaml files with kind: api, policy or key documents (check the path and .mtlsgateignore), or pass --allow-empty if an empty bundle is what you mean.',
  ),
  W_NO_APIS: warning(
    'no kind: api document: the bundle routes nothing',
    'Add an API, or pass --allow-empty if a bundle that routes nothing is what you mean (serve refuses it otherwise).',
  ),
  // ---- schema ----
  E_KIND: error(
    'missing or unknown kind',
    'Start every document with kind: api, kind: policy, kind: key, kind: revocation or kind: test; a file that is not gateway config (Kubernetes manifests, a docker-compose file) goes in .mtlsgateignore (gitignore syntax) or --exclude PATTERN.',
  ),
  E_UNKNOWN_FIELD: error('unknown field', 'Remove the field or fix its spelling (see the suggestion and schema/<kind>.schema.json).'),
  E_MISSING_FIELD: error('required field missing', 'Add the field named in the message.'),
  E_FIELD_TYPE: error(
    'field has the wrong type',
    'Give the field a value of the type named in the message: true/false and numbers unquoted where those are wanted, quotes around a string that looks like a number or a boolean.',
  ),
  E_FIELD_VALUE: error('field value not allowed', 'Change the value to one the message describes.'),
  // ---- apis ----
  E_DUPLICATE_ID: error('two documents of one kind share an id', 'Rename one of them: ids are unique per kind (the other one is shown as related).'),
  E_DUPLICATE_ROUTE: error('two APIs on the same domain and listen_path', 'Change the listen_path or the domain of one of them.'),
  E_AUTH_COMBO: error(
    'contradictory authentication settings',
    'Pick one row of the auth table: keyless APIs have no token auth, so use_certificate and use_standard_auth need use_keyless: false.',
  ),
  E_MTLS_NO_CERTS: error(
    'static mTLS with no client_certificates',
    'List the certificates (PEM path, inline PEM or sha256:<hex>) or a CA under client_certificates, or set use_mutual_tls_auth: false.',
  ),
  W_CERTS_UNUSED: warning(
    'client_certificates set while use_mutual_tls_auth is false',
    'Set use_mutual_tls_auth: true to enforce the list, or remove the list.',
  ),
  E_TARGET_URL: error(
    'target_url the gateway cannot proxy to',
    'Give the upstream base URL alone (http:// or https://, host, port, path): no user:password@, no ?query, no #fragment. Upstream credentials belong in the upstream, not in the URL.',
  ),
  // ---- policies and keys ----
  E_UNKNOWN_API: error('access right for an API that does not exist', 'Use the id of a kind: api document, or add that API.'),
  E_UNKNOWN_POLICY: error('apply_policies names a policy that does not exist', 'Use the id of a kind: policy document, or add that policy.'),
  E_URL_REGEX: error(
    'allowed_urls regex does not compile in RE2',
    'Fix the regular expression at the position shown (RE2 syntax: no lookaround, no backreferences; matched against the path after the listen path).',
  ),
  W_URL_UNANCHORED: warning(
    'allowed_urls regex not anchored at the start',
    'Start the pattern with ^ (the message shows the anchored form): an unanchored pattern matches anywhere in the path.',
  ),
  E_KEY_NO_CREDENTIAL: error(
    'key with neither certificate nor token_sha256',
    'Give the key a certificate, a token_sha256 (`mtlsgate token` makes one), or both.',
  ),
  E_DUPLICATE_CERT: error('two keys on one certificate', 'A certificate identifies one key: give each key its own certificate.'),
  E_DUPLICATE_TOKEN: error('two keys on one token', 'A token identifies one key: give each key its own token (`mtlsgate token`).'),
  W_KEY_UNREACHABLE: warning('key grants no API', 'Apply a policy or add access_rights, or remove the key.'),
  W_CERT_NEEDS_TOKEN: warning(
    'certificate-only key granted an API without auth.use_certificate',
    'Set auth.use_certificate: true on the API, or give the key a token_sha256.',
  ),
  W_PORTAL_NO_DYNAMIC: warning(
    'portal policy grants no dynamic-mTLS API',
    'Grant an API with auth.use_certificate: true, or remove the portal block: portal keys are certificate-bound.',
  ),
  W_KEY_EXPIRED: warning('key has expired', 'Renew the key (move expires forward) or remove it; requests with it get 401 "Key has expired, please renew".'),
  // ---- access tests ----
  E_ACCESS_TEST: error(
    'access test case failed',
    "The gateway answers this request differently from what the case expects: fix the config (or the expectation). `mtlsgate explain` shows each stage's verdict for the request.",
  ),
  // ---- certificates ----
  E_CERT_READ: error('certificate file cannot be read', 'Fix the path (relative to the YAML file naming it) or the file permissions.'),
  E_CERT_NOT_PEM: error('not a PEM certificate', 'Give a PEM file holding -----BEGIN CERTIFICATE-----, inline PEM, or sha256:<64 hex>.'),
  E_CERT_PARSE: error('certificate cannot be parsed', 'The PEM block is not a valid X.509 certificate; re-export it.'),
  E_CERT_EXPIRED: error('certificate has expired', 'Replace the certificate with a renewed one.'),
  E_CERT_KEY_SIZE: error(
    'client certificate key over 8,192 bits',
    'Reissue the certificate with an RSA key of at most 8,192 bits (2,048 or 3,072 is usual) or an EC key: the gateway verifies a signature of this key on every connection that presents it.',
  ),
  W_CERT_EXPIRING: warning('certificate expires soon', 'Renew the certificate before it expires (threshold: --expiry-warning-days).'),
  E_KEY_CERT_CA: error(
    "a CA certificate as a key's certificate",
    "A key is identified by a client (leaf) certificate; CA certificates belong in an API's client_certificates.",
  ),
  E_KEY_CERT_CHAIN: error("a key's certificate PEM holds several certificates", 'Give the key only its own (leaf) certificate.'),
  E_KEY_CERTIFICATES_BOTH: error(
    'a key with both certificate and certificates',
    'Keep one field: move the certificate into the certificates list (certificate is its one-item form).',
  ),
  W_CERT_PRIVATE_KEY: warning(
    'certificate PEM also holds a private key',
    'The private key was dropped (it never reaches the bundle); remove it from the file and from version control, and consider it leaked.',
  ),
  E_CA_UNUSABLE: error(
    'a trusted CA that can issue no client certificate',
    'Every certificate below this CA would be refused at runtime (and by `openssl verify -purpose sslclient`): trust a CA with keyUsage keyCertSign, an extendedKeyUsage (if any) with clientAuth, no unknown critical extension, a key of at most 8,192 bits, and that is valid now; or remove the entry.',
  ),
  W_CA_NAME_FORMS: warning(
    'a trusted CA constrains name forms mtlsgate does not evaluate',
    'A certificate below this CA that carries a name of that form (otherName, x400Address, ediPartyName, registeredID) is refused; if its leaves carry none, nothing changes.',
  ),
  W_CERT_NOT_CA: warning(
    'a certificate with keyCertSign but no basicConstraints CA:TRUE in client_certificates',
    'It is pinned as a client certificate, not trusted as a CA: what it issued is refused. Reissue it with basicConstraints CA:TRUE to trust it as a CA, or give the leaves themselves.',
  ),
  // ---- subject matching and revocation ----
  E_MATCH_NEVER: error(
    'a certificate matcher that can never match',
    'Give a CA certificate as issuer (basicConstraints CA:TRUE), a well-formed SPIFFE ID / DNS name / email, and `*` only inside one segment or label.',
  ),
  E_MATCH_OVERLAP: error(
    'two keys whose certificate_match can match the same certificate',
    'Make the rules disjoint (a different issuer or a value only one of them matches): a certificate must identify exactly one key.',
  ),
  W_UPSTREAM_TLS_RELATIVE: warning(
    'an upstream_tls client certificate or key path is relative: serve reads it from its working directory, not from the config',
    'Give the absolute path the file has on the gateway machine (e.g. /etc/mtlsgate/upstream/client-key.pem). Unlike every other config path, these are not resolved against the YAML file: the bundle is often compiled elsewhere (CI) and carries the path, never the private key, to the gateway.',
  ),
  W_MATCH_FIELDS_DIFFER: warning(
    'two keys under one issuer match on different fields, so one certificate can match both',
    'Match every key under that issuer on the same field (san_uri for SPIFFE IDs, say), or add the other field to one rule so the two exclude each other; a certificate that matches both is refused with 401 auth.cert_ambiguous.',
  ),
  E_CRL_READ: error('CRL file cannot be read or parsed', 'Fix the path (relative to the YAML file) or give a PEM (-----BEGIN X509 CRL-----) or DER CRL.'),
  E_CRL_UNVERIFIED: error(
    'CRL not signed by a CA the config trusts',
    "Name the CRL's CA in an API's client_certificates or as a certificate_match issuer (for an intermediate's own CRL: the intermediate under crl_issuers), or use the CRL that CA issued.",
  ),
  E_CRL_ISSUER: error(
    'a crl_issuers certificate whose CRLs cannot be used',
    "Name one intermediate CA certificate per entry, signed by a CA the config trusts (an API's client_certificates CA, a certificate_match issuer) or by another crl_issuers entry, with basicConstraints CA:TRUE, keyUsage keyCertSign, an extendedKeyUsage (if any) with clientAuth, valid now.",
  ),
  E_CRL_URL_ISSUER: error(
    'a crl_urls entry whose CRL signer is not known',
    "Write the entry as {url: URL, issuer: CA} (the CA's PEM file, inline PEM or sha256: pin; a CA the config trusts or a crl_issuers entry). A bare URL is bound to the issuer of a config certificate whose CRL distribution points name it, or to the config's only CRL signer; with several, the one allowed to sign the URL's CRL must be named.",
  ),
  E_CRL_STALE: error('CRL past its nextUpdate', 'Fetch or issue a current CRL (openssl ca -gencrl) and compile again.'),
  W_CRL_EXPIRING: warning(
    'CRL close to its nextUpdate',
    'Compile again with a newer CRL before its nextUpdate, or list its URL under crl_urls so the running gateway refreshes it.',
  ),
} as const satisfies Record<string, CodeInfo>;

export type Code = keyof typeof CODES;
