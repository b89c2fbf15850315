// Issue 10 item 3: nested YAML aliases ("billion laughs") are bounded on every parse path,
// with the diagnostic at the alias that crosses the bound. Before the bound, this 405-byte
// file kept `mtlsgate check` busy for over a minute.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Alias } from 'yaml';
import { compileDir } from './helpers/compile-and-load.ts';
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
/** Alias nodes written in the file: 9 on each of the lines b: to i:. */
const ALIASES_IN_FILE = 8 * 9;

/**
 * Runs `fn` counting alias resolutions (the `yaml` library's Alias.resolve, through which the
 * parser both sizes and expands every alias): the work a parse did, counted, not timed.
 */
async function countingResolves<T>(fn: () => Promise<T>): Promise<{ result: T; resolves: number }> {
  const resolve = Alias.prototype.resolve;
  let resolves = 0;
  Alias.prototype.resolve = function (this: Alias, ...args: Parameters<typeof resolve>) {
    resolves++;
    return resolve.apply(this, args);
  };
  try {
    return { result: await fn(), resolves };
  } finally {
    Alias.prototype.resolve = resolve;
  }
}

test('a billion-laughs file is refused at the first alias that crosses the bound, having done bounded work', async () => {
  assert.ok(Buffer.byteLength(LAUGHS) < 420, `the attack file is small (${Buffer.byteLength(LAUGHS)} bytes)`);
  const dir = writeConfig({ 'apis/x.yaml': api('x', 'use_keyless: true\n'), 'policies/lol.yaml': LAUGHS });
  const { result: r, resolves } = await countingResolves(() => compileDir(dir));
  const d = r.diagnostics.find((x) => x.code === 'E_YAML_ALIAS_BOUND');
  assert.ok(d, JSON.stringify(r.diagnostics));
  // Sizes: *a = 10 nodes; *b = 91 (10 aliases); *c = 820 (91 aliases); *d = 7,381 (820
  // aliases). Charged so far: 9 + 90 + 819 aliases for lines b: to d:; the first *d of line 7
  // (e:) takes the running count past 1,000, and nothing after it is sized or expanded.
  assert.deepEqual([d.file, d.line, d.col], ['policies/lol.yaml', 7, 8]);
  assert.match(d.message, /alias \*d expands to 7381 nodes through 820 nested aliases/);
  assert.equal(r.bundle, null);
  // The work done, counted: each alias written in the file sized once, and at most MAX_ALIASES
  // expanded. Unbounded, the file expands 9^9 (387 million) nodes: minutes and gigabytes.
  assert.ok(resolves <= ALIASES_IN_FILE + MAX_ALIASES, `${resolves} alias resolutions`);
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
  const { result: r, resolves } = await countingResolves(() => compileDir(dir));
  assert.deepEqual(
    r.diagnostics.map((d) => [d.code, d.line, d.col]),
    [['E_YAML_ALIAS_BOUND', 7, 8]],
  );
  assert.ok(resolves <= ALIASES_IN_FILE + MAX_ALIASES, `${resolves} alias resolutions`);
  assert.deepEqual(r.portalPlans, []);
  assert.deepEqual(loadCatalog({ plans: r.portalPlans, apis: {} }), []);
});
