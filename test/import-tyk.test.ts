// `mtlsgate import tyk` on the fixtures in test/fixtures/tyk (classic and OAS API definitions,
// policies, key sessions and a tyk.conf, written from Tyk's documentation and schema): they
// convert to exactly the YAML below, every field that cannot be converted is reported with its
// file and JSON pointer, the import ends with check, and --format json|github report the same.
// Other inputs: test/import-tyk-inputs.test.ts; serving an imported config: test/import-tyk-serve.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { FIXTURES, importTyk, importTmpDir, yamlOf } from './helpers/import-tyk.ts';
import { CLI } from './helpers/serve-fixtures.ts';

const tmp = importTmpDir();

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
  assert.match(all.stdout, /wrote 7 APIs, 4 policies, 4 keys \(1 commented out: it needs a new token\), 5 access test files \(tests\/\) to /);
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
    'apps/partner-reports.json#/version_data/versions/Default/extended_paths/white_list',
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
    /apps\/partner-reports\.json#\/client_certificates\/1: certificate file "\/etc\/tyk\/certs\/partner-b\.pem" not copied \(outside the Tyk inputs: .*--allow-outside.*; this one was not looked at\): mtlsgate reads only files inside the config directory, so the YAML names "\.\.\/certs\/partner-b\.pem"; copy the certificate from the Tyk host to certs\/partner-b\.pem in the output directory, or replace the entry with its pin/,
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
