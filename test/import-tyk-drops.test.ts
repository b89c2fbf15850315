// `import tyk`'s last fatal and silent cases (session 17), through the built CLI:
// - two definitions with one api_id (Tyk's own apps/ and ci/tests/tracing/apps/ have them) were
//   fatal: now the later is skipped, both named as file:line:col, the rest imported, exit 1;
// - a drop that leaves access wider than in Tyk exited 0: --strict makes it exit 1;
// - --convert-white-lists carries a white_list into the rights' allowed_urls, with access tests
//   whose expectations come from the Tyk definitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { lineColOfPointer } from '../importer/json-position.ts';
import { importTmpDir } from './helpers/import-tyk.ts';
import { CLI } from './helpers/serve-fixtures.ts';

const tmp = importTmpDir();
const TYK_REPO = join(import.meta.dirname, 'fixtures', 'tyk-repo');
const mtlsgate = (cwd: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, cwd });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

let n = 0;
/** Writes the Tyk inputs (name -> JSON) into a directory of their own; returns it and an output path beside it. */
function inputs(files: Record<string, unknown>): { dir: string; out: string } {
  const dir = join(tmp, `case-${n++}`);
  mkdirSync(join(dir, 'in'), { recursive: true });
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, 'in', name), JSON.stringify(value, null, 2));
  return { dir, out: join(dir, 'out') };
}

const reports = (extendedPaths: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  api_id: 'reports',
  name: 'Reports',
  use_standard_auth: true,
  proxy: { listen_path: '/reports/', target_url: 'http://upstream.internal:8080', strip_listen_path: true },
  version_data: { not_versioned: true, versions: { Default: { name: 'Default', use_extended_paths: true, extended_paths: extendedPaths } } },
  ...more,
});
const WHITE_LIST = {
  white_list: [
    { path: '/daily', method_actions: { GET: { action: 'no_action', code: 200, data: '', headers: {} } } },
    { path: '/monthly/{id}', method_actions: { GET: { action: 'no_action' }, HEAD: { action: 'no_action' } } },
  ],
};
const right = (allowed_urls: unknown[] = []) => ({ reports: { api_id: 'reports', versions: ['Default'], allowed_urls } });
const ALICE = 'a1'.repeat(32);
const BOB = 'b2'.repeat(32);

test("a JSON pointer's line:col: keys with escapes, arrays, a byte order mark", () => {
  const text = '\ufeff{\n  "a\\"/b": [1, {"x": "}]"},\n    {"api_id": "4"}]\n}';
  assert.deepEqual(lineColOfPointer(text, '/a"~1b/2/api_id'), { line: 3, col: 16 });
  assert.deepEqual(lineColOfPointer(text, '/a"~1b/1/x'), { line: 2, col: 22 });
  // A pointer that goes nowhere lands on its deepest existing ancestor.
  assert.deepEqual(lineColOfPointer(text, '/a"~1b/1/api_id'), { line: 2, col: 16 });
  assert.deepEqual(lineColOfPointer(text, '/missing'), { line: 1, col: 1 });
});

test("Tyk's own apps/ and ci/tests/tracing/apps/ (three api_ids defined twice): the later definitions are skipped, named with both files as file:line:col; the rest is imported; exit 1 (before: fatal, nothing written)", () => {
  const out = join(tmp, 'tyk-repo-out');
  const r = mtlsgate(TYK_REPO, 'import', 'tyk', 'apps', 'ci', '-o', out);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /wrote 3 APIs, 0 policies, 0 keys to /);
  assert.match(r.stdout, /^skipped, the import is incomplete \(3\):$/m);
  assert.match(
    r.stdout,
    /^apps\/jq\.json:3:15: API "4" is defined twice: imported from apps\/coprocess_app_sample_protected\.json:3:15, this definition skipped/m,
  );
  assert.match(r.stdout, /^ci\/tests\/tracing\/apps\/test-auth\.json:3:15: API "1" is defined twice: imported from apps\/app_sample\.json:3:15/m);
  assert.match(r.stdout, /^ci\/tests\/tracing\/apps\/test\.json:3:15: API "3" is defined twice: imported from apps\/quickstart\.json:3:15/m);
  // Which fields differ, routing and admission first, with both values (session 18; before: not examined).
  assert.match(
    r.stdout,
    /^ci\/tests\/tracing\/apps\/test\.json:3:15: .*; they differ in 3 fields: \/proxy\/listen_path \("\/quickstart\/" imported, "\/test\/" here\), \/name \("Tyk Test API" imported, "TestAPI" here\), \/detailed_tracing \(unset imported, true here\)\. Remove one/m,
  );
  assert.match(
    r.stdout,
    /^apps\/jq\.json:3:15: .*; they differ in 16 fields: \/auth\/auth_header_name .*\/use_keyless \(unset imported, true here\), \/enable_coprocess_auth \(true imported, unset here\), .*, and 10 more\./m,
  );
  assert.match(r.stderr, /mtlsgate import: incomplete: 3 definitions skipped/);
  // The kept definitions are the first given: apps/ before ci/.
  assert.equal(parse(readFileSync(join(out, 'apis/1.yaml'), 'utf8')).proxy.listen_path, '/tyk-api-test/');
  // The JSON envelope says the same: ok false, a `skipped` error with the position.
  const j = JSON.parse(mtlsgate(TYK_REPO, 'import', 'tyk', 'apps', 'ci', '-o', join(tmp, 'tyk-repo-json'), '--format', 'json').stdout);
  assert.equal(j.ok, false);
  assert.deepEqual(
    j.errors.map((e: { code: string; file: string; line: number; col: number }) => [e.code, e.file, e.line, e.col]),
    [
      ['skipped', 'apps/jq.json', 3, 15],
      ['skipped', 'ci/tests/tracing/apps/test-auth.json', 3, 15],
      ['skipped', 'ci/tests/tracing/apps/test.json', 3, 15],
    ],
  );
  assert.equal(j.skipped[0].pointer, '/api_id');
});

test('--strict: a drop that leaves access wider than in Tyk (an IP allow list) exits 1 and is an error; without --strict it is marked and exits 0 (before: --strict was an unknown flag)', () => {
  const { dir } = inputs({ 'reports.json': reports({}, { enable_ip_whitelisting: true, allowed_ips: ['10.0.0.0/8'], enable_batch_request_support: true }) });
  const plain = mtlsgate(dir, 'import', 'tyk', 'in', '-o', 'plain');
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^not converted \(3, 2 of them marked \[access wider than in Tyk\]\):$/m);
  assert.match(plain.stdout, /^in\/reports\.json#\/allowed_ips: allowed_ips not converted: IP allow lists are not supported \[access wider than in Tyk\]$/m);
  assert.match(plain.stdout, /^in\/reports\.json#\/enable_batch_request_support: .*own$/m);
  const strict = mtlsgate(dir, 'import', 'tyk', 'in', '-o', 'strict', '--strict');
  assert.equal(strict.code, 1);
  assert.match(strict.stderr, /--strict: 2 Tyk settings that narrowed access not converted/);
  const j = JSON.parse(mtlsgate(dir, 'import', 'tyk', 'in', '-o', 'strict-json', '--strict', '--json').stdout);
  assert.equal(j.ok, false);
  assert.deepEqual(
    j.errors.map((e: { code: string; message: string }) => [e.code, e.message.split(':')[0]]),
    [
      ['wider_than_tyk', '/enable_ip_whitelisting'],
      ['wider_than_tyk', '/allowed_ips'],
    ],
  );
  assert.equal(j.not_converted.find((f: { pointer: string }) => f.pointer === '/enable_batch_request_support').wider, undefined);
  // Nothing narrowing dropped: --strict passes.
  const clean = inputs({ 'reports.json': reports({}, { enable_batch_request_support: true }) });
  assert.equal(mtlsgate(clean.dir, 'import', 'tyk', 'in', '-o', 'out', '--strict').code, 0);
});

function whiteListCase(files: Record<string, unknown>) {
  const c = inputs(files);
  const r = mtlsgate(c.dir, 'import', 'tyk', 'in', '-o', 'out', '--convert-white-lists');
  const yaml = (p: string) => parse(readFileSync(join(c.out, p), 'utf8'));
  return { ...c, r, yaml };
}

test("--convert-white-lists: the white_list becomes allowed_urls on a whole-API policy, and is intersected with a policy's own; the generated access test passes, and fails once a policy is widened by hand (before: reported only)", () => {
  const { dir, out, r, yaml } = whiteListCase({
    'reports.json': reports(WHITE_LIST),
    'policies.json': {
      readers: { access_rights: right() },
      'monthly-2026': { access_rights: right([{ url: '^/reports/monthly/2026$', methods: ['GET', 'POST'] }]) },
    },
    [`${ALICE}.json`]: { alias: 'alice', apply_policies: ['readers'] },
    [`${BOB}.json`]: { alias: 'bob', apply_policies: ['monthly-2026'] },
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /1 access test file \(tests\/\)/);
  // The import's closing check ran them (session 18; before: it compiled without the test runner).
  assert.match(r.stderr, /^mtlsgate check: access tests: \d+ passed, 0 failed$/m);
  assert.doesNotMatch(r.stdout, /white_list .*not converted/);
  assert.deepEqual(yaml('policies/readers.yaml').access_rights.reports.allowed_urls, [
    { url: '/daily', methods: ['GET'] },
    { url: '/monthly/([^/]+)', methods: ['GET', 'HEAD'] },
  ]);
  // Tyk lets through a request both lists allow: GET /reports/monthly/2026 only.
  assert.deepEqual(yaml('policies/monthly-2026.yaml').access_rights.reports.allowed_urls, [{ url: '^/monthly/2026$', methods: ['GET'] }]);
  const cases = yaml('tests/white-list-reports.yaml').cases as { name: string; expect: { status: number } }[];
  const decided = (name: string) => cases.find((c) => c.name.startsWith(name))?.expect.status;
  assert.equal(decided('GET /reports/daily as key alice'), 200);
  assert.equal(decided('DELETE /reports/daily as key alice'), 403);
  assert.equal(decided('HEAD /reports/monthly/x1 as key alice'), 200);
  assert.equal(decided('GET /reports/tyk-import-unlisted-path as key alice'), 403);
  assert.equal(decided('GET /reports/monthly/2026 as key bob'), 200);
  assert.equal(decided('POST /reports/monthly/2026 as key bob'), 403);
  assert.equal(decided('GET /reports/daily as key bob'), 403);
  const ran = mtlsgate(dir, 'test', 'out');
  assert.equal(ran.code, 0, ran.stdout);
  assert.match(ran.stdout, new RegExp(`^${cases.length} passed, 0 failed$`, 'm'));
  // The expectations are Tyk's, not a copy of the output: widen a policy and the test says so.
  writeFileSync(join(out, 'policies/readers.yaml'), 'kind: policy\nid: readers\naccess_rights:\n  reports: {}\n');
  const widened = mtlsgate(dir, 'test', 'out');
  assert.equal(widened.code, 1);
  assert.match(widened.stdout, /DELETE \/reports\/daily as key alice \(policy readers\): Tyk refuses it/);
});

test('--convert-white-lists keeps reporting what it cannot express: a black_list beside it, a regex intersection, a key of its own', () => {
  const blocked = whiteListCase({
    'reports.json': reports({ ...WHITE_LIST, black_list: [{ path: '/daily/secret', method_actions: { GET: { action: 'no_action' } } }] }),
    'policies.json': { readers: { access_rights: right() } },
  });
  assert.equal(blocked.r.code, 0, blocked.r.stderr);
  assert.match(blocked.r.stdout, /white_list not converted \(--convert-white-lists\): black_list is set too/);
  assert.match(
    blocked.r.stdout,
    /extended_paths\/white_list: white_list \(GET \/daily, GET,HEAD \/monthly\/\{id\}\) not converted: .*\[access wider than in Tyk\]/,
  );
  assert.equal(blocked.yaml('policies/readers.yaml').access_rights.reports.allowed_urls, undefined);

  // Go regex syntax JavaScript does not read: reported, not a stack trace.
  const goRegex = whiteListCase({
    'reports.json': reports({ white_list: [{ path: '(?i)/daily', method: 'GET' }] }),
    'policies.json': { readers: { access_rights: right() } },
  });
  assert.match(goRegex.r.stdout, /white_list not converted \(--convert-white-lists\): entry 0 \(\(\?i\)\/daily\) is not a regex the import can read/);

  const regex = whiteListCase({
    'reports.json': reports(WHITE_LIST),
    'policies.json': { partial: { access_rights: right([{ url: '/month.*', methods: ['GET'] }]) } },
    // A key with rights of its own (no policy) gets the white list too.
    [`${ALICE}.json`]: { alias: 'alice', access_rights: right([{ url: '^/reports/daily$', methods: ['GET', 'POST'] }]) },
  });
  assert.equal(regex.r.code, 0, regex.r.stderr);
  assert.match(
    regex.r.stdout,
    /policies\.json#\/partial\/access_rights\/reports\/allowed_urls: API "reports"'s white_list not applied to this policy .*\[access wider than in Tyk\]/,
  );
  assert.deepEqual(regex.yaml('policies/partial.yaml').access_rights.reports.allowed_urls, [{ url: '/month.*', methods: ['GET'] }]);
  assert.deepEqual(regex.yaml('keys/alice.yaml').access_rights.reports.allowed_urls, [{ url: '^/daily$', methods: ['GET'] }]);
  assert.equal(mtlsgate(regex.dir, 'test', 'out').code, 0);
});
