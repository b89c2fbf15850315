// scripts/ts-loader.mjs, which the test runner starts every file with (scripts/ts-hooks.mjs):
// TypeScript from source runs with plain node, a failure's stack points at the .ts line (an
// inline source map), a JSON import keeps its attribute, and an edit is seen at once (the cache
// is keyed by contents, not by path alone).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, TS_LOADER } from './helpers/cli.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

test('a .ts file runs through the loader: types stripped, JSON imported, a throw reported at its .ts line, an edit seen at once', (t) => {
  const dir = tempDir('ts-loader');
  t.after(() => dir.cleanup());
  const file = join(dir.dir, 'throws.ts');
  const pkg = JSON.stringify(join(ROOT, 'package.json'));
  const source = (word: string) =>
    [
      `import pkg from ${pkg} with { type: 'json' };`,
      'type Shape = { name: string };',
      'const shape: Shape = { name: pkg.name };',
      '',
      `console.log(shape.name, ${JSON.stringify(word)});`,
      'throw new Error("line 6");',
      '',
    ].join('\n');
  for (const word of ['first', 'edited']) {
    writeFileSync(file, source(word));
    const r = spawnSync(process.execPath, ['--import', TS_LOADER, file], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, `mtlsgate ${word}\n`);
    assert.match(r.stderr, /Error: line 6/);
    assert.ok(r.stderr.includes(`${file}:6:7`), `the .ts line and column in the stack:\n${r.stderr}`);
  }
});
