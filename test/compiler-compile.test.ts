// A full, valid config: compiles clean, deterministically, to the expected bundle shape, with
// policies merged per key and no secret material in the bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { compileDir } from './helpers/compile-and-load.ts';
import { loadBundle } from '../bundle/read.ts';
import { api, certFiles, removeConfigs, testPki, writeConfig, type TestPki } from './fixtures/compiler/helpers.ts';

const TOKEN_CAROL = randomBytes(32).toString('base64url');
const TOKEN_BOB = randomBytes(32).toString('base64url');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

let pki: TestPki;
let dir: string;
const indent = (pem: string) =>
  pem
    .trim()
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');

before(async () => {
  pki = await testPki();

  dir = writeConfig({
    ...(await certFiles()),
    // Static mTLS alone: a CA (trust anchor), a pinned fingerprint and an inline PEM.
    'apis/reports.yaml': api(
      'reports',
      `name: Reports\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n  - ../certs/ca.pem\n  - sha256:${pki.bob.fingerprint.toUpperCase()}\n  - |\n${indent(pki.carol.certPem)}\n`,
    ),
    // Static mTLS + token, on a domain, with a custom header.
    'apis/logistics.yml': api(
      'logistics',
      'domain: Logistics.Example.TEST\nauth:\n  auth_header_name: X-Api-Key\nuse_mutual_tls_auth: true\nclient_certificates: [../certs/alice.pem, ../certs/bob.pem]\nstrip_auth_data: true\nforward_client_cert: true\n',
      '/logistics',
    ),
    // Dynamic mTLS.
    'apis/nested/profile.yaml': api('profile', 'auth:\n  use_certificate: true\n'),
    'policies.yaml':
      [
        'kind: policy\nid: partner\naccess_rights:\n  logistics:\n    allowed_urls:\n      - url: ^/shipments\n        methods: [get]\nrate: 10\nper: 1\nquota_max: 1000\nquota_renewal_rate: 3600',
        'kind: policy\nid: self-serve\naccess_rights:\n  profile: {}\n  logistics:\n    allowed_urls:\n      - url: ^/tracking\nrate: 100\nper: 60\nquota_max: -1',
        'kind: policy\nid: profile-only\naccess_rights:\n  profile: {}\nrate: 5\nper: 1\nportal:\n  name: Profile\n  description: your profile\n  require_approval: true',
      ].join('\n---\n') + '\n',
    'keys/alice.yaml': 'kind: key\nid: alice\ncertificate: ../certs/alice.pem\napply_policies: [profile-only]\n',
    'keys/carol.yaml': `kind: key\nid: carol\ntoken_sha256: ${sha(TOKEN_CAROL)}\napply_policies: [partner]\naccess_rights:\n  logistics:\n    allowed_urls:\n      - url: ^/shipments\n        methods: [POST]\nexpires: 2099-01-01T00:00:00+01:00\n`,
    'keys/bob.yaml': `kind: key\nid: bob\ncertificate: ../certs/bob.pem\ntoken_sha256: ${sha(TOKEN_BOB)}\napply_policies: [partner, self-serve]\nrate: 5\nper: 1\nis_inactive: true\n`,
  });
});
after(removeConfigs);

test('the full config compiles with no diagnostics', async () => {
  const r = await compileDir(dir);
  assert.deepEqual(r.diagnostics, []);
  assert.ok(r.bundle && r.content);
  assert.equal(loadBundle(r.bundle).content.keys.alice.id, 'alice');
});

test('compiling twice gives identical bytes', async () => {
  const a = await compileDir(dir);
  const b = await compileDir(dir);
  assert.ok(a.bundle && b.bundle);
  assert.equal(Buffer.compare(a.bundle, b.bundle), 0);
});

test('the bundle holds no private key and no plaintext token', async () => {
  const withKey = writeConfig({ ...(await certFiles()), 'k.yaml': 'kind: key\nid: k\ncertificate: certs/alice-with-key.pem\n' });
  const r = await compileDir(withKey);
  assert.ok(r.bundle, 'a private key next to a certificate is a warning only');
  assert.ok(!r.bundle.includes('PRIVATE KEY'));
  const full = (await compileDir(dir)).bundle!;
  assert.ok(!full.includes('PRIVATE KEY'));
  assert.ok(!full.includes(TOKEN_CAROL) && !full.includes(TOKEN_BOB));
});

test('golden shape: APIs, CAs and indexes', async () => {
  const c = (await compileDir(dir)).content!;
  assert.deepEqual(Object.keys(c), ['apis', 'cas', 'index', 'keys', 'not_after', 'revocation']);
  assert.deepEqual(c.apis.reports, {
    auth_header_name: 'authorization',
    client_cas: [pki.ca.fingerprint],
    client_certificates: [pki.bob.fingerprint, pki.carol.fingerprint].sort(),
    client_matches: [],
    domain: null,
    forward_client_cert: { key_id_header: null, rfc9440: false, xfcc: [] },
    id: 'reports',
    listen_path: '/reports/',
    name: 'Reports',
    strip_auth_data: false,
    strip_listen_path: true,
    upstream_http2: false,
    upstream_tls: null,
    target_url: 'http://127.0.0.1:9000',
    use_certificate: false,
    use_keyless: true,
    use_mutual_tls_auth: true,
  });
  assert.equal(c.apis.logistics.domain, 'logistics.example.test');
  assert.equal(c.apis.logistics.listen_path, '/logistics/');
  assert.equal(c.apis.logistics.auth_header_name, 'x-api-key');
  assert.equal(c.apis.profile.use_certificate, true);
  assert.deepEqual(c.apis.profile.client_certificates, []);

  const ca = c.cas[pki.ca.fingerprint];
  assert.deepEqual(ca.apis, ['reports']);
  assert.match(ca.subject, /CN=compiler test CA/);
  assert.match(ca.pem, /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+\n-----END CERTIFICATE-----\n$/);
  assert.ok(!(pki.ca.fingerprint in c.index.certs), 'a CA is a trust anchor, not a pinned leaf');

  assert.deepEqual(c.index.routes, { '*': { '/profile/': 'profile', '/reports/': 'reports' }, 'logistics.example.test': { '/logistics/': 'logistics' } });
  assert.deepEqual(c.index.tokens, { [sha(TOKEN_BOB)]: 'bob', [sha(TOKEN_CAROL)]: 'carol' });
  assert.deepEqual(c.index.certs[pki.alice.fingerprint], { apis: ['logistics'], key: 'alice' });
  assert.deepEqual(c.index.certs[pki.bob.fingerprint], { apis: ['logistics', 'reports'], key: 'bob' });
  assert.deepEqual(c.index.certs[pki.carol.fingerprint], { apis: ['reports'], key: null });
});

test('policies are merged into one session per key', async () => {
  const k = (await compileDir(dir)).content!.keys;
  assert.deepEqual(k.alice, {
    access_rights: { profile: { allowed_urls: null } },
    certificate_match: null,
    certificates: [pki.alice.fingerprint],
    expires: null,
    id: 'alice',
    is_inactive: false,
    policies: ['profile-only'],
    quota: null,
    rate: { per: 1, rate: 5 },
    token_sha256: null,
  });
  // Own rights united with the policy's: same url, methods united and upper-cased.
  assert.deepEqual(k.carol.access_rights, { logistics: { allowed_urls: [{ methods: ['GET', 'POST'], url: '^/shipments' }] } });
  assert.deepEqual(k.carol.rate, { per: 1, rate: 10 });
  assert.deepEqual(k.carol.quota, { max: 1000, renewal: 3600 });
  assert.equal(k.carol.expires, '2098-12-31T23:00:00.000Z');
  // Two policies: rights united per API; the most generous rate wins (10/s beats 5/s and
  // 100/min); quota -1 (unlimited) wins over 1000/h.
  assert.deepEqual(k.bob.access_rights.logistics.allowed_urls, [
    { methods: ['GET'], url: '^/shipments' },
    { methods: [], url: '^/tracking' },
  ]);
  assert.deepEqual(k.bob.access_rights.profile, { allowed_urls: null });
  assert.deepEqual(k.bob.policies, ['partner', 'self-serve']);
  assert.deepEqual(k.bob.rate, { per: 1, rate: 10 });
  assert.equal(k.bob.quota, null);
  assert.equal(k.bob.is_inactive, true);
  assert.equal(k.bob.token_sha256, sha(TOKEN_BOB));
});

test('an API granted whole by one source stays whole', async () => {
  const d = writeConfig({
    'a.yaml': api('x'),
    'p.yaml': 'kind: policy\nid: narrow\naccess_rights:\n  x:\n    allowed_urls:\n      - url: ^/a\n',
    'k.yaml': `kind: key\nid: k\ntoken_sha256: ${'c'.repeat(64)}\napply_policies: [narrow]\naccess_rights:\n  x: {}\n`,
  });
  const r = await compileDir(d);
  assert.deepEqual(r.content!.keys.k.access_rights, { x: { allowed_urls: null } });
});

test('problems in several files are all reported in one run', async () => {
  const d = writeConfig({
    'a.yaml': api('a', 'use_keyless: true\nauth:\n  use_certificate: true\n'),
    'b.yaml': api('b', 'use_mutual_tls_auth: true\n'),
    'c.yaml': 'kind: key\nid: k\napply_policies: [missing]\n',
    'd.yaml': 'kind: api\nid: [broken\n',
    'e.yaml': api('e', 'bogus: 1\n'),
  });
  const r = await compileDir(d);
  const seen = r.diagnostics.map((x) => `${x.file} ${x.code}`);
  for (const want of [
    'a.yaml E_AUTH_COMBO',
    'b.yaml E_MTLS_NO_CERTS',
    'c.yaml E_KEY_NO_CREDENTIAL',
    'c.yaml E_UNKNOWN_POLICY',
    'd.yaml E_YAML_SYNTAX',
    'e.yaml E_UNKNOWN_FIELD',
  ]) {
    assert.ok(seen.includes(want), `${want} missing from ${seen.join(', ')}`);
  }
  assert.equal(r.errorCount, r.diagnostics.filter((x) => x.severity === 'error').length);
  const sorted = [...r.diagnostics].sort((x, y) => x.file.localeCompare(y.file) || x.line - y.line || x.col - y.col);
  assert.deepEqual(
    r.diagnostics.map((x) => x.file),
    sorted.map((x) => x.file),
  );
  assert.equal(r.bundle, null);
});

test('a missing config directory throws ConfigDirError (an I/O error, not a diagnostic)', async () => {
  await assert.rejects(compileDir('/nonexistent/mtlsgate-config'), { name: 'ConfigDirError' });
});

test('a symlink loop in the config directory is followed once, not forever', async () => {
  const d = writeConfig({ 'apis/a.yaml': api('a') });
  symlinkSync('..', join(d, 'apis', 'loop'));
  const r = await compileDir(d);
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
  assert.deepEqual(Object.keys(r.content!.apis), ['a']);
});

test('a reference to a document that failed the schema is not also reported as unknown', async () => {
  const d = writeConfig({
    'a.yaml': api('x', 'bogus: 1\n'),
    'p.yaml': 'kind: policy\nid: p\nrate: 1\n',
    'k.yaml': `kind: key\nid: k\ntoken_sha256: ${'f'.repeat(64)}\napply_policies: [p]\naccess_rights:\n  x: {}\n`,
  });
  const codes = (await compileDir(d)).diagnostics.map((x) => x.code).sort();
  assert.deepEqual(codes, ['E_MISSING_FIELD', 'E_UNKNOWN_FIELD']);
});

test('a leaf with its chain in one file pins the leaf only; a CA file alone is a trust anchor', async () => {
  const p = await testPki();
  const d = writeConfig({
    'leaf-and-ca.pem': p.alice.certPem + p.ca.certPem,
    'ca.pem': p.ca.certPem,
    'a.yaml': api('a', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [leaf-and-ca.pem]\n'),
    'b.yaml': api('b', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n'),
  });
  const c = (await compileDir(d)).content!;
  assert.deepEqual([c.apis.a.client_certificates, c.apis.a.client_cas], [[p.alice.fingerprint], []]);
  assert.deepEqual([c.apis.b.client_certificates, c.apis.b.client_cas], [[], [p.ca.fingerprint]]);
  assert.deepEqual(Object.keys(c.cas), [p.ca.fingerprint]);
});

test('a document with a misspelt field is still checked, so its other problems show in the same run', async () => {
  const d = writeConfig({ 'a.yaml': api('a', 'use_keyless: true\nauth:\n  use_certificate: true\nstrip_auth_dat: true\n') });
  const r = await compileDir(d);
  assert.deepEqual(
    r.diagnostics.map((x) => x.code),
    ['E_AUTH_COMBO', 'E_UNKNOWN_FIELD'],
  );
  assert.match(r.diagnostics[1].message, /did you mean "strip_auth_data"/);
  assert.equal(r.bundle, null);
});

test('an unknown field far from its name in letters but plain in words gets a suggestion: keyless -> use_keyless, mutual_tls -> use_mutual_tls_auth', async () => {
  const d = writeConfig({ 'a.yaml': api('a', 'keyless: true\nmutual_tls: true\n') });
  const r = await compileDir(d);
  const messages = r.diagnostics.filter((x) => x.code === 'E_UNKNOWN_FIELD').map((x) => x.message);
  assert.deepEqual(messages, [
    'unknown field "keyless" in an api (did you mean "use_keyless"?)',
    'unknown field "mutual_tls" in an api (did you mean "use_mutual_tls_auth"?)',
  ]);
  // Two candidates as near in words: no guess (auth_data is in strip_auth_data, and holds auth).
  const two = await compileDir(writeConfig({ 'a.yaml': api('a', 'auth_data: true\n') }));
  assert.equal(two.diagnostics.find((x) => x.code === 'E_UNKNOWN_FIELD')?.message, 'unknown field "auth_data" in an api');
});

test('certificates: several per key (files, inline PEM, sha256 pins), each identifying the key', async () => {
  const p = await testPki();
  const d = writeConfig({
    ...(await certFiles()),
    'a.yaml': api('x', 'auth:\n  use_certificate: true\n'),
    'k.yaml': `kind: key\nid: k\ncertificates:\n  - certs/alice.pem\n  - sha256:${p.carol.fingerprint.toUpperCase()}\n  - |\n${indent(p.bob.certPem)}\naccess_rights:\n  x: {}\n---\nkind: key\nid: pin\ncertificate: sha256:${'e'.repeat(64)}\naccess_rights:\n  x: {}\n`,
  });
  const r = await compileDir(d);
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
  const c = r.content!;
  assert.deepEqual(c.keys.k.certificates, [p.alice.fingerprint, p.bob.fingerprint, p.carol.fingerprint].sort());
  for (const fp of c.keys.k.certificates) assert.deepEqual(c.index.certs[fp], { apis: [], key: 'k' });
  assert.deepEqual(c.keys.pin.certificates, ['e'.repeat(64)]);
  assert.equal(c.index.certs['e'.repeat(64)].key, 'pin');
});

test('a malformed sha256 pin on a key is E_FIELD_VALUE at the entry', async () => {
  const d = writeConfig({ 'k.yaml': 'kind: key\nid: k\ncertificates:\n  - sha256:abc\n' });
  const diag = (await compileDir(d)).diagnostics.find((x) => x.code === 'E_FIELD_VALUE');
  assert.deepEqual(diag && [diag.line, diag.col], [4, 5]);
  assert.match(diag!.message, /certificates\[0\] "sha256:abc"/);
});
