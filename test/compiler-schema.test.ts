// schema/*.schema.json: closed objects everywhere (unknown fields are errors), and every field
// of the contract's example documents accepted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileDir } from './helpers/compile-and-load.ts';
import { removeConfigs, writeConfig, certFiles } from './fixtures/compiler/helpers.ts';

after(removeConfigs);

const SCHEMAS = ['api', 'policy', 'key'].map((k) => ({
  kind: k,
  schema: JSON.parse(readFileSync(join(import.meta.dirname, '..', 'schema', `${k}.schema.json`), 'utf8')),
}));

function objectSchemas(node: unknown, path: string, out: { path: string; schema: Record<string, unknown> }[]): void {
  if (Array.isArray(node)) node.forEach((n, i) => objectSchemas(n, `${path}/${i}`, out));
  else if (node && typeof node === 'object') {
    const s = node as Record<string, unknown>;
    if (s.type === 'object' && s.properties) out.push({ path, schema: s });
    for (const [k, v] of Object.entries(s)) objectSchemas(v, `${path}/${k}`, out);
  }
}

test('every object with declared properties is closed (additionalProperties: false)', () => {
  for (const { kind, schema } of SCHEMAS) {
    const objects: { path: string; schema: Record<string, unknown> }[] = [];
    objectSchemas(schema, kind, objects);
    assert.ok(objects.length > 0);
    for (const o of objects) assert.equal(o.schema.additionalProperties, false, `${o.path} must set additionalProperties: false`);
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  }
});

// The example documents of CONTRACT.md section 2, field for field.
const CONTRACT_EXAMPLES = {
  'apis/payments.yaml': `kind: api
id: payments
name: Payments
domain: pay.example.test
proxy:
  listen_path: /payments/
  target_url: http://127.0.0.1:9001
  strip_listen_path: true
use_keyless: false
use_standard_auth: true
auth:
  auth_header_name: Authorization
  use_certificate: false
use_mutual_tls_auth: true
client_certificates:
  - ../certs/alice.pem
strip_auth_data: false
forward_client_cert: false
`,
  'policies/gold.yaml': `kind: policy
id: gold
access_rights:
  payments:
    allowed_urls:
      - url: ^/charges
        methods: [GET, POST]
rate: 100
per: 1
quota_max: 10000
quota_renewal_rate: 3600
portal:
  name: Gold plan
  description: 100 requests/s to Payments
  require_approval: false
`,
  'keys/alice.yaml': `kind: key
id: alice
certificate: ../certs/bob.pem
token_sha256: ${'e'.repeat(64)}
apply_policies: [gold]
access_rights: {}
rate: 10
per: 1
expires: 2099-01-01T00:00:00Z
is_inactive: false
`,
};

test('every field of the contract examples is accepted', async () => {
  const dir = writeConfig({ ...(await certFiles()), ...CONTRACT_EXAMPLES });
  const r = await compileDir(dir);
  const schemaCodes = new Set(['E_UNKNOWN_FIELD', 'E_MISSING_FIELD', 'E_FIELD_TYPE', 'E_FIELD_VALUE', 'E_KIND']);
  assert.deepEqual(
    r.diagnostics.filter((d) => schemaCodes.has(d.code)),
    [],
  );
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
  assert.equal(r.content!.apis.payments.domain, 'pay.example.test');
});

test('per and quota_renewal_rate take seconds or a duration (30s, 1m, 1h, 1d, minute); the bundle holds seconds; anything else names the forms', async () => {
  const dir = writeConfig({
    'api.yaml': 'kind: api\nid: a\nuse_keyless: false\nproxy:\n  listen_path: /a/\n  target_url: http://127.0.0.1:9\n',
    'p.yaml': 'kind: policy\nid: kong\naccess_rights:\n  a: {}\nrate: 100\nper: minute\nquota_max: 1000\nquota_renewal_rate: 1d\n',
    'k.yaml': `kind: key\nid: k\ntoken_sha256: ${'a'.repeat(64)}\naccess_rights:\n  a: {}\nrate: 5\nper: 1m30s\nquota_max: 10\nquota_renewal_rate: 3600\n`,
  });
  const r = await compileDir(dir);
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
  assert.deepEqual(r.content!.keys.k.rate, { rate: 5, per: 90 });
  assert.deepEqual(r.content!.keys.k.quota, { max: 10, renewal: 3600 });

  const bad = writeConfig({
    'p.yaml': 'kind: policy\nid: p\nrate: 10\nper: 1 min\n',
    'q.yaml': 'kind: policy\nid: q\nrate: 10\nper: "30"\nquota_max: 5\nquota_renewal_rate: -1\n',
  });
  const b = await compileDir(bad);
  const messages = b.diagnostics.map((d) => `${d.file}:${d.line} ${d.code} ${d.message}`);
  assert.ok(
    messages.includes(
      'p.yaml:4 E_FIELD_TYPE per must be a positive number of seconds or a duration (30s, 1m, 1h, 1d, 1m30s; second, minute, hour, day), got string "1 min"',
    ),
    messages.join('\n'),
  );
  assert.ok(
    messages.some((m) => /^q\.yaml:4 E_FIELD_TYPE per must be a positive number of seconds .*, got string "30" \(remove the quotes: 30\)$/.test(m)),
    messages.join('\n'),
  );
  assert.ok(
    messages.some((m) =>
      /^q\.yaml:6 E_FIELD_TYPE quota_renewal_rate must be a positive number of seconds or a duration \(3600, 1h, 1d; hour, day\), got number -1$/.test(m),
    ),
    messages.join('\n'),
  );
  assert.equal(b.diagnostics.length, 3, messages.join('\n'));
});

test('"quote it" quotes the value as written, not the number YAML read (a 64-digit token_sha256, 1.10, 0x1F)', async () => {
  const dir = writeConfig({
    'k.yaml': `kind: key\nid: k\ntoken_sha256: ${'1'.repeat(64)}   # digits only\naccess_rights: { a: {} }\n`,
    'api.yaml':
      'kind: api\nid: a\nname: 1.10\nuse_keyless: true\nproxy: { listen_path: /a/, target_url: http://127.0.0.1:9 }\n---\nkind: api\nid: 0x1F\nuse_keyless: true\nproxy: { listen_path: /b/, target_url: http://127.0.0.1:9 }\n',
  });
  const messages = (await compileDir(dir)).diagnostics.map((d) => d.message);
  assert.ok(messages.includes(`token_sha256 must be a string, got number 1.1111111111111112e+63 (quote it: "${'1'.repeat(64)}")`), messages.join('\n'));
  assert.ok(messages.includes('name must be a string, got number 1.1 (quote it: "1.10")'), messages.join('\n'));
  assert.ok(messages.includes('id must be a string, got number 31 (quote it: "0x1F")'), messages.join('\n'));
});

test('a value that breaks several rules is one diagnostic naming them all (target_url without a scheme: format and pattern)', async () => {
  const dir = writeConfig({
    'api.yaml': 'kind: api\nid: a\nuse_keyless: true\nproxy: { listen_path: /a/, target_url: 127.0.0.1:8080 }\n',
  });
  const messages = (await compileDir(dir)).diagnostics.map((d) => `${d.file}:${d.line}:${d.col} ${d.code} ${d.message}`);
  assert.deepEqual(messages, [
    'api.yaml:4:40 E_FIELD_VALUE proxy.target_url "127.0.0.1:8080" is not valid (must match format "uri"; must match pattern "^https?://"): Upstream base URL (http or https).',
  ]);
});
