// Issue 10 item 3: nested YAML aliases ("billion laughs") are bounded on every parse path,
// with the diagnostic at the alias that crosses the bound. Before the bound, this 405-byte
// file kept `mtlsgate check` busy for over a minute.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { compileDir } from '../compiler/index.ts';
import { parseSources, MAX_ALIASES } from '../compiler/parse.ts';
import { DiagnosticLog } from '../compiler/diagnostics.ts';
import { loadCatalog } from '../portal/catalog.ts';
import { api, removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';

after(removeConfigs);

const LAUGHS = [
  'kind: policy',
  'id: lol',
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map((n, i) => {
    const prev = 'abcdefghi'[i];
    return `${n}: &${n} [${Array(9).fill(`*${prev}`).join(',')}]`;
  }),
].join('\n');

test('a billion-laughs file is refused quickly, at the first alias that crosses the bound', async () => {
  assert.ok(Buffer.byteLength(LAUGHS) < 420, `the attack file is small (${Buffer.byteLength(LAUGHS)} bytes)`);
  const dir = writeConfig({ 'apis/x.yaml': api('x', 'use_keyless: true\n'), 'policies/lol.yaml': LAUGHS });
  const started = performance.now();
  const r = await compileDir(dir);
  const ms = performance.now() - started;
  const d = r.diagnostics.find((x) => x.code === 'E_YAML_ALIAS_BOUND');
  assert.ok(d, JSON.stringify(r.diagnostics));
  // Sizes: *a = 10 nodes; *b = 91 (10 aliases); *c = 820 (91 aliases); line 7 (e:) is where
  // the running alias count passes 1,000.
  assert.deepEqual([d.file, d.line, d.col], ['policies/lol.yaml', 7, 8]);
  assert.match(d.message, /alias \*d expands to \d+ nodes through 820 nested aliases/);
  assert.equal(r.bundle, null);
  // Generous: the machine is shared. Unbounded, this takes minutes and gigabytes.
  assert.ok(ms < 10_000, `compile took ${Math.round(ms)} ms`);
});

test('ordinary anchors and aliases still work (the bound is far above real use)', async () => {
  const text = `kind: api\nid: x\nname: &n Shared\nproxy:\n  listen_path: /x/\n  target_url: http://127.0.0.1:9000\nuse_keyless: true\n---\nkind: api\nid: y\nname: *n\nproxy:\n  listen_path: /y/\n  target_url: http://127.0.0.1:9000\nuse_keyless: true\n`;
  const log = new DiagnosticLog(false);
  const docs = parseSources([{ path: 'a.yaml', absPath: '/a.yaml', text }], log);
  assert.deepEqual(log.diagnostics, []);
  assert.equal(docs.length, 2);
  // Anchors do not cross documents in YAML: the second name is an unresolved alias error.
  const many = `kind: policy\nid: p\nv: &v 1\nlist: [${Array(MAX_ALIASES).fill('*v').join(', ')}]\n`;
  const log2 = new DiagnosticLog(false);
  parseSources([{ path: 'b.yaml', absPath: '/b.yaml', text: many }], log2);
  assert.deepEqual(log2.diagnostics, [], 'exactly MAX_ALIASES aliases are allowed');
  const log3 = new DiagnosticLog(false);
  parseSources([{ path: 'c.yaml', absPath: '/c.yaml', text: many.replace('[*v', '[*v, *v') }], log3);
  assert.deepEqual(
    log3.diagnostics.map((x) => x.code),
    ['E_YAML_ALIAS_BOUND'],
  );
});

test('alias loops are reported, not expanded forever', () => {
  const log = new DiagnosticLog(false);
  parseSources([{ path: 'a.yaml', absPath: '/a.yaml', text: 'kind: policy\nid: p\nx: &x\n  - *x\n  - *x\n' }], log);
  assert.equal(log.diagnostics.length, 1);
  assert.match(log.diagnostics[0].code, /^E_YAML_(ALIAS_BOUND|SYNTAX)$/);
});

test("the portal's catalog comes from the compiler, through the same bounded parser", async () => {
  const dir = writeConfig({ 'policies/lol.yaml': LAUGHS });
  const started = performance.now();
  const r = await compileDir(dir);
  assert.deepEqual(r.portalPlans, []);
  assert.deepEqual(loadCatalog({ plans: r.portalPlans, apis: {} }), []);
  assert.ok(performance.now() - started < 10_000);
});
