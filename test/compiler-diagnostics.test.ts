// Every diagnostic code, triggered by a small config: code, severity, file, line and column
// (and, where the position of another place matters, the related position).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAccessTests } from '../access/run.ts';
import { CODES, type CompileOptions, type Diagnostic } from '../compiler/index.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { api, certFiles, removeConfigs, TOKEN_A, writeConfig } from './fixtures/compiler/helpers.ts';
import { opensslSelfSigned } from './helpers/openssl-pki.ts';

after(removeConfigs);

interface Case {
  code: keyof typeof CODES;
  files: Record<string, string | Buffer>;
  /** Also write certs/*.pem from the shared test PKI. */
  certs?: boolean;
  setup?: (dir: string) => void;
  at: { file: string; line: number; col: number };
  message?: RegExp;
  related?: { file: string; line: number; col: number };
  options?: CompileOptions;
}

const key = (cert: string) => `kind: key\nid: k\ncertificate: ${cert}\n`;

/** DIR/pki/ca.pem: a self-signed certificate with exactly these extensions (openssl config lines). */
function caFile(dir: string, extensions: string): void {
  mkdirSync(join(dir, 'pki'));
  opensslSelfSigned(join(dir, 'pki'), 'ca', 'Test CA', extensions);
}

export const CASES: Case[] = [
  {
    code: 'E_FILE_READ',
    files: { 'ok.yaml': api('x') },
    setup: (dir) => symlinkSync(join(dir, 'nowhere.yaml'), join(dir, 'broken.yaml')),
    at: { file: 'broken.yaml', line: 1, col: 1 },
    message: /cannot read broken\.yaml: ENOENT/,
  },
  {
    code: 'E_FILE_TOO_LARGE',
    files: { 'ok.yaml': api('x') },
    // Sparse: 64 MiB + 1 byte on no disk, refused on its size before a byte is read.
    setup: (dir) => {
      writeFileSync(join(dir, 'dump.yaml'), '');
      truncateSync(join(dir, 'dump.yaml'), 64 * 1024 * 1024 + 1);
    },
    at: { file: 'dump.yaml', line: 1, col: 1 },
    message: /dump\.yaml is not read: it is 67108865 bytes, more than the 67108864 read at most \(64 MiB\); split it into several files/,
  },
  {
    code: 'E_PATH_OUTSIDE',
    files: { 'a.yaml': api('x', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [/etc/hostname]\n') },
    at: { file: 'a.yaml', line: 8, col: 23 },
    message: /certificate "\/etc\/hostname" resolves to .*, outside the config directory/,
  },
  {
    code: 'E_ENCODING',
    files: { 'a.yaml': Buffer.concat([Buffer.from('kind: api\nid: '), Buffer.from([0xff]), Buffer.from('\n')]) },
    at: { file: 'a.yaml', line: 2, col: 5 },
    message: /not UTF-8: byte 0xff/,
  },
  { code: 'E_YAML_SYNTAX', files: { 'a.yaml': 'kind: api\nid: [unclosed\nproxy: x\n' }, at: { file: 'a.yaml', line: 3, col: 1 } },
  {
    code: 'E_YAML_DUPLICATE_KEY',
    files: { 'a.yaml': `kind: key\nid: a\nid: b\ntoken_sha256: ${TOKEN_A}\n` },
    at: { file: 'a.yaml', line: 3, col: 1 },
    related: { file: 'a.yaml', line: 2, col: 1 },
  },
  {
    code: 'E_YAML_ALIAS_BOUND',
    files: {
      'a.yaml': `kind: policy\nid: p\nv: &v [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nw: &w [${Array(100).fill('*v').join(',')}]\nx: [${Array(100).fill('*w').join(',')}]\n`,
    },
    // *w is 101 aliases: the 9th one on line 5 takes the running count past 1,000.
    at: { file: 'a.yaml', line: 5, col: 29 },
    message: /alias \*w expands to 1101 nodes/,
  },
  {
    code: 'E_YAML_TOO_LARGE',
    files: { 'a.yaml': `kind: policy\nid: p\n---\nkind: policy\nid: q\nv: [${'1,'.repeat(200_001)}]\n` },
    at: { file: 'a.yaml', line: 6, col: 4 },
    message: /at most 200000 lines or values/,
  },
  { code: 'E_EMPTY_CONFIG', files: { 'README.md': 'no yaml here' }, at: { file: '.', line: 1, col: 1 }, message: /--allow-empty/ },
  { code: 'W_NO_APIS', files: { 'k.yaml': `kind: key\nid: k\ntoken_sha256: ${TOKEN_A}\n` }, at: { file: '.', line: 1, col: 1 }, message: /routes nothing/ },
  { code: 'E_KIND', files: { 'a.yaml': 'kind: apii\nid: x\n' }, at: { file: 'a.yaml', line: 1, col: 7 }, message: /did you mean "api"/ },
  {
    code: 'E_UNKNOWN_FIELD',
    files: { 'a.yaml': api('x', 'auth:\n  use_certifcate: true\n') },
    at: { file: 'a.yaml', line: 7, col: 3 },
    message: /unknown field "use_certifcate" in auth \(did you mean "use_certificate"\?\)/,
  },
  { code: 'E_MISSING_FIELD', files: { 'a.yaml': 'kind: api\nid: x\n' }, at: { file: 'a.yaml', line: 1, col: 1 }, message: /"proxy"/ },
  {
    code: 'E_FIELD_TYPE',
    files: { 'a.yaml': api('x', 'use_keyless: yes\n') },
    at: { file: 'a.yaml', line: 6, col: 14 },
    message: /use_keyless must be true or false, got string "yes"/,
  },
  { code: 'E_FIELD_VALUE', files: { 'a.yaml': 'kind: policy\nid: Gold\n' }, at: { file: 'a.yaml', line: 2, col: 5 } },
  {
    code: 'E_DUPLICATE_ID',
    files: { 'a.yaml': api('x'), 'b.yaml': api('x', '', '/other/') },
    at: { file: 'b.yaml', line: 2, col: 5 },
    related: { file: 'a.yaml', line: 2, col: 5 },
  },
  {
    code: 'E_DUPLICATE_ROUTE',
    files: { 'a.yaml': api('x'), 'b.yaml': api('y', '', '/x') },
    at: { file: 'b.yaml', line: 4, col: 16 },
    related: { file: 'a.yaml', line: 4, col: 16 },
  },
  {
    code: 'E_AUTH_COMBO',
    files: { 'apis/payments.yaml': api('payments', 'use_keyless: true\nauth:\n  use_certificate: true\n') },
    at: { file: 'apis/payments.yaml', line: 8, col: 20 },
    message: /use_certificate needs token auth, but use_keyless is true/,
  },
  { code: 'E_MTLS_NO_CERTS', files: { 'a.yaml': api('x', 'use_mutual_tls_auth: true\n') }, at: { file: 'a.yaml', line: 6, col: 22 } },
  {
    code: 'W_CERTS_UNUSED',
    certs: true,
    files: { 'a.yaml': api('x', 'client_certificates:\n  - certs/alice.pem\n') },
    at: { file: 'a.yaml', line: 6, col: 1 },
  },
  {
    code: 'E_UNKNOWN_API',
    files: { 'a.yaml': api('payments'), 'p.yaml': 'kind: policy\nid: p\naccess_rights:\n  paymnts: {}\n' },
    at: { file: 'p.yaml', line: 4, col: 3 },
    message: /did you mean "payments"/,
  },
  {
    code: 'E_UNKNOWN_POLICY',
    files: { 'p.yaml': 'kind: policy\nid: gold\n', 'k.yaml': `kind: key\nid: k\ntoken_sha256: ${TOKEN_A}\napply_policies: [gld]\n` },
    at: { file: 'k.yaml', line: 4, col: 18 },
    message: /did you mean "gold"/,
  },
  {
    code: 'E_URL_REGEX',
    files: { 'a.yaml': api('x'), 'p.yaml': 'kind: policy\nid: p\naccess_rights:\n  x:\n    allowed_urls:\n      - url: ^/a(\n' },
    // The unclosed "(" itself.
    at: { file: 'p.yaml', line: 6, col: 17 },
  },
  {
    code: 'W_URL_UNANCHORED',
    files: { 'a.yaml': api('x'), 'p.yaml': 'kind: policy\nid: p\naccess_rights:\n  x:\n    allowed_urls:\n      - url: /public/\n' },
    at: { file: 'p.yaml', line: 6, col: 14 },
    message: /"\/public\/" is not anchored.*write "\^\/public\/"/,
  },
  { code: 'E_KEY_NO_CREDENTIAL', files: { 'k.yaml': 'kind: key\nid: k\n' }, at: { file: 'k.yaml', line: 2, col: 5 } },
  {
    code: 'E_DUPLICATE_CERT',
    certs: true,
    files: {
      'keys/a.yaml': 'kind: key\nid: a\ncertificates:\n  - ../certs/bob.pem\n  - ../certs/alice.pem\n',
      'keys/b.yaml': 'kind: key\nid: b\ncertificate: ../certs/alice.pem\n',
    },
    at: { file: 'keys/b.yaml', line: 3, col: 14 },
    related: { file: 'keys/a.yaml', line: 5, col: 5 },
  },
  {
    code: 'E_DUPLICATE_TOKEN',
    files: { 'k.yaml': `kind: key\nid: a\ntoken_sha256: ${TOKEN_A}\n---\nkind: key\nid: b\ntoken_sha256: ${TOKEN_A.toUpperCase()}\n` },
    at: { file: 'k.yaml', line: 7, col: 15 },
    related: { file: 'k.yaml', line: 3, col: 15 },
  },
  { code: 'W_KEY_UNREACHABLE', files: { 'k.yaml': `kind: key\nid: k\ntoken_sha256: ${TOKEN_A}\n` }, at: { file: 'k.yaml', line: 2, col: 5 } },
  {
    code: 'W_CERT_NEEDS_TOKEN',
    certs: true,
    files: { 'a.yaml': api('x'), 'k.yaml': key('certs/alice.pem') + 'access_rights:\n  x: {}\n' },
    at: { file: 'k.yaml', line: 3, col: 14 },
    message: /401 "Authorization field missing"/,
  },
  {
    code: 'W_PORTAL_NO_DYNAMIC',
    files: { 'a.yaml': api('x'), 'p.yaml': 'kind: policy\nid: p\naccess_rights:\n  x: {}\nportal:\n  name: P\n' },
    at: { file: 'p.yaml', line: 5, col: 1 },
  },
  {
    code: 'W_KEY_EXPIRED',
    files: { 'k.yaml': `kind: key\nid: k\nexpires: 2020-01-01T00:00:00Z\ntoken_sha256: ${TOKEN_A}\n` },
    at: { file: 'k.yaml', line: 3, col: 10 },
  },
  {
    code: 'E_ACCESS_TEST',
    files: {
      'a.yaml': api('x'),
      't.yaml':
        'kind: test\nid: t\ncases:\n  - name: open\n    request: { url: /x/a }\n    expect: { status: 401, code: auth.auth_field_missing }\n  - name: wrong\n    request: { url: /nowhere }\n    expect: { status: 200 }\n',
    },
    options: { accessTests: runAccessTests },
    at: { file: 't.yaml', line: 7, col: 5 },
    message: /test "t" case "wrong": expected status 200; got status 404, code route.not_found, key none, api none/,
  },
  {
    code: 'E_CERT_READ',
    files: { 'k.yaml': key('certs/missing.pem') },
    at: { file: 'k.yaml', line: 3, col: 14 },
    message: /certs\/missing\.pem" cannot be read .*no such file/,
  },
  { code: 'E_CERT_NOT_PEM', files: { 'k.yaml': key('certs/junk.pem'), 'certs/junk.pem': 'hello' }, at: { file: 'k.yaml', line: 3, col: 14 } },
  {
    code: 'E_CERT_PARSE',
    files: { 'k.yaml': key('certs/bad.pem'), 'certs/bad.pem': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
    at: { file: 'k.yaml', line: 3, col: 14 },
  },
  { code: 'E_CERT_EXPIRED', certs: true, files: { 'k.yaml': key('certs/expired.pem') }, at: { file: 'k.yaml', line: 3, col: 14 }, message: /CN=expired/ },
  {
    code: 'E_CERT_KEY_SIZE',
    files: {
      'k.yaml': key('certs/big.pem'),
      'certs/big.pem': readFileSync(join(import.meta.dirname, 'fixtures', 'big-keys', 'leaf-rsa16384.pem'), 'utf8'),
    },
    at: { file: 'k.yaml', line: 3, col: 14 },
    message: /certs\/big\.pem" has a public key of 16384 bits, more than 8192/,
  },
  { code: 'W_CERT_EXPIRING', certs: true, files: { 'k.yaml': key('certs/expiring.pem') }, at: { file: 'k.yaml', line: 3, col: 14 }, message: /in [45] days/ },
  {
    code: 'E_TARGET_URL',
    files: { 'a.yaml': 'kind: api\nid: a\nproxy:\n  listen_path: /a/\n  target_url: http://user:pw@127.0.0.1:9101/base?x=1\n' },
    at: { file: 'a.yaml', line: 5, col: 15 },
    message: /must not carry a query, fragment or credentials \(it has credentials and a query\)/,
  },
  { code: 'E_KEY_CERT_CA', certs: true, files: { 'k.yaml': key('certs/ca.pem') }, at: { file: 'k.yaml', line: 3, col: 14 } },
  { code: 'E_KEY_CERT_CHAIN', certs: true, files: { 'k.yaml': key('certs/chain.pem') }, at: { file: 'k.yaml', line: 3, col: 14 } },
  {
    code: 'E_KEY_CERTIFICATES_BOTH',
    certs: true,
    files: { 'k.yaml': `${key('certs/alice.pem')}certificates: [certs/bob.pem]\n` },
    at: { file: 'k.yaml', line: 4, col: 1 },
    related: { file: 'k.yaml', line: 3, col: 1 },
  },
  {
    code: 'E_MATCH_NEVER',
    certs: true,
    files: { 'k.yaml': `kind: key\nid: k\ncertificate_match:\n  issuer: certs/alice.pem\n  san_uri: spiffe://corp.example/ns/a\n` },
    at: { file: 'k.yaml', line: 4, col: 11 },
    message: /not a CA certificate/,
  },
  {
    code: 'E_CA_UNUSABLE',
    files: { 'a.yaml': api('x', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [pki/ca.pem]\n') },
    setup: (dir) => caFile(dir, 'basicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign\nextendedKeyUsage = serverAuth'),
    at: { file: 'a.yaml', line: 8, col: 23 },
    message: /can issue no client certificate: its extendedKeyUsage \(1\.3\.6\.1\.5\.5\.7\.3\.1\) does not admit clientAuth/,
  },
  {
    code: 'W_CA_NAME_FORMS',
    files: { 'a.yaml': api('x', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [pki/ca.pem]\n') },
    setup: (dir) => caFile(dir, 'basicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign\nnameConstraints = critical, permitted;RID:1.2.3.4'),
    at: { file: 'a.yaml', line: 8, col: 23 },
    message: /name constraints of a form mtlsgate does not evaluate \(GeneralName tag 0x88\)/,
  },
  {
    code: 'W_CERT_NOT_CA',
    files: { 'a.yaml': api('x', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [pki/ca.pem]\n') },
    setup: (dir) => caFile(dir, 'keyUsage = critical, keyCertSign, digitalSignature'),
    at: { file: 'a.yaml', line: 8, col: 23 },
    message: /keyUsage keyCertSign but no basicConstraints CA:TRUE: it is pinned/,
  },
  {
    code: 'E_MATCH_OVERLAP',
    certs: true,
    files: {
      'k.yaml': `kind: key\nid: a\ncertificate_match:\n  issuer: certs/ca.pem\n  san_uri: spiffe://corp.example/ns/pay/sa/api\n---\nkind: key\nid: b\ncertificate_match:\n  issuer: certs/ca.pem\n  san_uri: spiffe://corp.example/ns/*/sa/api\n`,
    },
    at: { file: 'k.yaml', line: 9, col: 1 },
    related: { file: 'k.yaml', line: 3, col: 1 },
  },
  {
    // Read by serve from its working directory: the config directory here (setup), so the bundle loads.
    code: 'W_UPSTREAM_TLS_RELATIVE',
    certs: true,
    files: {
      'a.yaml':
        'kind: api\nid: up\nuse_keyless: true\nproxy:\n  listen_path: /up/\n  target_url: https://backend.internal\n  upstream_tls:\n    client_certificate: certs/alice-with-key.pem\n    client_key_file: certs/alice-with-key.pem\n',
    },
    setup: (dir) => process.chdir(dir),
    at: { file: 'a.yaml', line: 8, col: 25 },
    message:
      /^upstream_tls\.client_certificate "certs\/alice-with-key\.pem" is relative: serve reads it from its own working directory on the gateway machine, not relative to this file/,
  },
  {
    // One by CN, one by SPIFFE ID with a wildcard: a certificate with CN=payments and that URI matches both.
    code: 'W_MATCH_FIELDS_DIFFER',
    certs: true,
    files: {
      'k.yaml': `kind: key\nid: a\ncertificate_match:\n  issuer: certs/ca.pem\n  subject_cn: payments\n---\nkind: key\nid: b\ncertificate_match:\n  issuer: certs/ca.pem\n  san_uri: spiffe://corp.example/ns/*/sa/api\n`,
    },
    at: { file: 'k.yaml', line: 9, col: 1 },
    related: { file: 'k.yaml', line: 3, col: 1 },
    message:
      /^keys "a" \(subject_cn payments\) and "b" \(san_uri spiffe:\/\/corp\.example\/ns\/\*\/sa\/api\) match certificates of the same issuer on different fields: a certificate with both values matches both and is refused at runtime \(401 auth\.cert_ambiguous\)$/,
  },
  {
    code: 'E_CRL_READ',
    files: { 'r.yaml': 'kind: revocation\nid: r\ncrl: [missing.crl]\n' },
    at: { file: 'r.yaml', line: 3, col: 7 },
    message: /no such file/,
  },
  {
    code: 'E_CRL_UNVERIFIED',
    certs: true,
    files: {
      'a.yaml': api('x', 'use_mutual_tls_auth: true\nclient_certificates: [certs/ca.pem]\n'),
      'r.yaml': 'kind: revocation\nid: r\ncrl:\n  - crl/other.crl\n',
    },
    at: { file: 'r.yaml', line: 4, col: 5 },
  },
  {
    code: 'E_CRL_ISSUER',
    certs: true,
    files: {
      'a.yaml': api('x', 'use_mutual_tls_auth: true\nclient_certificates: [certs/ca.pem]\n'),
      'r.yaml': 'kind: revocation\nid: r\ncrl_issuers:\n  - certs/other-ca.pem\n',
    },
    at: { file: 'r.yaml', line: 4, col: 5 },
    message: /is not signed by a CA the config trusts, or by another crl_issuers entry/,
  },
  {
    code: 'E_CRL_URL_ISSUER',
    certs: true,
    files: {
      'a.yaml': api('x', 'use_mutual_tls_auth: true\nclient_certificates: [certs/ca.pem, certs/other-ca.pem]\n'),
      'r.yaml': 'kind: revocation\nid: r\ncrl_urls:\n  - http://pki.example/x.crl\n',
    },
    at: { file: 'r.yaml', line: 4, col: 5 },
    message: /the config has 2 CAs that may sign its CRL .* write it as \{url: http:\/\/pki\.example\/x\.crl, issuer: /,
  },
  {
    code: 'E_CRL_STALE',
    certs: true,
    files: {
      'a.yaml': api('x', 'use_mutual_tls_auth: true\nclient_certificates: [certs/ca.pem]\n'),
      'r.yaml': 'kind: revocation\nid: r\ncrl:\n  - crl/stale.crl\n',
    },
    at: { file: 'r.yaml', line: 4, col: 5 },
  },
  {
    code: 'W_CRL_EXPIRING',
    certs: true,
    files: {
      'a.yaml': api('x', 'use_mutual_tls_auth: true\nclient_certificates: [certs/ca.pem]\n'),
      'r.yaml': 'kind: revocation\nid: r\ncrl:\n  - crl/soon.crl\n',
    },
    at: { file: 'r.yaml', line: 4, col: 5 },
    message: /in [12] hours?/,
  },
  {
    code: 'W_CERT_PRIVATE_KEY',
    certs: true,
    files: { 'k.yaml': key('certs/alice-with-key.pem') },
    at: { file: 'k.yaml', line: 3, col: 14 },
    message: /remove it from the file and from version control/,
  },
];

function show(ds: Diagnostic[]): string {
  return ds.map((d) => `${d.file}:${d.line}:${d.col} ${d.severity} ${d.code}: ${d.message}`).join('\n');
}

for (const c of CASES) {
  test(`${c.code} at ${c.at.file}:${c.at.line}:${c.at.col}`, async () => {
    const dir = writeConfig({ ...(c.certs ? await certFiles() : {}), ...c.files });
    const cwd = process.cwd();
    c.setup?.(dir);
    const result = await compileDir(dir, c.options).finally(() => process.chdir(cwd));
    const d = result.diagnostics.find((x) => x.code === c.code);
    assert.ok(d, `expected ${c.code}, got:\n${show(result.diagnostics)}`);
    assert.equal(d.severity, CODES[c.code].severity);
    assert.deepEqual({ file: d.file, line: d.line, col: d.col }, c.at, show([d]));
    if (c.message) assert.match(d.message, c.message);
    if (c.related) {
      const r = d.related?.[0];
      assert.ok(r, 'related position expected');
      assert.deepEqual({ file: r.file, line: r.line, col: r.col }, c.related);
    }
    if (CODES[c.code].severity === 'error') {
      assert.equal(result.bundle, null);
      assert.equal(result.content, null);
    } else {
      assert.equal(result.errorCount, 0, show(result.diagnostics));
      assert.ok(result.bundle, 'a config with only warnings still compiles');
    }
  });
}

test('every code in the table has a case above that triggers it', () => {
  const covered = new Set(CASES.map((c) => c.code));
  assert.deepEqual(
    Object.keys(CODES).filter((code) => !covered.has(code as keyof typeof CODES)),
    [],
  );
});
