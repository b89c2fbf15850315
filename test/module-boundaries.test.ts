// The folders' import rules (docs/architecture.md): cert/ is a leaf every half uses; bundle/ is
// shared by compiler and runtime and imports neither; the runtime carries no compiler, portal,
// YAML or ajv; the compiler never imports the runtime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(ROOT, path)).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every module a file imports (static and dynamic), resolved to a repository path or left as a package name. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]);
  return specifiers.map((s) => (s.startsWith('.') ? relative(ROOT, join(ROOT, file, '..', s)) : s));
}

const RULES: Array<[string, RegExp, string]> = [
  ['cert', /^(compiler|runtime|portal|cli|bundle)\//, 'cert/ imports nothing of the project'],
  ['bundle', /^(compiler|runtime|portal|cli)\//, 'bundle/ imports neither half'],
  ['runtime', /^(compiler|portal|access|importer)\/|^(yaml|ajv|ajv-formats)$/, 'the runtime carries no compiler, portal, access tests, importer, YAML or ajv'],
  ['compiler', /^(runtime|access)\//, 'the compiler never imports the runtime (access tests reach it through an injected runner)'],
  ['importer', /^(runtime|access|portal)\//, 'the importer writes YAML: it never imports the runtime'],
  ['access', /^(portal|importer)\/|^(yaml|ajv|ajv-formats)$/, 'access/ decides with the runtime, from a bundle: no YAML, ajv, portal or importer'],
];

for (const [folder, forbidden, rule] of RULES) {
  test(rule, () => {
    const found = sources(folder).flatMap((file) =>
      importsOf(file)
        .filter((m) => forbidden.test(m))
        .map((m) => `${file} imports ${m}`),
    );
    assert.deepEqual(found, []);
  });
}

test('access/ takes only types from the compiler: its verdicts come from the runtime stages', () => {
  const found = sources('access').filter((file) => /^import (?!type )[^;]*from '\.\.\/compiler\//m.test(readFileSync(join(ROOT, file), 'utf8')));
  assert.deepEqual(found, []);
});

test('fingerprints are computed in cert/ only (one definition of a certificate identity)', () => {
  const found = ['compiler', 'runtime', 'portal', 'cli', 'bundle', 'access', 'importer']
    .flatMap(sources)
    .filter((file) => /fingerprint256|createHash\('sha256'\)\.update\([^)]*raw/.test(readFileSync(join(ROOT, file), 'utf8')));
  assert.deepEqual(found, []);
});

test('the one-line message of an I/O error is made by common/errno.ts only (errnoMessage)', () => {
  const found = ['compiler', 'runtime', 'portal', 'cli', 'bundle', 'access', 'importer', 'cert', 'common', 'support']
    .flatMap(sources)
    .filter((file) => file !== join('common', 'errno.ts'))
    .filter((file) => /\.code \?\? \(?[a-z]+(?: as Error\))?\.message/.test(readFileSync(join(ROOT, file), 'utf8')));
  assert.deepEqual(found, []);
});

test('a file is replaced by common/atomic-write.ts only (a random new temporary name, then rename): no other writer renames', () => {
  // cli/commands/import.ts renames a whole directory it staged with mkdtemp (a random name, mode 700).
  const allowed = new Set([join('common', 'atomic-write.ts'), join('cli', 'commands', 'import.ts')]);
  const found = ['compiler', 'runtime', 'portal', 'cli', 'bundle', 'access', 'importer', 'cert', 'common', 'support']
    .flatMap(sources)
    .filter((file) => !allowed.has(file))
    .filter((file) => /\brename(Sync)?\(/.test(readFileSync(join(ROOT, file), 'utf8')));
  assert.deepEqual(found, []);
});

test('"holds a private key" is decided by cert/private-key.ts only (containsPrivateKey): no other PRIVATE KEY pattern', () => {
  // A second, narrower pattern would tell a user a key was found (or not) where the project's
  // rule says otherwise (PuTTY, SSH2 armour, a lost BEGIN line, retyped lower-case armour).
  const found = ['compiler', 'runtime', 'portal', 'cli', 'bundle', 'access', 'importer', 'common', 'support']
    .flatMap(sources)
    .filter((file) => /\/[^/\n]*PRIVATE[ \\-]*\[?[^/\n]*KEY[^/\n]*\/[a-z]*[;,)]/i.test(readFileSync(join(ROOT, file), 'utf8')));
  assert.deepEqual(found, []);
});
