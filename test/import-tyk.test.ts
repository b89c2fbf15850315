// `mtlsgate import tyk`: the fixtures in test/fixtures/tyk (classic and OAS API definitions,
// policies, key sessions and a tyk.conf, written from Tyk's documentation and schema) convert
// to exactly the YAML below, every field that cannot be converted is reported with its file
// and JSON pointer, a fatal input writes nothing, and an imported config serves what Tyk did
// (real certificates, real curl).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { CLI, compileWithCli, curl, demoPki } from './helpers/serve-fixtures.ts';
import { startEcho } from './helpers/gateway-fixtures.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'tyk');
const tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-import-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function importTyk(out: string, ...inputs: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'import', 'tyk', ...inputs, '-o', out], { encoding: 'utf8', timeout: 60_000, cwd: FIXTURES });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const yamlOf = (out: string, path: string) => parse(readFileSync(join(out, path), 'utf8'));

const PARTNER = 'sha256:a3f1c2d4e5b6a7980112233445566778899aabbccddeeff00112233445566778';
const BOB = 'sha256:0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeeff0';

const out = join(tmp, 'all');
const all = importTyk(out, '.');

test('classic API definitions: listen path, strip, target, domain, keyless, token header, use_certificate, strip_auth_data, static mTLS pins', () => {
  assert.deepEqual(yamlOf(out, 'apis/b7d1e3a2f4c64c0e9a1f2b3c4d5e6f70.yaml'), {
    kind: 'api',
    id: 'b7d1e3a2f4c64c0e9a1f2b3c4d5e6f70',
    name: 'Partner reports',
    proxy: { listen_path: '/reports/', target_url: 'http://reports.internal:8080', strip_listen_path: true },
    domain: 'reports.example.com',
    use_keyless: true,
    use_mutual_tls_auth: true,
    client_certificates: [PARTNER, '../certs/partner-b.pem'],
  });
  assert.deepEqual(yamlOf(out, 'apis/logistics-api_v1.yaml'), {
    kind: 'api',
    id: 'logistics-api_v1',
    name: 'Logistics',
    proxy: { listen_path: '/logistics', target_url: 'https://logistics.internal', strip_listen_path: false },
    use_standard_auth: true,
    auth: { auth_header_name: 'X-Api-Key' },
    use_mutual_tls_auth: true,
    client_certificates: [PARTNER, BOB],
    strip_auth_data: true,
  });
  assert.deepEqual(yamlOf(out, 'apis/c0ffee00c0ffee00c0ffee00c0ffee00.yaml'), {
    kind: 'api',
    id: 'c0ffee00c0ffee00c0ffee00c0ffee00',
    name: 'Profile',
    proxy: { listen_path: '/profile/', target_url: 'http://profile.internal:9000', strip_listen_path: true },
    use_standard_auth: true,
    auth: { use_certificate: true },
  });
  // A Dashboard export ({"api_definition": ...}); JWT becomes token auth (fails closed).
  assert.deepEqual(yamlOf(out, 'apis/9f8e7d6c5b4a39281716059483726150.yaml'), {
    kind: 'api',
    id: '9f8e7d6c5b4a39281716059483726150',
    name: 'Billing',
    proxy: { listen_path: '/billing/', target_url: 'http://billing.internal', strip_listen_path: true },
    use_standard_auth: true,
    strip_auth_data: true,
  });
});

test('Tyk OAS API definitions: x-tyk-api-gateway listen path, upstream, custom domain, token scheme header, enableClientCertificate, certificateAuth, clientCertificates, keyless', () => {
  assert.deepEqual(yamlOf(out, 'apis/4c5d6e7f8091a2b3c4d5e6f708192a3b.yaml'), {
    kind: 'api',
    id: '4c5d6e7f8091a2b3c4d5e6f708192a3b',
    name: 'Payments',
    proxy: { listen_path: '/payments/', target_url: 'http://payments.internal:8080', strip_listen_path: true },
    domain: 'pay.example.com',
    use_standard_auth: true,
    auth: { auth_header_name: 'X-Payments-Token', use_certificate: true },
    strip_auth_data: true,
    use_mutual_tls_auth: true,
    client_certificates: [PARTNER],
  });
  assert.deepEqual(yamlOf(out, 'apis/ledger.yaml'), {
    kind: 'api',
    id: 'ledger',
    name: 'Ledger',
    proxy: { listen_path: '/ledger/', target_url: 'https://ledger.internal', strip_listen_path: false },
    use_standard_auth: true,
    auth: { use_certificate: true },
  });
  assert.deepEqual(yamlOf(out, 'apis/status.yaml'), {
    kind: 'api',
    id: 'status',
    name: 'Status',
    proxy: { listen_path: '/status/', target_url: 'http://status.internal', strip_listen_path: true },
    use_keyless: true,
  });
});

test('policies: access rights with allowed_urls (listen path removed, mux templates, prefix matching from tyk.conf, methods), rate, per, quota', () => {
  assert.deepEqual(yamlOf(out, 'policies/partner-standard.yaml'), {
    kind: 'policy',
    id: 'partner-standard',
    access_rights: {
      'logistics-api_v1': {
        allowed_urls: [
          { url: '^/shipments/([^/]+)', methods: ['GET'] },
          { url: '^/shipments$', methods: ['GET', 'POST'] },
          { url: '^/tracking/.*', methods: ['GET'] },
        ],
      },
      b7d1e3a2f4c64c0e9a1f2b3c4d5e6f70: {},
    },
    rate: 10,
    per: 1,
    quota_max: 10000,
    quota_renewal_rate: 3600,
  });
  assert.deepEqual(yamlOf(out, 'policies/ledger-read.yaml'), {
    kind: 'policy',
    id: 'ledger-read',
    access_rights: { ledger: { allowed_urls: [{ url: '^/entries', methods: ['GET'] }] } },
    rate: 5,
    per: 1,
    quota_max: -1,
  });
  assert.deepEqual(yamlOf(out, 'policies/profile-self.yaml'), {
    kind: 'policy',
    id: 'profile-self',
    access_rights: { c0ffee00c0ffee00c0ffee00c0ffee00: {}, '4c5d6e7f8091a2b3c4d5e6f708192a3b': {} },
    rate: 5,
    per: 1,
  });
  // A Dashboard listing ({"Data": [...]}) with only a Mongo _id.
  assert.deepEqual(yamlOf(out, 'policies/64f0aa11bb22cc33dd44ee55.yaml'), {
    kind: 'policy',
    id: '64f0aa11bb22cc33dd44ee55',
    access_rights: { 'logistics-api_v1': {} },
    quota_max: -1,
  });
});

test('keys: sha256 key hashes become token_sha256, certificate ids become sha256: pins, policies, own rights and limits, expiry, inactive policies', () => {
  // Named by its file (GET /tyk/keys/{hash}); with policies, its own rights and rate are Tyk's copy of theirs.
  assert.deepEqual(yamlOf(out, 'keys/carol.yaml'), {
    kind: 'key',
    id: 'carol',
    token_sha256: '2c0e06727a739dd6b161bf0369e6cc136384bcf913c533a1e2de17dc256ae5ae',
    apply_policies: ['partner-standard'],
  });
  assert.deepEqual(yamlOf(out, 'keys/erin-ops.yaml'), {
    kind: 'key',
    id: 'erin-ops',
    token_sha256: '5f6e7d8c9b0a1f2e3d4c5b6a79880716253443526170819203a4b5c6d7e8f901',
    access_rights: { ledger: { allowed_urls: [{ url: '^/entries/([^/]+)', methods: ['GET', 'DELETE'] }] }, status: {} },
    rate: 20,
    per: 1,
    quota_max: 1000,
    quota_renewal_rate: 86400,
    expires: '2030-01-01T00:00:00Z',
  });
  // murmur64 hash: the token is lost, the certificate id still identifies the key.
  assert.deepEqual(yamlOf(out, 'keys/dave.yaml'), {
    kind: 'key',
    id: 'dave',
    certificate: 'sha256:d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3',
    apply_policies: ['profile-self', '64f0aa11bb22cc33dd44ee55'],
    is_inactive: true,
  });
  // murmur128 hash and no certificate: written commented out (check skips it), with the reason.
  const frank = readFileSync(join(out, 'keys/frank.yaml'), 'utf8');
  assert.match(frank, /^# NOT ACTIVE: Tyk stored this key's token hashed with murmur128/m);
  assert.equal(parse(frank), null, 'no active document');
  assert.deepEqual(parse(frank.replace(/^# (?!NOT|Uncomment|Imported|Source)/gm, '')), { kind: 'key', id: 'frank', apply_policies: ['partner-standard'] });
  assert.match(all.stdout, /wrote 7 APIs, 4 policies, 4 keys \(1 commented out: it needs a new token\) to /);
});

test('every field that is not converted is reported with its file and JSON pointer', () => {
  const reported = all.stdout
    .slice(all.stdout.indexOf('not converted ('), all.stdout.indexOf('notes ('))
    .split('\n')
    .slice(1)
    .filter(Boolean)
    .map((l) => l.slice(0, l.indexOf(': ')));
  assert.deepEqual(reported, [
    'apps/billing-dashboard-export.json#/api_definition/custom_middleware',
    'apps/billing-dashboard-export.json#/api_definition/enable_jwt',
    'apps/logistics.json#/auth_configs/authToken/use_param',
    'apps/logistics.json#/disable_rate_limit',
    'apps/logistics.json#/proxy/enable_load_balancing',
    'apps/logistics.json#/proxy/target_list',
    'apps/logistics.json#/proxy/transport',
    'apps/partner-reports.json#/CORS',
    'apps/partner-reports.json#/allowed_ips',
    'apps/partner-reports.json#/client_certificates/1',
    'apps/partner-reports.json#/client_certificates/2',
    'apps/partner-reports.json#/enable_ip_whitelisting',
    'apps/partner-reports.json#/global_rate_limit',
    'apps/partner-reports.json#/tags',
    'apps/partner-reports.json#/upstream_certificates',
    'apps/partner-reports.json#/version_data/versions/Default/extended_paths',
    'apps/profile.json#/version_data',
    'keys/4f3e2d1c0b0a99887766554433221100.json#',
    'keys/4f3e2d1c0b0a99887766554433221100.json#/apply_policies/1',
    'keys/4f3e2d1c0b0a99887766554433221100.json#/hmac_enabled',
    'keys/4f3e2d1c0b0a99887766554433221100.json#/hmac_string',
    'keys/8c1b1a0f9e2d3c4b.json#',
    'keys/dashboard-erin.json#/data/access_rights/status/limit',
    'keys/dashboard-erin.json#/data/meta_data',
    'keys/dashboard-erin.json#/data/tags',
    'oas/ledger.json#/x-tyk-api-gateway/info/versioning',
    'oas/ledger.json#/x-tyk-api-gateway/server/authentication/securitySchemes/jwtAuth',
    'oas/ledger.json#/x-tyk-api-gateway/server/ipAccessControl',
    'oas/payments.json#/x-tyk-api-gateway/middleware/global/cors',
    'oas/payments.json#/x-tyk-api-gateway/middleware/operations/createInvoice/allow',
    'oas/payments.json#/x-tyk-api-gateway/middleware/operations/createInvoice/rateLimit',
    'oas/payments.json#/x-tyk-api-gateway/middleware/operations/getInvoice/allow',
    'oas/payments.json#/x-tyk-api-gateway/server/customDomain/certificates',
    'oas/payments.json#/x-tyk-api-gateway/upstream/mutualTLS',
    'oas/payments.json#/x-tyk-api-gateway/upstream/rateLimit',
    'oas/status.json#/x-tyk-api-gateway/server/gatewayTags',
    'policies/policies.json#/Ledger Read/access_rights/ledger/limit',
    'policies/policies.json#/Ledger Read/access_rights/unknown-api-1234',
    'policies/policies.json#/Ledger Read/key_expires_in',
    'policies/policies.json#/Ledger Read/partitions',
    'policies/policies.json#/Ledger Read/tags',
    'policies/policies.json#/partner-standard/access_rights/Logistics-API_v1/allowed_urls/3',
    'policies/policies.json#/profile-self/quota_max',
  ]);
  // Each line says why.
  assert.match(all.stdout, /#\/upstream_certificates: upstream_certificates not converted: upstream mTLS/);
  assert.match(all.stdout, /#\/api_definition\/enable_jwt: enable_jwt not converted: JWT authentication is not supported/);
  assert.match(all.stdout, /allowed_urls\/3: allowed_urls entry with no methods not converted: in Tyk it allows nothing/);
  assert.match(all.stdout, /8c1b1a0f9e2d3c4b\.json#: token not converted: .*murmur64.*Its certificate still identifies it/);
  assert.match(all.stdout, /#\/api_id: API "Logistics-API_v1" is "logistics-api_v1" in mtlsgate/);
});

test('the import ends with check: the one certificate file not on this machine is an error at its line (exit 1); everything else checks', () => {
  assert.equal(all.code, 1, all.stderr);
  // The report said so before the check, with what to do.
  assert.match(
    all.stdout,
    /apps\/partner-reports\.json#\/client_certificates\/1: certificate file "\/etc\/tyk\/certs\/partner-b\.pem" not copied \(ENOENT on this machine\): mtlsgate reads only files inside the config directory, so the YAML names "\.\.\/certs\/partner-b\.pem"; copy the certificate from the Tyk host to certs\/partner-b\.pem in the output directory, or replace the entry with its pin/,
  );
  const errors = all.stderr.split('\n').filter((l) => / error [A-Z_]+:/.test(l));
  assert.equal(errors.length, 1, all.stderr);
  // Inside the output now (config reads are confined, docs/security.md item 4): missing, at its line.
  assert.match(
    errors[0],
    /apis\/b7d1e3a2f4c64c0e9a1f2b3c4d5e6f70\.yaml:\d+:\d+: error E_CERT_READ: certificate "\.\.\/certs\/partner-b\.pem" cannot be read .*ENOENT|no such file/,
  );
  // One error: "1 error", never "1 errors".
  assert.match(all.stderr, /^mtlsgate check: .*all: 1 error$/m);
});

test('a certificate named by absolute path on the Tyk host is copied into certs/ (certificate blocks only) and the import checks (exit 0)', async () => {
  const pki = await demoPki(join(tmp, 'abs-pki'));
  const host = join(tmp, 'abs-host');
  mkdirSync(host);
  // As some Tyk setups keep it: the certificate and its private key in one file.
  const both = join(host, 'partner b.pem');
  writeFileSync(both, readFileSync(join(pki.dir, 'partner-a.pem'), 'utf8') + readFileSync(join(pki.dir, 'partner-a-key.pem'), 'utf8'));
  const input = join(tmp, 'abs-in');
  mkdirSync(input);
  const def = JSON.parse(readFileSync(join(FIXTURES, 'apps', 'partner-reports.json'), 'utf8'));
  def.client_certificates = [both];
  writeFileSync(join(input, 'partner-reports.json'), JSON.stringify(def));
  const absOut = join(tmp, 'abs-out');
  const r = importTyk(absOut, input);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /wrote 1 API, 0 policies, 0 keys, 1 certificate file \(certs\/\) to /);
  assert.match(
    r.stdout,
    /client_certificates\/0: certificate file ".*partner b\.pem" copied to certs\/partner_b\.pem and named as "\.\.\/certs\/partner_b\.pem": .*; the private key in that file was NOT copied/,
  );
  const api = yamlOf(absOut, 'apis/b7d1e3a2f4c64c0e9a1f2b3c4d5e6f70.yaml');
  assert.deepEqual(api.client_certificates, ['../certs/partner_b.pem']);
  const copied = readFileSync(join(absOut, 'certs', 'partner_b.pem'), 'utf8');
  assert.doesNotMatch(copied, /PRIVATE KEY/);
  assert.equal(new X509Certificate(copied).fingerprint256, new X509Certificate(readFileSync(join(pki.dir, 'partner-a.pem'))).fingerprint256);
  assert.match(r.stderr, /ok \(0 warnings\)$/m);
});

test('fatal inputs write nothing and exit 2, naming the file and pointer', () => {
  const bad = join(tmp, 'bad');
  mkdirSync(bad);
  const cases: [string, unknown, RegExp][] = [
    ['broken.json', '{"api_id": ', /broken\.json#: fatal: not valid JSON/],
    ['unknown.json', { hello: 'world' }, /unknown\.json#: fatal: not a Tyk API definition \(classic or OAS\), policy, key session or tyk\.conf/],
    [
      'loop.json',
      { api_id: 'loop', proxy: { listen_path: '/loop/', target_url: 'tyk://other-api' } },
      /loop\.json#\/proxy\/target_url: fatal: .*Tyk internal \(looping\) target/,
    ],
    [
      'nolisten.json',
      { api_id: 'x', proxy: { listen_path: '', target_url: 'http://x' } },
      /nolisten\.json#\/proxy\/listen_path: fatal: the API has no listen path/,
    ],
    [
      'param.json',
      { api_id: 'x', proxy: { listen_path: '/users/{id}/', target_url: 'http://x' } },
      /param\.json#\/proxy\/listen_path: fatal: .*path parameter/,
    ],
    [
      'domain.json',
      { api_id: 'x', domain: '{sub:[a-z]+}.example.com', proxy: { listen_path: '/x/', target_url: 'http://x' } },
      /domain\.json#\/domain: fatal: .*not a plain host name/,
    ],
  ];
  for (const [name, content, expected] of cases) {
    const file = join(bad, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    const o = join(tmp, `out-${name}`);
    const r = importTyk(o, join(FIXTURES, 'apps'), file);
    assert.equal(r.code, 2, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, expected, name);
    assert.match(r.stderr, /nothing written/);
    assert.equal(existsSync(o), false, `${name}: nothing written`);
    rmSync(file);
  }
  // Two Tyk ids that become one mtlsgate id.
  writeFileSync(join(bad, 'a.json'), JSON.stringify({ api_id: 'Orders', proxy: { listen_path: '/a/', target_url: 'http://a' } }));
  writeFileSync(join(bad, 'b.json'), JSON.stringify({ api_id: 'orders', proxy: { listen_path: '/b/', target_url: 'http://b' } }));
  const r = importTyk(join(tmp, 'out-dup'), bad);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /b\.json#\/api_id: fatal: API "orders" and "Orders" \(.*a\.json\) both become "orders"/);
  // A non-empty output directory is refused before anything is read.
  const full = join(tmp, 'full');
  mkdirSync(full);
  writeFileSync(join(full, 'keep.yaml'), '# mine\n');
  const refused = importTyk(full, join(FIXTURES, 'apps'));
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /is not empty/);
  assert.deepEqual(readdirSync(full), ['keep.yaml']);
});

test('an imported config serves what Tyk did: certificate ids pin real certificates, a sha256 key hash is the token, an unhashed key id is its token (hash_keys: false)', async () => {
  const dir = join(tmp, 'e2e');
  const pki = await demoPki(dir);
  const upstream = await startEcho();
  after(() => upstream.close());
  const fp = (name: string) => new X509Certificate(readFileSync(join(pki.dir, `${name}.pem`))).fingerprint256.replaceAll(':', '').toLowerCase();
  const org = '5e9d9544a1dcd60001d0ed20';
  const tyk = join(dir, 'tyk');
  mkdirSync(join(tyk, 'keys'), { recursive: true });
  const api = (id: string, listen: string, extra: object) => ({
    api_id: id,
    name: id,
    org_id: org,
    proxy: { listen_path: listen, target_url: upstream.url, strip_listen_path: true },
    ...extra,
  });
  writeFileSync(
    join(tyk, 'reports.json'),
    JSON.stringify(api('reports', '/reports/', { use_keyless: true, use_mutual_tls_auth: true, client_certificates: [org + fp('partner-a')] })),
  );
  writeFileSync(
    join(tyk, 'profile.json'),
    JSON.stringify(api('profile', '/profile/', { use_standard_auth: true, auth_configs: { authToken: { auth_header_name: 'X-Key', use_certificate: true } } })),
  );
  writeFileSync(
    join(tyk, 'policies.json'),
    JSON.stringify({ p: { id: 'p', access_rights: { profile: { api_id: 'profile', allowed_urls: [{ url: '/profile/me', methods: ['GET'] }] } } } }),
  );
  // A JSON-form Tyk token, as the gateway creates them; with hash_keys: false it is the key id.
  const token = Buffer.from(JSON.stringify({ org, id: 'b0b', h: 'murmur64' })).toString('base64');
  writeFileSync(join(tyk, 'keys', `${token}.json`), JSON.stringify({ alias: 'bob', apply_policies: ['p'], certificate: org + fp('bob') }));
  const aliceToken = 'alice-demo-token';
  writeFileSync(
    join(tyk, 'keys', 'alice.json'),
    JSON.stringify({ key_hash: createHash('sha256').update(aliceToken).digest('hex'), data: { alias: 'alice', apply_policies: ['p'] } }),
  );
  writeFileSync(join(tyk, 'tyk.conf'), JSON.stringify({ listen_port: 8080, secret: 's', hash_keys: false }));
  // hash_keys false: every key id is a token; alice's key_hash is explicitly a hash.
  const o = join(dir, 'out');
  const r = importTyk(o, tyk);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /the key id is the token itself/);
  assert.equal(readFileSync(join(o, 'keys/bob.yaml'), 'utf8').includes(token), false, 'the token never reaches the YAML');
  assert.equal(r.stdout.includes(token), false, 'nor the report');
  assert.match(readFileSync(join(o, 'keys/bob.yaml'), 'utf8'), /# Source: .*keys\/<token>\.json#/);
  const bundle = join(dir, 'bundle.json');
  await compileWithCli(o, bundle);
  const serve = spawnDemoGateway(bundle, pki, { admin: 'loopback' });
  try {
    const base = `https://localhost:${listenPort(await serve.serving())}`;
    assert.equal((await curl(`${base}/reports/daily`, pki, 'partner-a')).status, 200, 'pinned by its Tyk certificate id');
    assert.equal((await curl(`${base}/reports/daily`, pki, 'mallory')).status, 403);
    assert.equal((await curl(`${base}/profile/me`, pki, 'bob')).status, 200, "bob's certificate id identifies his key");
    assert.equal((await curl(`${base}/profile/me`, pki, null, ['-H', `X-Key: ${token}`])).status, 401, "bob's token needs his certificate (bound key)");
    assert.equal((await curl(`${base}/profile/me`, pki, 'bob', ['-H', `X-Key: ${token}`])).status, 200, 'the unhashed Tyk key id is his token');
    assert.equal((await curl(`${base}/profile/me`, pki, 'alice', ['-H', `X-Key: ${aliceToken}`])).status, 200, 'the sha256 key hash is the token');
    assert.equal((await curl(`${base}/profile/other`, pki, 'bob')).status, 403, 'allowed_urls came along');
  } finally {
    serve.kill();
    await serve.exited;
  }
});

test('copy of the fixtures with a relative certificate path: the path is kept and noted', () => {
  const copy = join(tmp, 'rel');
  cpSync(join(FIXTURES, 'apps', 'partner-reports.json'), join(copy, 'partner-reports.json'));
  const def = JSON.parse(readFileSync(join(copy, 'partner-reports.json'), 'utf8'));
  def.client_certificates = ['certs/partner-b.pem'];
  writeFileSync(join(copy, 'partner-reports.json'), JSON.stringify(def));
  const r = importTyk(join(tmp, 'rel-out'), copy);
  assert.match(
    r.stdout,
    /partner-reports\.json#\/client_certificates\/0: certificate path "certs\/partner-b\.pem" kept: mtlsgate resolves it relative to the API's YAML file/,
  );
});

test("Tyk's on-disk OAS pair (NAME.json with is_oas: true beside NAME-oas.json, as a file-based gateway stores it) is one API, imported from the OAS document", () => {
  const dir = join(tmp, 'oas-pair');
  mkdirSync(dir);
  // The OAS document Tyk loads, and the classic form Tyk derives from it (same id, listen path).
  cpSync(join(FIXTURES, 'oas', 'status.json'), join(dir, 'status-oas.json'));
  const classic = {
    name: 'Status',
    api_id: 'status',
    is_oas: true,
    use_keyless: true,
    proxy: { listen_path: '/status/', target_url: 'http://status.internal', strip_listen_path: true },
  };
  writeFileSync(join(dir, 'status.json'), JSON.stringify(classic, null, 2));
  const pairOut = join(tmp, 'oas-pair-out');
  const r = importTyk(pairOut, dir);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /wrote 1 API, 0 policies, 0 keys to /);
  assert.deepEqual(readdirSync(join(pairOut, 'apis')), ['status.yaml']);
  assert.match(readFileSync(join(pairOut, 'apis', 'status.yaml'), 'utf8'), /# Source: .*status-oas\.json#/);
  assert.match(
    r.stdout,
    /status\.json#\/is_oas: the classic form Tyk derives from its companion .*status-oas\.json: the API is imported from that OAS document/,
  );
  // The classic form alone (its companion not given) is imported, with a note saying so.
  const alone = join(tmp, 'oas-alone');
  mkdirSync(alone);
  writeFileSync(join(alone, 'status.json'), JSON.stringify(classic, null, 2));
  const aloneOut = join(tmp, 'oas-alone-out');
  const a = importTyk(aloneOut, alone);
  assert.equal(a.code, 0, a.stdout + a.stderr);
  assert.match(a.stdout, /status\.json#\/is_oas: is_oas: true, but its companion OAS document \(NAME-oas\.json\) was not given/);
  assert.equal(yamlOf(aloneOut, 'apis/status.yaml').proxy.listen_path, '/status/');
});

test("shapes from Tyk's own repository: an h2c:// gRPC target becomes http:// with proxy.http2 (classic and OAS); batch request support is reported, not dropped silently", () => {
  const dir = join(tmp, 'tyk-repo-shapes');
  mkdirSync(dir);
  // As Tyk's ci/tests/tracing/apps/grpcapi.json: a keyless gRPC API on an h2c upstream.
  writeFileSync(
    join(dir, 'grpcapi.json'),
    JSON.stringify({
      name: 'grpcapi',
      api_id: 'grpcapi',
      use_keyless: true,
      proxy: { listen_path: '/', target_url: 'h2c://grpcapi:50051', strip_listen_path: false },
    }),
  );
  // As Tyk's apps/app_sample.json: batch requests switched on.
  writeFileSync(
    join(dir, 'app_sample.json'),
    JSON.stringify({
      name: 'Tyk Test API',
      api_id: '1',
      auth: { auth_header_name: 'authorization' },
      proxy: { listen_path: '/tyk-api-test/', target_url: 'http://httpbin.org', strip_listen_path: true },
      enable_batch_request_support: true,
    }),
  );
  const oas = JSON.parse(readFileSync(join(FIXTURES, 'oas', 'status.json'), 'utf8'));
  oas['x-tyk-api-gateway'].upstream.url = 'h2c://status.internal:50051';
  writeFileSync(join(dir, 'status-grpc.json'), JSON.stringify(oas));
  const o = join(tmp, 'tyk-repo-shapes-out');
  const r = importTyk(o, dir);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(yamlOf(o, 'apis/grpcapi.yaml').proxy, { listen_path: '/', target_url: 'http://grpcapi:50051', strip_listen_path: false, http2: true });
  assert.deepEqual(yamlOf(o, 'apis/status.yaml').proxy.http2, true);
  assert.equal(yamlOf(o, 'apis/status.yaml').proxy.target_url, 'http://status.internal:50051');
  assert.match(r.stdout, /app_sample\.json#\/enable_batch_request_support: enable_batch_request_support not converted: batch requests/);
});

test('--format json: one envelope with counts, not_converted and notes (file, pointer, message) and the check; a fatal input is an envelope too; --format github annotates each field not converted', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, 'import', 'tyk', ...args], { encoding: 'utf8', timeout: 60_000, cwd: FIXTURES });
  const o = join(tmp, 'json-out');
  const r = cli('apps', 'policies', 'tyk.conf', '-o', o, '--format', 'json');
  const j = JSON.parse(r.stdout);
  assert.equal(j.schema_version, 1);
  assert.equal(j.command, 'import');
  assert.equal(j.ok, r.status === 0);
  assert.equal(j.counts.apis, 4);
  assert.ok(j.not_converted.length > 0);
  assert.deepEqual(Object.keys(j.not_converted[0]), ['file', 'pointer', 'message']);
  assert.ok(
    j.not_converted.some((f: { file: string; pointer: string }) => f.file === 'apps/logistics.json' && f.pointer === '/auth_configs/authToken/use_param'),
  );
  assert.ok(Array.isArray(j.diagnostics) && Array.isArray(j.errors) && Array.isArray(j.warnings));

  const bad = join(tmp, 'json-fatal.json');
  writeFileSync(bad, JSON.stringify({ api_id: 'loop', proxy: { listen_path: '/loop/', target_url: 'tyk://other-api' } }));
  const f = cli(bad, '-o', join(tmp, 'json-fatal-out'), '--format', 'json');
  assert.equal(f.status, 2);
  const fj = JSON.parse(f.stdout);
  assert.equal(fj.ok, false);
  assert.equal(fj.errors[0].code, 'fatal');
  assert.match(fj.errors[0].message, /#\/proxy\/target_url: .*looping.*; nothing written$/);

  const gh = cli('apps', '-o', join(tmp, 'gh-out'), '--format', 'github');
  assert.match(gh.stdout, /^::warning file=apps\/logistics\.json,title=not_converted::\/auth_configs\/authToken\/use_param: use_param not converted/m);
});
