// Issue 10 item 2 (compiler side): allowed_urls are RE2 patterns. The ReDoS pattern of the
// report compiles (RE2 runs it in linear time); constructs RE2 cannot run are refused with
// their position; unanchored patterns are warned about with the anchored form.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { compileDir } from './helpers/compile-and-load.ts';
import { anchoredForm, re2Problem } from '../compiler/url-pattern.ts';
import { api, removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';

after(removeConfigs);

const policy = (urls: string[]) => `kind: policy\nid: p\naccess_rights:\n  x:\n    allowed_urls:\n${urls.map((u) => `      - url: '${u}'\n`).join('')}`;

test('lookarounds and backreferences are refused at the construct; the ReDoS pattern is accepted', async () => {
  const dir = writeConfig({
    'a.yaml': api('x'),
    'p.yaml': policy(['^/users/([a-z0-9]+)+/profile$', '^/a/(?=b)', '^/(x)\\1', '^/c{2000}']),
  });
  const r = await compileDir(dir);
  const errors = r.diagnostics.filter((d) => d.code === 'E_URL_REGEX').map((d) => [d.line, d.col, d.message]);
  // Lines 7-9; each url value starts at col 14 with a quote, so pattern index i is col 15 + i.
  assert.deepEqual(
    errors.map(([line, col]) => [line, col]),
    [
      [7, 15 + 4],
      [8, 15 + 5],
      [9, 15 + 3],
    ],
  );
  assert.match(String(errors[0][2]), /cannot run in RE2 \(linear time\): invalid or unsupported Perl syntax at `\(\?=`/);
  assert.match(String(errors[1][2]), /invalid escape sequence/);
  assert.ok(!r.diagnostics.some((d) => d.line === 6 && d.code === 'E_URL_REGEX'), 'the nested quantifier is fine in RE2');
});

test('unanchored patterns warn with the anchored form', async () => {
  assert.equal(anchoredForm('/public/'), '^/public/');
  assert.equal(anchoredForm('/a|/b'), '^(?:/a|/b)');
  assert.equal(anchoredForm('(/a|/b)'), '^(/a|/b)');
  assert.equal(anchoredForm('[|]x'), '^[|]x');
  assert.equal(anchoredForm('^/ok'), null);
  const dir = writeConfig({ 'a.yaml': api('x'), 'p.yaml': policy(['/public/', '^/fine/']) });
  const r = await compileDir(dir);
  assert.deepEqual(
    r.diagnostics.map((d) => [d.code, d.line, d.message]),
    [['W_URL_UNANCHORED', 6, 'allowed_urls regex "/public/" is not anchored: it matches anywhere in the path, not only at its start; write "^/public/"']],
  );
  assert.ok(r.bundle, 'a warning: the bundle is still written');
});

test('re2Problem positions', () => {
  assert.equal(re2Problem('^/ok$'), null);
  assert.equal(re2Problem('^/a(')?.index, 3);
  assert.equal(re2Problem('^/a)')?.index, 3);
  assert.equal(re2Problem('^/[z-a]')?.index, 3);
});
