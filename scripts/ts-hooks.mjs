// Module hooks that run the repository's TypeScript from source without tsx (scripts/ts-loader.mjs
// registers them). Each .ts module is esbuild's transform of it (types stripped, an inline source
// map so stack traces point at the .ts lines), kept in a cache keyed by the module's path and
// contents: after the first run a module costs one read and one hash. tsx does the same work
// per module, but loading tsx itself costs ~0.3 CPU-s per process, paid by each of the ~200
// test files (scripts/run-tests.mjs).
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(import.meta.dirname, '..');
// Bumped when the transform's options change, so older entries are not used.
const VERSION = 1;
// In the checkout (node_modules/.cache, where babel and others keep theirs), not in the shared
// tmp directory: another local user could create a name there first and fill it with modules
// this would run (the names are predictable: a hash of path and contents).
export const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'mtlsgate-ts');
/** An entry no run has used for this long is removed (each edit of a module leaves one behind). */
const KEEP_UNUSED_MS = 14 * 24 * 3600 * 1000;
const TSCONFIG = readFileSync(join(ROOT, 'tsconfig.json'), 'utf8');
// The running Node's own syntax: node20 alone would drop import attributes (`with { type: 'json' }`).
const TARGET = `node${process.versions.node}`;

let esbuild = null;
async function loadEsbuild() {
  esbuild ??= await import('esbuild');
  return esbuild;
}

function cachePath(path, source) {
  const key = createHash('sha256').update(`${VERSION}\0${TARGET}\0${TSCONFIG}\0${path}\0`).update(source).digest('hex');
  return join(CACHE_DIR, `${key.slice(0, 40)}.mjs`);
}

/** esbuild's transform of `source` (the file `path`), written to the cache entry `cached`. */
async function transformInto(cached, path, source) {
  const { transform } = await loadEsbuild();
  const out = await transform(source, { loader: 'ts', format: 'esm', target: TARGET, sourcemap: 'inline', sourcefile: path, tsconfigRaw: TSCONFIG });
  // Written beside and renamed: processes started together may transform the same module.
  mkdirSync(CACHE_DIR, { recursive: true, mode: 0o700 });
  const tmp = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, out.code);
  renameSync(tmp, cached);
  return out.code;
}

/** The JavaScript for the TypeScript file `path` (contents `source`), from the cache or esbuild. */
export async function transformed(path, source) {
  const cached = cachePath(path, source);
  try {
    return readFileSync(cached, 'utf8');
  } catch {}
  return transformInto(cached, path, source);
}

/**
 * Fills the cache for these TypeScript files at once (the test runner, before its first file),
 * marks their entries used now, and removes entries no run has used for KEEP_UNUSED_MS.
 */
export async function warm(paths) {
  mkdirSync(CACHE_DIR, { recursive: true, mode: 0o700 });
  const now = new Date();
  const used = new Set();
  await Promise.all(
    paths.map(async (path) => {
      const source = readFileSync(path, 'utf8');
      const cached = cachePath(path, source);
      used.add(basename(cached));
      try {
        utimesSync(cached, now, now);
      } catch {
        await transformInto(cached, path, source);
      }
    }),
  );
  for (const name of readdirSync(CACHE_DIR)) {
    if (used.has(name)) continue;
    try {
      const entry = join(CACHE_DIR, name);
      if (now.getTime() - statSync(entry).mtimeMs > KEEP_UNUSED_MS) rmSync(entry, { force: true });
    } catch {}
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = readFileSync(path, 'utf8');
  return { format: 'module', source: await transformed(path, source), shortCircuit: true };
}
