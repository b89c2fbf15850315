// `mtlsgate import tyk` on inputs beyond the fixtures: certificate paths (absolute on the Tyk
// host: copied; relative: kept and noted), fatal inputs (nothing written, exit 2), Tyk's on-disk
// OAS pair, and shapes from Tyk's own repository (h2c:// gRPC targets, batch requests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, importTyk, importTmpDir, yamlOf } from './helpers/import-tyk.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

const tmp = importTmpDir();

test('a certificate named by absolute path on the Tyk host is copied into certs/ (certificate blocks only) with --allow-outside naming its directory, and the import checks (exit 0)', async () => {
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
  // Outside the input directory: read only when --allow-outside names it (docs/security.md section 41).
  const r = importTyk(absOut, input, '--allow-outside', host);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /wrote 1 API, 0 policies, 0 keys, 1 certificate file \(certs\/\), 1 access test file \(tests\/\) to /);
  assert.match(
    r.stdout,
    /client_certificates\/0: certificate file ".*partner b\.pem" copied to certs\/partner_b\.pem and named as "\.\.\/certs\/partner_b\.pem": .*; the private key in that file was NOT copied/,
  );
  const api = yamlOf(absOut, 'apis/b7d1e3a2f4c64c0e9a1f2b3c4d5e6f70.yaml');
  assert.deepEqual(api.client_certificates, ['../certs/partner_b.pem']);
  // The copied file is the material of the API's mTLS access test (session 18): its pin passes, and the check ran it.
  assert.match(
    readFileSync(join(absOut, 'tests', 'mtls-b7d1e3a2f4c64c0e9a1f2b3c4d5e6f70.yaml'), 'utf8'),
    /with pinned \.\.\/certs\/partner_b\.pem: let through \(keyless API\)/,
  );
  const copied = readFileSync(join(absOut, 'certs', 'partner_b.pem'), 'utf8');
  assert.doesNotMatch(copied, /PRIVATE KEY/);
  assert.equal(new X509Certificate(copied).fingerprint256, new X509Certificate(readFileSync(join(pki.dir, 'partner-a.pem'))).fingerprint256);
  assert.match(r.stderr, /ok \(0 warnings\)$/m);
});

test("a certificate file that also holds a key in another armour (SSH2, lower case) is reported as holding one: the project's one rule", async () => {
  const pki = await demoPki(join(tmp, 'armour-pki'));
  const host = join(tmp, 'armour-host');
  mkdirSync(host);
  const both = join(host, 'partner.pem');
  const key = readFileSync(join(pki.dir, 'partner-a-key.pem'), 'utf8').replace(
    /-----(BEGIN|END) PRIVATE KEY-----/g,
    (_m, w: string) => `---- ${w.toLowerCase()} SSH2 ENCRYPTED PRIVATE KEY ----`,
  );
  writeFileSync(both, readFileSync(join(pki.dir, 'partner-a.pem'), 'utf8') + key);
  const input = join(tmp, 'armour-in');
  mkdirSync(input);
  const def = JSON.parse(readFileSync(join(FIXTURES, 'apps', 'partner-reports.json'), 'utf8'));
  def.client_certificates = [both];
  writeFileSync(join(input, 'partner-reports.json'), JSON.stringify(def));
  // Outside the input directory: read only when --allow-outside names it (section 41).
  const r = importTyk(join(tmp, 'armour-out'), input, '--allow-outside', host);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /copied to certs\/partner\.pem .*; the private key in that file was NOT copied/);
  assert.doesNotMatch(readFileSync(join(tmp, 'armour-out', 'certs', 'partner.pem'), 'utf8'), /PRIVATE KEY/i);
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

test("listings as Tyk's APIs return them: the gateway's GET /tyk/apis (an array) and the Dashboard's GET /api/apis ({apis: [{api_definition}], pages})", () => {
  const def = JSON.parse(readFileSync(join(FIXTURES, 'apps', 'logistics.json'), 'utf8'));
  const dir = join(tmp, 'listings');
  mkdirSync(dir);
  writeFileSync(join(dir, 'gateway.json'), JSON.stringify([def]));
  writeFileSync(
    join(dir, 'dashboard.json'),
    JSON.stringify({
      apis: [
        { api_definition: { ...def, api_id: 'billing', proxy: { ...def.proxy, listen_path: '/billing/' } }, hook_references: [], is_site: false, sort_by: 0 },
      ],
      pages: 1,
    }),
  );
  const r = importTyk(join(tmp, 'listings-out'), dir);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /wrote 2 APIs, 0 policies, 0 keys/);
  assert.match(r.stdout, /dashboard\.json#\/apis\/0\/api_definition\/disable_rate_limit: disable_rate_limit not converted/);
});
