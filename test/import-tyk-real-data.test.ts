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
import { join } from 'node:path';
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
  assert.match(dropsAt(r, '/rate3/partitions')[0].message, /policy partitions are not supported/);
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
  const other = importFiles({ 'a.json': one, 'b.json': { ...one, use_keyless: true, last_updated: '2026-01-01', proxy: { ...one.proxy, listen_path: '/r2/' } } }).r;
  assert.match(
    other.skipped[0].message,
    /; they differ in 3 fields: \/use_keyless \(unset imported, true here\), \/proxy\/listen_path \("\/reports\/" imported, "\/r2\/" here\), \/last_updated \(unset imported, "2026-01-01" here\)\. Remove one/,
  );
});
