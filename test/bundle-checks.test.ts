// bundle/checks.ts: the rules the runtime applies when it builds a snapshot are the rules the
// compiler reports with positions, so nothing `compile` accepts is refused by `serve`.
// bundle/defaults.ts: the defaults the compiler fills in are the ones the schemas document.
// bundle/read.ts: every field of every bundle type is verified.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { bundleProblems } from '../bundle/checks.ts';
import { API_DEFAULTS, KEY_DEFAULTS } from '../bundle/defaults.ts';
import { BundleError } from '../bundle/bundle-error.ts';
import { loadBundle } from '../bundle/read.ts';
import { bundleOfContentBytes, serializeBundle, serializeWire } from '../bundle/write.ts';
import type { WireContent } from '../bundle/types.ts';
import { encodeContent } from '../bundle/wire.ts';
import { buildSnapshot } from '../runtime/snapshot.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { apiWithDefaults, bundleContent } from './helpers/bundle-builder.ts';
import { removeConfigs, TOKEN_A, writeConfig } from './fixtures/compiler/helpers.ts';

after(removeConfigs);

const apiYaml = (target: string) => `kind: api\nid: a\nproxy:\n  listen_path: /a/\n  target_url: ${JSON.stringify(target)}\n`;

test('the issue example: a target_url with credentials and a query fails check at its position, as serve refuses it', async () => {
  const target = 'http://user:pw@127.0.0.1:9101/base?x=1';
  const r = await compileDir(writeConfig({ 'a.yaml': apiYaml(target) }));
  assert.equal(r.bundle, null);
  const d = r.diagnostics.find((x) => x.code === 'E_TARGET_URL');
  assert.ok(d, JSON.stringify(r.diagnostics));
  assert.deepEqual([d.file, d.line, d.col], ['a.yaml', 5, 15]);
  const content = bundleContent([{ id: 'a', listen_path: '/a/', target_url: target }]);
  // serve quotes the URL with its userinfo and query redacted (test/security-upstream-url-secrets.test.ts).
  assert.throws(
    () => buildSnapshot(loadBundle(serializeBundle(content))),
    /api a: target_url "http:\/\/REDACTED@127\.0\.0\.1:9101\/base\?REDACTED" must not carry/,
  );
});

test('each part the proxy would drop is named: credentials, query, fragment', async () => {
  for (const [target, has] of [
    ['http://u@h.example/', 'credentials'],
    ['https://h.example/x?a=1', 'a query'],
    ['http://h.example/#top', 'a fragment'],
  ]) {
    const r = await compileDir(writeConfig({ 'a.yaml': apiYaml(target) }));
    const d = r.diagnostics.find((x) => x.code === 'E_TARGET_URL');
    assert.ok(d, `${target}: ${JSON.stringify(r.diagnostics)}`);
    assert.match(d.message, new RegExp(`\\(it has ${has}\\)`), target);
  }
});

test('an expiry the schema admits but Date cannot read (a leap second) is a diagnostic at the value, not a crash', async () => {
  const r = await compileDir(writeConfig({ 'k.yaml': `kind: key\nid: k\ntoken_sha256: ${TOKEN_A}\nexpires: "2026-12-31T23:59:60Z"\n` }));
  const d = r.diagnostics.find((x) => x.code === 'E_FIELD_VALUE');
  assert.ok(d, JSON.stringify(r.diagnostics));
  assert.deepEqual([d.line, d.col], [4, 10]);
  assert.match(d.message, /expires "2026-12-31T23:59:60Z" is not an ISO-8601 time the gateway can read/);
  assert.equal(r.bundle, null);
});

test('property: whatever target_url and expires compile, the runtime builds a snapshot from (compileDir here asserts it)', async () => {
  const target = fc.oneof(
    fc.webUrl({ withQueryParameters: true, withFragments: true, authoritySettings: { withUserInfo: true, withPort: true, withIPv4: true, withIPv6: true } }),
    fc.constantFrom('http://127.0.0.1:9101', 'https://[::1]:8443/a/b/', 'http://h/%zz', 'http://h:99999/', 'http://h/?', 'http://h/#', 'http:///x', 'https://'),
  );
  const expires = fc.oneof(
    fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()),
    fc.constantFrom('2026-12-31T23:59:60Z', '2027-01-01T00:00:00+14:00', '2027-02-29T00:00:00Z', '2027-01-01t00:00:00z', '2027-01-01T00:00:00.123456789Z'),
  );
  await fc.assert(
    fc.asyncProperty(target, expires, async (url, exp) => {
      const dir = writeConfig({
        'a.yaml': apiYaml(url),
        'k.yaml': `kind: key\nid: k\ntoken_sha256: ${TOKEN_A}\nexpires: ${JSON.stringify(exp)}\naccess_rights:\n  a: {}\n`,
      });
      const r = await compileDir(dir); // throws if the bundle compiles but the snapshot builder refuses it
      if (r.bundle === null) assert.ok(r.errorCount > 0);
    }),
    { numRuns: 150 },
  );
});

test('bundleProblems lists every record the runtime would refuse, with the runtime message', () => {
  const content = bundleContent(
    [
      { id: 'a', listen_path: '/a/', target_url: 'ftp://x/' },
      { id: 'b', listen_path: '/b/', target_url: 'http://127.0.0.1/' },
    ],
    [
      { id: 'k', expires: 'not a time' },
      { id: 'm', access_rights: { b: { allowed_urls: [{ url: '^/(', methods: [] }] } } },
    ],
  );
  content.apis.b.client_cas = ['c'.repeat(64)];
  content.cas['c'.repeat(64)] = { pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', subject: 'CN=broken', apis: ['b'] };
  assert.deepEqual(
    bundleProblems(encodeContent(content)).map((p) => [p.record.kind, p.record.id, p.message.replace(/: .*$/s, ':')]),
    [
      ['api', 'a', 'api a:'],
      ['api', 'b', `ca ${'c'.repeat(64)} (CN=broken) used by api b:`],
      ['key', 'k', 'key k:'],
      ['key', 'm', 'key m:'],
    ],
  );
  const messages = bundleProblems(encodeContent(content)).map((p) => p.message);
  assert.match(messages[0], /target_url "ftp:\/\/x\/" must be http:\/\/ or https:\/\//);
  assert.match(messages[1], /its PEM is not a readable certificate/);
  assert.match(messages[2], /expires "not a time" is not an ISO-8601 time/);
  assert.match(messages[3], /access_rights\.b\.allowed_urls\[0\]\.url "\^\/\(" cannot run in RE2 \(linear time\): missing closing \)/);
  // The runtime stops at the first of them, with the same message.
  assert.throws(
    () => buildSnapshot(loadBundle(serializeBundle(content))),
    (err: Error) => err.message === messages[0],
  );
});

test('the defaults the compiler fills in are the defaults schema/*.json documents', async () => {
  const schema = (kind: string) => JSON.parse(readFileSync(join(import.meta.dirname, '..', 'schema', `${kind}.schema.json`), 'utf8'));
  const api = schema('api').properties;
  const documented = {
    strip_listen_path: api.proxy.properties.strip_listen_path.default,
    use_keyless: api.use_keyless.default,
    use_mutual_tls_auth: api.use_mutual_tls_auth.default,
    use_certificate: api.auth.properties.use_certificate.default,
    auth_header_name: api.auth.properties.auth_header_name.default.toLowerCase(),
    strip_auth_data: api.strip_auth_data.default,
    // The schema's `false` is the bundle's "forward nothing".
    forward_client_cert: api.forward_client_cert.default === false ? { key_id_header: null, rfc9440: false, xfcc: [] } : null,
  };
  for (const [field, value] of Object.entries(documented)) assert.deepEqual(API_DEFAULTS[field as keyof typeof API_DEFAULTS], value, field);
  assert.equal(KEY_DEFAULTS.is_inactive, schema('key').properties.is_inactive.default);
  // And a compiled minimal API and key hold exactly these values.
  const r = await compileDir(
    writeConfig({ 'a.yaml': apiYaml('http://127.0.0.1:9000'), 'k.yaml': `kind: key\nid: k\ntoken_sha256: ${TOKEN_A}\naccess_rights:\n  a: {}\n` }),
  );
  const c = r.content!;
  for (const [field, value] of Object.entries(API_DEFAULTS)) assert.deepEqual(c.apis.a[field as keyof typeof API_DEFAULTS], value, field);
  for (const [field, value] of Object.entries(KEY_DEFAULTS))
    if (field !== 'token_sha256') assert.equal(c.keys.k[field as keyof typeof KEY_DEFAULTS], value, field);
});

test('the verifier checks every field of an API, a session, the key columns, a CA and the certificate and token tables', () => {
  const full = (): WireContent => {
    const c = bundleContent(
      [{ id: 'a', listen_path: '/a/', target_url: 'http://127.0.0.1/', use_mutual_tls_auth: true, client_certificates: ['f'.repeat(64)] }],
      [{ id: 'k', token_sha256: 'a'.repeat(64), expires: '2030-01-01T00:00:00.000Z', is_inactive: true }],
    );
    c.keys.k = {
      ...c.keys.k,
      rate: { rate: 1, per: 1 },
      quota: { max: 1, renewal: 1 },
      access_rights: { a: { allowed_urls: [{ url: '^/', methods: [] }] } },
    };
    c.cas['c'.repeat(64)] = { pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', subject: 'CN=x', apis: [] };
    return encodeContent(c);
  };
  type Rec = Record<string, unknown>;
  const records: Array<[string, (c: WireContent) => Rec]> = [
    ['content.apis.a', (c) => c.apis.a as unknown as Rec],
    ['content.sessions[0]', (c) => c.sessions[0] as unknown as Rec],
    ['content.sessions[0].rate', (c) => c.sessions[0].rate as unknown as Rec],
    ['content.sessions[0].quota', (c) => c.sessions[0].quota as unknown as Rec],
    ['content.sessions[0].access_rights.a', (c) => c.sessions[0].access_rights.a as unknown as Rec],
    ['content.sessions[0].access_rights.a.allowed_urls[]', (c) => c.sessions[0].access_rights.a.allowed_urls![0] as unknown as Rec],
    ['content.keys', (c) => c.keys as unknown as Rec],
    ['content.certs', (c) => c.certs as unknown as Rec],
    ['content.tokens', (c) => c.tokens as unknown as Rec],
    [`content.cas.${'c'.repeat(64)}`, (c) => c.cas['c'.repeat(64)] as unknown as Rec],
    ['content.apis.a.forward_client_cert', (c) => c.apis.a.forward_client_cert as unknown as Rec],
    ['content.revocation', (c) => c.revocation as unknown as Rec],
    ['content', (c) => c as unknown as Rec],
  ];
  loadBundle(serializeWire(full()));
  for (const [path, pick] of records) {
    for (const field of Object.keys(pick(full()))) {
      const c = full();
      pick(c)[field] = -1;
      assert.throws(
        () => loadBundle(serializeWire(c)),
        (err: Error) => err instanceof BundleError && err.message.includes(`${path}.${field} `),
        `${path}.${field}`,
      );
    }
  }
  // A field of the type that the record leaves out is refused too (apiWithDefaults fills all).
  const c = full();
  c.apis.a = apiWithDefaults('a');
  delete (c.apis.a as Partial<typeof c.apis.a>).forward_client_cert;
  assert.throws(() => loadBundle(serializeWire(c)), /content\.apis\.a\.forward_client_cert must be an object/);
});

test('the verifier refuses columns and tables that do not fit together', () => {
  const base = (): WireContent =>
    encodeContent(
      bundleContent(
        [{ id: 'a', listen_path: '/a/', target_url: 'http://127.0.0.1/', use_mutual_tls_auth: true, client_certificates: ['f'.repeat(64)] }],
        [
          { id: 'k', token_sha256: 'a'.repeat(64), certificates: ['b'.repeat(64)] },
          { id: 'm', token_sha256: 'c'.repeat(64), certificates: ['d'.repeat(64)] },
        ],
      ),
    );
  const cases: Array<[string, (c: WireContent) => void, RegExp]> = [
    ['session out of range', (c) => (c.keys.session[1] = 7), /content\.keys\.session\[1\] names no entry of content\.sessions/],
    ['one session column entry missing', (c) => c.keys.session.pop(), /content\.keys\.session must have one entry per key/],
    ['ids out of order', (c) => c.keys.ids.reverse(), /content\.keys\.ids must be strictly ascending/],
    ['certificate key out of range', (c) => (c.certs.key[0] = 2), /content\.certs\.key\[0\] names no row/],
    [
      'certificate table out of order',
      (c) => (c.certs.hex = c.certs.hex.slice(64) + c.certs.hex.slice(0, 64)),
      /content\.certs\.hex must be strictly ascending/,
    ],
    ['certificate table cut', (c) => (c.certs.hex = c.certs.hex.slice(1)), /content\.certs\.hex must be 64-character/],
    ['a not_after missing', (c) => c.certs.not_after.pop(), /content\.certs\.not_after must have one entry per fingerprint/],
    ['a pin of an unknown fingerprint', (c) => (c.certs.apis['e'.repeat(64)] = ['a']), /content\.certs\.apis\.e+ must name a fingerprint/],
    ['a pin by an unknown API', (c) => (c.certs.apis['f'.repeat(64)] = ['zz']), /names API "zz" missing/],
    ['token to no key', (c) => (c.tokens.key[0] = -1), /content\.tokens\.key\[0\] names no row/],
    ['two tokens for one key', (c) => (c.tokens.key[1] = c.tokens.key[0]), /a second token/],
    ['expiry of an unknown key', (c) => (c.keys.expires.zz = '2030-01-01T00:00:00.000Z'), /content\.keys\.expires\.zz names key "zz" missing/],
    ['an unknown key inactive', (c) => c.keys.inactive.push('zz'), /content\.keys\.inactive names key "zz" missing/],
  ];
  loadBundle(serializeWire(base()));
  for (const [name, corrupt, error] of cases) {
    const c = base();
    corrupt(c);
    assert.throws(
      () => loadBundle(serializeWire(c)),
      (err: Error) => err instanceof BundleError && error.test(err.message),
      name,
    );
  }
});

// Section 41 bounds a limit in the compiler; a bundle written by other means (or edited) could
// still carry one, and a single such key made the Redis script fail for every key.
test('a bundle carrying a limit past what the limiter can hold (a period past 100 years, a count past 2^53, Infinity) is refused by serve, naming the key', () => {
  const api = [{ id: 'a', listen_path: '/a/', target_url: 'http://127.0.0.1/' }];
  const withLimits = (over: Record<string, unknown>) => {
    const c = bundleContent(api, [{ id: 'k', token_sha256: 'a'.repeat(64) }]);
    c.keys.k = { ...c.keys.k, access_rights: { a: { allowed_urls: null } }, ...over };
    return serializeBundle(c);
  };
  for (const [over, problem] of [
    [{ rate: { rate: 1, per: 1e300 } }, /key k: rate\.per 1e\+300 is past 3155760000 s/],
    [{ rate: { rate: 1e-300, per: 1 } }, /key k: rate 1e-300 per 1 s admits one request in more than/],
    [{ rate: { rate: 2 ** 60, per: 1 } }, /key k: rate\.rate 1152921504606847000 is past 9007199254740991/],
    [{ quota: { max: 2 ** 60, renewal: 60 } }, /key k: quota\.max .* is past 9007199254740991/],
    [{ quota: { max: 10, renewal: 1e300 } }, /key k: quota\.renewal 1e\+300 is past/],
  ] as const)
    assert.throws(() => buildSnapshot(loadBundle(withLimits(over))), problem, JSON.stringify(over));
  // JSON reads 1e400 as Infinity: refused too (by the shape check, before these bounds), not taken as "no limit".
  const text = withLimits({ quota: { max: 10, renewal: 86_400 } }).toString('utf8');
  const content = text.slice(text.indexOf('"content":') + '"content":'.length, -2);
  assert.ok(content.includes('"renewal":86400'));
  const infinite = bundleOfContentBytes([Buffer.from(content.replace('"renewal":86400', '"renewal":1e400'))]).bytes;
  assert.throws(() => buildSnapshot(loadBundle(infinite)), /content\.sessions\[0\]\.quota\.renewal must be a positive number/);
  // The largest values the compiler admits still load.
  const snapshot = buildSnapshot(
    loadBundle(withLimits({ rate: { rate: 1, per: 3_155_760_000 }, quota: { max: Number.MAX_SAFE_INTEGER, renewal: 3_155_760_000 } })),
  );
  assert.ok(snapshot);
});
