// Property tests (fast-check) for the three inputs users hand the access tools: Tyk JSON for
// `import tyk`, `kind: test` documents for `mtlsgate test`/`check`, and explain's request
// (method, URL, token, key). Whatever the shape, each yields a clean result or a diagnostic
// that says where (a FatalImportError with file and pointer; a compiler diagnostic with file,
// line and column; a `problem`), never an exception from inside.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { explainRequest } from '../access/explain.ts';
import { runAccessTests } from '../access/run.ts';
import { loadBundle } from '../bundle/read.ts';
import type { Bundle } from '../bundle/types.ts';
import { compileText } from '../compiler/index.ts';
import { FatalImportError, importTyk } from '../importer/index.ts';
import { buildSnapshot, type Snapshot } from '../runtime/snapshot.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-fuzz-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

// Field names the importer reads (classic, OAS, policy, session, Dashboard wrappers), so random
// objects reach its converters rather than stopping at "not a Tyk definition".
const TYK_FIELDS = [
  'api_id',
  'name',
  'proxy',
  'listen_path',
  'target_url',
  'strip_listen_path',
  'domain',
  'use_keyless',
  'use_standard_auth',
  'auth_configs',
  'authToken',
  'auth_header_name',
  'use_certificate',
  'use_mutual_tls_auth',
  'client_certificates',
  'strip_auth_data',
  'version_data',
  'not_versioned',
  'versions',
  'Default',
  'extended_paths',
  'white_list',
  'black_list',
  'global_rate_limit',
  'rate',
  'per',
  'quota_max',
  'quota_renewal_rate',
  'access_rights',
  'allowed_urls',
  'url',
  'methods',
  'api_name',
  'limit',
  'id',
  '_id',
  'partitions',
  'apply_policies',
  'apply_policy_id',
  'certificate',
  'expires',
  'is_inactive',
  'alias',
  'allowance',
  'key_id',
  'key_hash',
  'data',
  'api_definition',
  'oas',
  'Data',
  'apis',
  'openapi',
  'x-tyk-api-gateway',
  'info',
  'server',
  'upstream',
  'listenPath',
  'value',
  'strip',
  'customDomain',
  'authentication',
  'enabled',
  'securitySchemes',
  'clientCertificates',
  'allowlist',
  'certificateAuth',
  'components',
  'hash_keys',
  'hash_key_function',
  'http_server_options',
  'enable_path_prefix_matching',
  'active',
  'definition',
  'state',
  'tags',
  'enable_jwt',
  'in',
  'header',
] as const;
const tykValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(null, true, false, 0, -1, 1, 0.5, 60, 1e300, '', '/', '/a/{id}', 'http://u:1', 'h2c://u', 'tyk://x', 'sha256', 'murmur64'),
    fc.string(),
    fc.double(),
    fc.array(tie('value'), { maxLength: 3 }),
    tie('object'),
  ),
  object: fc.dictionary(fc.oneof(fc.constantFrom(...TYK_FIELDS), fc.string({ maxLength: 6 })), tie('value'), { maxKeys: 6 }),
})).value;

/** Runs importTyk on `value` written as FILE; only a FatalImportError naming the file may escape. */
function importOne(value: unknown, name: string): void {
  const dir = mkdtempSync(join(tmp, 'imp-'));
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  try {
    const r = importTyk([file]);
    for (const f of [...r.drops, ...r.notes]) assert.ok(f.file === file && typeof f.pointer === 'string', JSON.stringify(f));
  } catch (err) {
    if (!(err instanceof FatalImportError)) throw err;
    assert.ok(err.file.startsWith(dir), err.file);
    assert.ok(err.pointer === '' || err.pointer.startsWith('/'), err.pointer);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('import tyk: arbitrary JSON gives a result or a FatalImportError with file and pointer', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => importOne(v, 'input.json')),
    { numRuns: RUNS },
  );
});

test('import tyk: Tyk-shaped objects with any value in any field give a result or a FatalImportError', () => {
  const shaped = fc.oneof(
    fc.record({ api_id: tykValue, proxy: tykValue }, { requiredKeys: ['proxy'] }).chain((base) => tykValue.map((rest) => ({ ...(rest as object), ...base }))),
    fc
      .record({ proxy: fc.record({ listen_path: fc.constant('/a'), target_url: fc.constant('http://u') }), api_id: fc.constant('a') })
      .chain((base) => fc.dictionary(fc.constantFrom(...TYK_FIELDS), tykValue, { maxKeys: 8 }).map((rest) => ({ ...rest, ...base }))),
    fc.record({ openapi: fc.constant('3.0.3'), 'x-tyk-api-gateway': tykValue, info: tykValue, components: tykValue }),
    fc.dictionary(
      fc.string({ maxLength: 5 }),
      fc.record({ access_rights: tykValue }, { requiredKeys: [] }).chain((p) => tykValue.map((r) => ({ ...(r as object), ...p }))),
    ),
    fc.record({ id: tykValue, access_rights: tykValue, rate: tykValue, per: tykValue, partitions: tykValue }),
    fc.record({ key_id: tykValue, key_hash: tykValue, data: tykValue }),
    tykValue,
  );
  const name = fc.constantFrom('input.json', '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.json', 'tyk.conf', 'k.json');
  fc.assert(
    fc.property(shaped, name, (v, n) => importOne(v, n)),
    { numRuns: RUNS },
  );
});

// A config with one keyless API and one token API with a key, to decide requests against.
const CONFIG = `kind: api
id: open
proxy: {listen_path: /open, target_url: "http://127.0.0.1:9"}
use_keyless: true
---
kind: api
id: tokened
domain: api.example.com
proxy: {listen_path: /t, target_url: "http://127.0.0.1:9"}
use_standard_auth: true
---
kind: key
id: k
token_sha256: "${'a'.repeat(64)}"
access_rights:
  tokened: {allowed_urls: [{url: "^/x$", methods: [GET]}]}
`;

let bundle: Bundle;
let snapshot: Snapshot;
before(async () => {
  const r = await compileText(CONFIG, 'config.yaml', tmp);
  assert.ok(r.bundle, JSON.stringify(r.diagnostics));
  bundle = loadBundle(r.bundle);
  snapshot = buildSnapshot(bundle);
});

const urlish = fc.oneof(
  fc.string(),
  fc.constantFrom(
    '/',
    '//',
    '/open',
    '/t/x',
    'https://',
    'http://',
    'https:///t/x',
    'https://api.example.com/t/x',
    'https://API.example.com:443/t/x?q#f',
    'https://[::1]/t',
    'https://h:99999999/open',
  ),
  fc.tuple(fc.constantFrom('/', 'https://', 'http://', 'HTTPS://'), fc.string()).map(([a, b]) => a + b),
  fc.webUrl({ withFragments: true, withQueryParameters: true }),
);

test('explain: any method, URL, token and as_key give an explanation or a problem, never an exception', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.constantFrom('GET', 'POST', 'get'), fc.string({ maxLength: 8 })),
      urlish,
      fc.option(fc.oneof(fc.constantFrom('k', 'nope', '__proto__', 'constructor'), fc.string({ maxLength: 6 }))),
      fc.option(fc.string({ maxLength: 10 })),
      fc.integer({ min: -8.64e15, max: 8.64e15 }),
      (method, url, asKey, token, now) => {
        const r = explainRequest(bundle, snapshot, { method, url, asKey, token, headers: {} }, null, now);
        if ('problem' in r) assert.equal(typeof r.problem, 'string');
        else assert.ok(Array.isArray(r.stages));
      },
    ),
    { numRuns: RUNS * 2 },
  );
});

/** Every diagnostic of a compile names the file and a line/column inside it. */
function assertPositioned(diagnostics: readonly { file: string; line: number; col: number }[], text: string): void {
  const lines = text.split('\n').length;
  for (const d of diagnostics) {
    assert.ok(d.file === 'config.yaml', JSON.stringify(d));
    assert.ok(Number.isInteger(d.line) && d.line >= 1 && d.line <= lines + 1, JSON.stringify(d));
    assert.ok(Number.isInteger(d.col) && d.col >= 1, JSON.stringify(d));
  }
}

const caseArb = fc.record(
  {
    name: fc.oneof(fc.string({ maxLength: 8 }), tykValue),
    request: fc.oneof(
      tykValue,
      fc.record(
        {
          method: fc.oneof(fc.constantFrom('GET', 'post'), fc.string({ maxLength: 5 }), tykValue),
          url: fc.oneof(urlish, tykValue),
          certificate: fc.oneof(
            fc.constantFrom('missing.pem', '/etc/passwd', '../x.pem', '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----'),
            tykValue,
          ),
          as_key: fc.oneof(fc.constantFrom('k', 'nope', '__proto__'), tykValue),
          token: fc.oneof(fc.string({ maxLength: 6 }), tykValue),
          at: fc.oneof(fc.constantFrom('2027-01-01T00:00:00Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '2027-02-30T00:00:00Z'), tykValue),
          headers: fc.oneof(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })), tykValue),
        },
        { requiredKeys: ['url'] },
      ),
    ),
    expect: fc.oneof(tykValue, fc.record({ status: fc.oneof(fc.integer(), tykValue), code: tykValue, key: tykValue, api: tykValue }, { requiredKeys: [] })),
  },
  { requiredKeys: ['request'] },
);

test('mtlsgate test: any kind: test document gives diagnostics with positions or outcomes, never an exception', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.string({ maxLength: 6 }), tykValue), fc.oneof(fc.array(caseArb, { maxLength: 4 }), tykValue), async (id, cases) => {
      const text = `${CONFIG}---\n${stringify({ kind: 'test', id, cases })}`;
      const r = await compileText(text, 'config.yaml', tmp, { accessTests: runAccessTests });
      assertPositioned(r.diagnostics, text);
    }),
    { numRuns: Math.max(50, Math.floor(RUNS / 3)) },
  );
});
