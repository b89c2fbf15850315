// docs/architecture.md names the tree as it is (issue 9: it once named files that did not
// exist). Every file or folder it puts in backticks exists: a path with a slash from the
// repository root or from its section's folder ("## Runtime (`runtime/`)"), a bare file name
// somewhere under that folder (the tables name runtime/stages/run.ts as `run.ts`), or, in a
// section without a folder, anywhere in the tree; a `*` matches within one name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const SKIP = new Set(['node_modules', '.git', 'dist', 'test-artifacts']);

function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    if (SKIP.has(name)) return [];
    const path = dir === '' ? name : join(dir, name);
    return statSync(join(ROOT, path)).isDirectory() ? [`${path}/`, ...filesUnder(path)] : [path];
  });
}

const nameMatches = (pattern: string, name: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*')}$`).test(name);

/** Whether `ref` (a backticked name) exists, read in a section whose folder is `base` ('' for none). */
function exists(ref: string, base: string): boolean {
  const folder = ref.endsWith('/');
  const bare = ref.replace(/\/$/, '');
  if (!bare.includes('*') && existsSync(join(ROOT, bare))) return true;
  if (bare.includes('/')) {
    return [join(ROOT, bare), join(ROOT, base, bare)].some((p) =>
      bare.includes('*') ? existsSync(dirname(p)) && readdirSync(dirname(p)).some((n) => nameMatches(basename(bare), n)) : existsSync(p),
    );
  }
  return filesUnder(base).some((path) => path.endsWith('/') === folder && nameMatches(bare, basename(path.replace(/\/$/, ''))));
}

test('every file and folder docs/architecture.md names exists', () => {
  const text = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const missing: string[] = [];
  let base = '';
  let checked = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('## ')) base = /\(`([a-z-]+)\/`\)/.exec(line)?.[1] ?? '';
    for (const [, ref] of line.matchAll(/`([\w.*/-]+(?:\.(?:ts|mjs|json)|\/))`/g)) {
      checked++;
      if (!exists(ref, base)) missing.push(`${ref} (in ${base || 'the root'})`);
    }
  }
  assert.ok(checked > 50, `read ${checked} names`);
  assert.deepEqual(missing, []);
});

test('every source folder of the tree has its place in docs/architecture.md: a section or a row naming it', () => {
  // Issue 9: "the tree shows the architecture by its folder and file names: bundle/, compiler/,
  // runtime/, portal/, cli/". A folder that holds TypeScript and that the page never names is a
  // part of the architecture a reader cannot find (portal/ and cli/ were such folders).
  const text = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const named = new Set([...text.matchAll(/(?:^## [^\n]*\(|^\| )`([a-z-]+)\/`/gm)].map((m) => m[1]));
  const sourceFolders = readdirSync(ROOT)
    .filter((name) => !SKIP.has(name) && !name.startsWith('.') && statSync(join(ROOT, name)).isDirectory())
    .filter((name) => !['test', 'bench', 'scripts'].includes(name))
    .filter((name) => readdirSync(join(ROOT, name)).some((f) => f.endsWith('.ts')));
  assert.ok(sourceFolders.length >= 10, sourceFolders.join(' '));
  assert.deepEqual(
    sourceFolders.filter((f) => !named.has(f)),
    [],
  );
});
