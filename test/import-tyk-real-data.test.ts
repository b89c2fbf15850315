// `import tyk` on shapes found in Tyk's own repository (session 16 ran the importer on every
// API definition, policy and key fixture of github.com/TykTechnologies/tyk: apps/, ci/tests/,
// policies/, internal/policy/testdata/). The inputs here are written after those files, cut
// to the fields that matter:
// - internal/policy/testdata/policies.json holds policies without access_rights (limits only,
//   or a partition): the whole file was fatal ("not a Tyk ... policy").
// - extended_paths was one drop for the whole list set; a white_list or black_list widens
//   access once dropped, so each list is its own finding, with its paths and the direction.
//   Tyk reads extended_paths only under use_extended_paths (else the older `paths`).
// - allowed_urls that is not a list (Tyk cannot load it) granted the whole API.
// - a Dashboard policy's state ("deny", "draft") was "no mtlsgate equivalent"; its keys kept access.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { importTyk, type ImportResult } from '../importer/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-import-real-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** Imports the given files (name -> JSON) from a directory of their own. */
function importFiles(files: Record<string, unknown>): { r: ImportResult; dir: string } {
  const dir = join(tmp, `case-${n++}`);
  mkdirSync(dir);
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, name), JSON.stringify(value));
  return { r: importTyk([dir]), dir };
}
const fileOf = (r: ImportResult, path: string) => {
  const f = r.files.find((x) => x.path === path);
  assert.ok(f, `${path} among ${r.files.map((x) => x.path).join(', ')}`);
  return f.text;
};
const dropsAt = (r: ImportResult, suffix: string) => r.drops.filter((d) => d.pointer === suffix);

const api = (versions: Record<string, unknown>) => ({
  api_id: 'reports',
  name: 'Reports',
  use_keyless: false,
  use_standard_auth: true,
  proxy: { listen_path: '/reports/', target_url: 'http://upstream.internal:8080', strip_listen_path: true },
  version_data: { not_versioned: true, default_version: '', versions },
});

test('policies.json entries without access_rights (a limits-only policy, a partition) are imported (before: the file was fatal)', () => {
  const { r } = importFiles({
    'apps.json': api({ Default: { name: 'Default', use_extended_paths: true, extended_paths: {} } }),
    'policies.json': {
      'read-reports': { access_rights: { reports: { api_id: 'reports', versions: ['Default'], allowed_urls: [] } } },
      rate3: { rate: 4, per: 4, partitions: { acl: false, rate_limit: true } },
      difforg: { org_id: 'different', partitions: {} },
    },
  });
  assert.deepEqual(
    r.files.filter((f) => f.path.startsWith('policies/')).map((f) => f.path),
    ['policies/read-reports.yaml', 'policies/rate3.yaml', 'policies/difforg.yaml'],
  );
  assert.deepEqual(parse(fileOf(r, 'policies/rate3.yaml')), { kind: 'policy', id: 'rate3', rate: 4, per: 4 });
  // Partitions are applied as Tyk applies them (session 18): a rate_limit partition is the rate, nothing is left unconverted.
  assert.deepEqual(dropsAt(r, '/rate3/partitions'), []);
});

test('a map of other objects is still not taken for policies', () => {
  assert.throws(
    () => importFiles({ 'x.json': { a: { rate: 1 }, b: { rate: 2 } } }),
    /not a Tyk API definition \(classic or OAS\), policy, key session or tyk\.conf/,
  );
});

test('extended_paths: each list its own finding, with its paths; white_list and black_list say access is wider, ignored narrower', () => {
  const { r } = importFiles({
    'apps.json': api({
      Default: {
        name: 'Default',
        use_extended_paths: true,
        extended_paths: {
          white_list: [
            { path: '/daily', method_actions: { GET: { action: 'no_action', code: 200 } } },
            { path: '/monthly/{id}', method_actions: { GET: { action: 'no_action' }, HEAD: { action: 'no_action' } } },
          ],
          black_list: [{ path: '/admin', method_actions: { DELETE: { action: 'no_action' } } }],
          ignored: [{ path: '/health', method_actions: { GET: { action: 'no_action' } } }],
          hard_timeouts: [{ path: '/slow', method: 'GET', timeout: 60 }],
          transform: [],
        },
        paths: { white_list: ['/old'] },
      },
    }),
  });
  const at = '/version_data/versions/Default/extended_paths';
  const messages = Object.fromEntries(r.drops.filter((d) => d.pointer.startsWith(at)).map((d) => [d.pointer.slice(at.length + 1), d.message]));
  assert.deepEqual(Object.keys(messages).sort(), ['black_list', 'hard_timeouts', 'ignored', 'white_list']);
  assert.match(messages.white_list, /^white_list \(GET \/daily, GET,HEAD \/monthly\/\{id\}\) not converted: an allow list .*wider than in Tyk.*allowed_urls/);
  assert.match(messages.black_list, /^black_list \(DELETE \/admin\) not converted: a block list .*wider than in Tyk/);
  assert.match(messages.ignored, /^ignored \(GET \/health\) not converted: paths Tyk served without authentication.*narrower than in Tyk/);
  assert.match(messages.hard_timeouts, /^hard_timeouts \(GET \/slow\) not converted: per-path timeouts/);
  // use_extended_paths: true, so Tyk never read the older `paths`: nothing to report there.
  assert.equal(r.drops.filter((d) => d.pointer.includes('/paths')).length, 0);
});

test('use_extended_paths false: the older paths lists are what Tyk applied, and what is reported', () => {
  const { r } = importFiles({
    'apps.json': api({
      Default: {
        name: 'Default',
        use_extended_paths: false,
        paths: { ignored: [], white_list: ['/daily', '/weekly'], black_list: [] },
        extended_paths: { black_list: [{ path: '/x' }] },
      },
    }),
  });
  const found = r.drops.filter((d) => d.pointer.startsWith('/version_data')).map((d) => [d.pointer, d.message.slice(0, 40)]);
  assert.deepEqual(found, [['/version_data/versions/Default/paths/white_list', 'white_list (/daily, /weekly) not convert']]);
});

test('allowed_urls that is not a list grants nothing (before: the whole API)', () => {
  const { r } = importFiles({
    'apps.json': api({}),
    'policy.json': { id: 'p', access_rights: { reports: { api_id: 'reports', allowed_urls: { url: '/daily', methods: ['GET'] } } } },
  });
  assert.deepEqual(parse(fileOf(r, 'policies/p.yaml')), { kind: 'policy', id: 'p' });
  assert.match(dropsAt(r, '/access_rights/reports/allowed_urls')[0].message, /allowed_urls is not a list \(Tyk cannot load it\): API "reports" is not granted/);
});

test('a policy state other than "active" (Dashboard: deny, draft) makes its keys inactive; "active" says nothing', () => {
  const hash = 'ab'.repeat(32);
  const { r } = importFiles({
    'apps.json': api({}),
    'policies.json': [
      { _id: 'p-deny', id: 'p-deny', state: 'deny', access_rights: { reports: { api_id: 'reports' } } },
      { _id: 'p-ok', id: 'p-ok', state: 'active', access_rights: { reports: { api_id: 'reports' } } },
    ],
    [`${hash}.json`]: { apply_policies: ['p-deny'], allowance: 0, access_rights: {} },
    [`${'cd'.repeat(32)}.json`]: { apply_policies: ['p-ok'], allowance: 0, access_rights: {} },
  });
  const denied = r.files.find((f) => f.path.startsWith('keys/') && parse(f.text)?.apply_policies?.[0] === 'p-deny');
  const fine = r.files.find((f) => f.path.startsWith('keys/') && parse(f.text)?.apply_policies?.[0] === 'p-ok');
  assert.equal(parse(denied!.text).is_inactive, true);
  assert.equal(parse(fine!.text).is_inactive, undefined);
  assert.match(r.notes.find((x) => x.pointer === '/0/state')!.message, /state is "deny": keys that apply it are written with is_inactive: true/);
  assert.equal([...r.drops, ...r.notes].filter((x) => x.pointer === '/1/state').length, 0);
});

test('two definitions of one api_id: the skip says they are identical when only unset fields differ, else the fields that differ (before: not examined)', () => {
  const one = api({ Default: { name: 'Default', use_extended_paths: true, extended_paths: {} } });
  const same = importFiles({ 'a.json': one, 'b.json': { ...one, tags: [], enable_batch_request_support: false } }).r;
  assert.match(same.skipped[0].message, /; the two definitions are identical \(fields left unset count as equal\): either can go\. Remove one/);
  const other = importFiles({
    'a.json': one,
    'b.json': { ...one, use_keyless: true, last_updated: '2026-01-01', proxy: { ...one.proxy, listen_path: '/r2/' } },
  }).r;
  assert.match(
    other.skipped[0].message,
    /; they differ in 3 fields: \/use_keyless \(unset imported, true here\), \/proxy\/listen_path \("\/reports\/" imported, "\/r2\/" here\), \/last_updated \(unset imported, "2026-01-01" here\)\. Remove one/,
  );
});

// Tyk's own policies (internal/policy/testdata/policies.json, copied unchanged) applied together
// as Tyk's internal/policy/apply_test.go applies them, to keys of APIs a..e.
test("several policies on one key, as Tyk's apply_test.go combines them: partitions applied, the keys Tyk refuses written inactive, what mtlsgate's merge widens reported at the key (before: partitions unsupported, every policy applied whole)", () => {
  const POLICIES = join(import.meta.dirname, 'fixtures', 'tyk-repo', 'internal', 'policy', 'testdata', 'policies.json');
  const dir = join(tmp, 'partitions');
  mkdirSync(dir);
  for (const id of ['a', 'b', 'c', 'd', 'e'])
    writeFileSync(
      join(dir, `${id}.json`),
      JSON.stringify({ api_id: id, use_standard_auth: true, proxy: { listen_path: `/${id}/`, target_url: 'http://127.0.0.1:9' } }),
    );
  const keys: Record<string, string[]> = {
    mixed: ['per_api_with_api_d', 'quota1'],
    'mixed-other-order': ['rate1', 'per_api_with_api_d'],
    'per-api-and-partitions': ['per_api_and_partitions'],
    'per-api-only': ['per_api_and_no_other_partitions', 'per_api_with_api_d'],
    'quota-and-acl': ['quota4', 'nonpart1'],
    'per-path': ['per-path2', 'per-path1'],
    'whole-and-paths': ['nonpart1', 'per-path2'],
    'rates-per-api': ['acl-for-a-b', 'rate-for-a', 'rate-for-b'],
  };
  Object.entries(keys).forEach(([alias, apply], i) =>
    writeFileSync(join(dir, `${String(i).repeat(64)}.json`), JSON.stringify({ alias, apply_policies: apply })),
  );
  const r = importTyk([POLICIES, dir]);
  const yaml = (path: string) => parse(fileOf(r, path));
  // Partitions: what a partition leaves out is not written (Tyk does not apply it).
  assert.deepEqual(yaml('policies/rate-for-a.yaml'), { kind: 'policy', id: 'rate-for-a', rate: 4, per: 1 });
  assert.deepEqual(yaml('policies/acl1.yaml'), { kind: 'policy', id: 'acl1', access_rights: { a: {} } });
  assert.equal(yaml('policies/acl_with_allowed_url.yaml').rate, undefined);
  assert.match(
    r.notes.find((f) => f.pointer === '/quota4/partitions')?.message ?? '',
    /not written, as Tyk does not apply them: access_rights \(no acl partition: it grants no API/,
  );
  // Tyk refuses these keys ("key not found"): written inactive, with Tyk's reason.
  const noteAt = (alias: string) =>
    r.notes.find((f) => basename(f.file).startsWith(String(Object.keys(keys).indexOf(alias))) && f.pointer === '/apply_policies')?.message ?? '';
  for (const alias of ['mixed', 'mixed-other-order', 'per-api-and-partitions']) assert.equal(yaml(`keys/${alias}.yaml`).is_inactive, true, alias);
  assert.match(
    noteAt('mixed'),
    /Tyk refuses this key: it applies per_api and partitioned policies together .*cannot apply multiple policies when some have per_api set and some are partitioned/,
  );
  assert.match(noteAt('mixed-other-order'), /Tyk refuses this key/);
  assert.match(noteAt('per-api-and-partitions'), /policy "per_api_and_partitions": it sets per_api together with other partitions/);
  for (const alias of ['per-api-only', 'quota-and-acl', 'per-path', 'whole-and-paths', 'rates-per-api'])
    assert.equal(yaml(`keys/${alias}.yaml`).is_inactive, undefined, alias);
  // What mtlsgate's merge grants more than Tyk's, at the key, marked wider.
  const dropsOf = (alias: string) => r.drops.filter((f) => f.file.includes(dir) && basename(f.file).startsWith(String(Object.keys(keys).indexOf(alias))));
  const [whole] = dropsOf('whole-and-paths');
  assert.equal(whole?.wider, true);
  assert.match(
    whole.message,
    /^API "a": Tyk merges the rights of policies p1, per_path_2 into the allowed_urls of per_path_2 only .*mtlsgate grants it the whole API/,
  );
  const [rate] = dropsOf('rates-per-api');
  assert.equal(rate?.wider, true);
  assert.match(
    rate.message,
    /^API "b": Tyk limits this key to 2 per 1 s there \(the most generous of rate-for-b\); mtlsgate applies the key's most generous rate, 4 per 1 s, on every API$/,
  );
  for (const alias of ['per-path', 'quota-and-acl', 'per-api-only']) assert.deepEqual(dropsOf(alias), [], alias);
});
