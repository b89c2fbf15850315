// Compile side of issue 11: certificate_match on keys, object entries in client_certificates,
// overlap and never-match diagnostics, kind: revocation (CRL files verified, deny list) and the
// expiry data the runtime reports on.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { loadBundle } from '../bundle/read.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { matchersOverlap, valuesOverlap } from '../compiler/match-overlap.ts';
import { fieldPattern } from '../bundle/match-fields.ts';
import { api, certFiles, removeConfigs, testPki, writeConfig } from './fixtures/compiler/helpers.ts';

after(removeConfigs);

const matchKey = (id: string, fields: string) => `kind: key\nid: ${id}\ncertificate_match:\n  issuer: certs/ca.pem\n${fields}access_rights:\n  x: {}\n`;

test('certificate_match resolves to the CA fingerprint, indexed by key; the CA is trusted config-wide', async () => {
  const p = await testPki();
  const dir = writeConfig({
    ...(await certFiles()),
    'a.yaml': api('x', 'auth:\n  use_certificate: true\n'),
    'k.yaml': [
      matchKey('payments', '  san_uri: spiffe://corp.example/ns/payments/sa/api\n'),
      matchKey('web', '  san_dns: "*.Web.Corp.Example"\n'),
      matchKey('ops', '  san_email: ops@Corp.Example\n  subject_cn: ops\n'),
    ].join('---\n'),
  });
  const r = await compileDir(dir);
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
  const c = loadBundle(r.bundle!).content;
  assert.deepStrictEqual(c.keys.payments.certificate_match, {
    issuer: p.ca.fingerprint,
    san_dns: null,
    san_email: null,
    san_uri: 'spiffe://corp.example/ns/payments/sa/api',
    subject_cn: null,
  });
  assert.equal(c.index.matches.web.san_dns, '*.web.corp.example', 'DNS names compare case-insensitively');
  assert.equal(c.index.matches.ops.san_email, 'ops@corp.example', 'the email domain is case-insensitive, the local part is not');
  assert.deepEqual(Object.keys(c.index.matches), ['ops', 'payments', 'web']);
  assert.deepEqual(c.cas[p.ca.fingerprint].apis, [], 'a key issuer is trusted without an API listing it');
  assert.ok(c.not_after[p.ca.fingerprint] > Date.now() / 1000);
});

test('client_certificates object entries: a CA trusted for some subjects only', async () => {
  const p = await testPki();
  const dir = writeConfig({
    ...(await certFiles()),
    'a.yaml': api(
      'x',
      'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n  - {issuer: certs/ca.pem, san_uri: "spiffe://corp.example/ns/reporting/*"}\n',
    ),
  });
  const r = await compileDir(dir);
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
  const api0 = r.content!.apis.x;
  assert.deepEqual(api0.client_cas, [], 'a CA with subject fields is not a whole-CA trust entry');
  assert.deepEqual(api0.client_matches, [
    { issuer: p.ca.fingerprint, san_dns: null, san_email: null, san_uri: 'spiffe://corp.example/ns/reporting/*', subject_cn: null },
  ]);
  assert.deepEqual(r.content!.cas[p.ca.fingerprint].apis, ['x']);
});

test('never-match diagnostics point at the field: malformed SPIFFE IDs, DNS names, unknown pinned issuers', async () => {
  const cases: [string, RegExp, [number, number]][] = [
    ['  san_uri: spiffe://corp.example/ns//sa\n', /no empty segments/, [5, 12]],
    ['  san_uri: spiffe://Corp.Example/ns/a\n', /trust domain/, [5, 12]],
    ['  san_uri: spiffe://corp.example/ns/a/\n', /must not end with/, [5, 12]],
    ['  san_uri: spiffe://corp.example/ns/a%20b\n', /character SPIFFE does not allow/, [5, 12]],
    ['  san_dns: web.corp.*\n', /top-level domain/, [5, 12]],
    ['  san_dns: -bad.example\n', /not a DNS label/, [5, 12]],
    ['  san_email: nobody\n', /one "@"/, [5, 14]],
    ['  san_uri: "https://corp.example/a?q=*"\n', /not in a query or fragment/, [5, 12]],
    ['  san_uri: "*/x"\n', /absolute URI/, [5, 12]],
    ['  san_uri: "https://corp.example/../*"\n', /"\." or "\.\." segment/, [5, 12]],
  ];
  for (const [fields, message, at] of cases) {
    const dir = writeConfig({ ...(await certFiles()), 'a.yaml': api('x'), 'k.yaml': matchKey('k', fields) });
    const d = (await compileDir(dir)).diagnostics.find((x) => x.code === 'E_MATCH_NEVER');
    assert.ok(d, fields);
    assert.match(d.message, message);
    assert.deepEqual([d.line, d.col], at, fields);
  }
  const pinned = writeConfig({ 'a.yaml': api('x'), 'k.yaml': `kind: key\nid: k\ncertificate_match:\n  issuer: sha256:${'ab'.repeat(32)}\n  subject_cn: k\n` });
  assert.match((await compileDir(pinned)).diagnostics.find((x) => x.code === 'E_MATCH_NEVER')!.message, /not a CA certificate named elsewhere/);
});

test('overlap: same issuer and overlapping values only; disjoint rules and other issuers compile', async () => {
  const files = async (a: string, b: string, issuerB = 'certs/ca.pem') => ({
    ...(await certFiles()),
    'a.yaml': api('x'),
    'k.yaml': `${matchKey('a', a)}---\n${matchKey('b', b).replace('certs/ca.pem', issuerB)}`,
  });
  const overlaps = async (a: string, b: string, issuerB?: string) =>
    (await compileDir(writeConfig(await files(a, b, issuerB)))).diagnostics.some((d) => d.code === 'E_MATCH_OVERLAP');
  assert.equal(await overlaps('  san_uri: spiffe://c/ns/a\n', '  san_uri: spiffe://c/ns/a\n'), true);
  assert.equal(await overlaps('  san_uri: spiffe://c/ns/a\n', '  san_uri: spiffe://c/ns/b\n'), false);
  assert.equal(
    await overlaps('  san_uri: spiffe://c/ns/a\n', '  san_uri: spiffe://c/ns/a\n  subject_cn: a\n'),
    true,
    'a field only one rule constrains does not separate them',
  );
  assert.equal(await overlaps('  san_uri: spiffe://c/ns/a\n', '  san_dns: a.example\n'), false, 'rules on disjoint fields are left to the runtime');
  assert.equal(await overlaps('  san_uri: spiffe://c/ns/a/x\n', '  san_uri: spiffe://c/ns/*\n'), false, '* stays within one segment');
  assert.equal(await overlaps('  san_uri: spiffe://c/ns/a\n', '  san_uri: spiffe://c/ns/a\n', 'certs/other-ca.pem'), false);
});

test('glob semantics: * is one or more characters within a segment or label', () => {
  assert.equal(fieldPattern('san_dns', '*.corp.example').test('api.corp.example'), true);
  assert.equal(fieldPattern('san_dns', '*.corp.example').test('a.b.corp.example'), false);
  assert.equal(fieldPattern('san_dns', '*.corp.example').test('.corp.example'), false);
  assert.equal(fieldPattern('san_uri', 'spiffe://c/ns/*/sa/api').test('spiffe://c/ns/pay/sa/api'), true);
  assert.equal(fieldPattern('san_uri', 'spiffe://c/ns/*/sa/api').test('spiffe://c/ns/a/b/sa/api'), false);
  assert.equal(valuesOverlap('san_dns', 'a-*.x.example', '*-b.x.example'), true);
  assert.equal(valuesOverlap('san_dns', 'a-*.x.example', 'b-*.x.example'), false);
  // A pattern and a value overlap exactly when the runtime's pattern admits the value.
  assert.equal(valuesOverlap('san_uri', 'spiffe://c/ns/*', 'spiffe://c/ns/pay'), true);
  assert.equal(valuesOverlap('san_uri', 'https://c/ns/*', 'https://c/ns/a%2Fb'), false);
  assert.equal(valuesOverlap('san_dns', '*.x.example', 'a_b.x.example'), false);
  const m = { issuer: 'i', san_dns: null, san_email: null, san_uri: null, subject_cn: null };
  assert.equal(matchersOverlap({ ...m, subject_cn: 'a*' }, { ...m, subject_cn: '*b' }), true);
});

test('kind: revocation: a CRL file verified against a trusted CA, merged with the deny list', async () => {
  const p = await testPki();
  const dir = writeConfig({
    ...(await certFiles()),
    'a.yaml': api('x', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [certs/ca.pem]\n'),
    'r.yaml': `kind: revocation\nid: internal\ncrl: [crl/fresh.crl]\ncrl_urls: [http://pki.example/internal.crl]\ncertificates: [certs/expired.pem, "sha256:${'CD'.repeat(32)}"]\n`,
  });
  const r = await compileDir(dir);
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
  const rev = loadBundle(r.bundle!).content.revocation;
  const bobSerial = p.bob.cert.serialNumber.toLowerCase().replace(/^0+/, '');
  assert.deepEqual(rev.crls[p.ca.fingerprint].serials, [bobSerial]);
  assert.deepEqual(rev.crls[p.ca.fingerprint].sources, ['internal']);
  assert.ok(Date.parse(rev.crls[p.ca.fingerprint].next_update!) > Date.now());
  assert.deepEqual(rev.crl_urls, ['http://pki.example/internal.crl']);
  assert.deepEqual(rev.denied, [p.expired.fingerprint, 'cd'.repeat(32)].sort(), 'an expired certificate can be denied without an expiry error');
});
