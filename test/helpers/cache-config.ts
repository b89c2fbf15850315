// What the compile-cache suites share: the generated config they compile (bench/gen-config.ts,
// 10 APIs and 300 keys, split into three key files of 100), fresh copies of it, the comparison
// with an uncached compile, and the cache figures they compare.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { cpSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCompileConfig } from '../../bench/gen-config.ts';
import { RACY_MS } from '../../compiler/certs.ts';
import { compileDir, type CompileOptions, type CompileResult } from '../../compiler/index.ts';
import { tempDir } from './ops-fixtures.ts';

export interface CacheSuite {
  /** The suite's temporary directory (removed after its tests). */
  readonly dir: string;
  /** The one "now" every compile of the suite uses (certificate validity is judged against it). */
  readonly now: Date;
  /** A fresh copy of the pristine config under `name`, and where its cache goes (not created). */
  copy(name: string): { dir: string; cache: string };
}

/** Registers the suite's fixture: the config generated before its tests, everything removed after. */
export function cacheSuite(prefix: string): CacheSuite {
  const t = tempDir(prefix);
  let pristine = '';
  before(async () => {
    pristine = await threeKeyFileConfig(t.dir);
  });
  after(() => t.cleanup());
  return {
    dir: t.dir,
    now: new Date(),
    copy(name) {
      const dir = join(t.dir, name);
      cpSync(pristine, dir, { recursive: true });
      return { dir, cache: join(t.dir, `${name}.cache`) };
    },
  };
}

/**
 * Compiles `dir` without a cache (`plain` options) and with `cache` (`cached` options): the same
 * diagnostics, error count and bundle bytes. Returns the cached compile.
 */
export async function assertSameAsUncached(
  dir: string,
  cache: string,
  now: Date,
  cached: CompileOptions = {},
  plain: CompileOptions = {},
): Promise<CompileResult> {
  const uncached = await compileDir(dir, { now, ...plain });
  const result = await compileDir(dir, { now, cacheDir: cache, ...cached });
  assert.deepEqual(result.diagnostics, uncached.diagnostics);
  assert.equal(result.errorCount, uncached.errorCount);
  assert.ok(uncached.bundle === null ? result.bundle === null : result.bundle?.equals(uncached.bundle), 'the same bundle bytes');
  return result;
}

/** Rewrites `file` with `change`, which must change it. */
export function edit(file: string, change: (text: string) => string): void {
  const text = readFileSync(file, 'utf8');
  const next = change(text);
  assert.notEqual(next, text, `${file} changed`);
  writeFileSync(file, next);
}

/** Removes the cache's snapshot (compiler/compile-snapshot.ts): the next compile takes the per-file entries. */
export function dropSnapshot(cache: string): void {
  rmSync(join(cache, 'snapshot'), { recursive: true, force: true });
}

/** The cache figures without the reason a snapshot was not used (asserted where it matters). */
export function cacheStats(r: CompileResult) {
  // (`unread` depends on how long ago the files were written: known-files.ts's racy rule.)
  const { snapshotMiss: _, unread: _u, ...rest } = r.cache ?? { hits: -1, stale: -1 };
  return rest;
}

/** Generates the config under `dir` and returns the directory of the pristine copy (keys/part-0..2.yaml). */
async function threeKeyFileConfig(dir: string): Promise<string> {
  const gen = await generateCompileConfig(join(dir, 'gen'), { apis: 10, keys: 300 });
  const pristine = join(dir, 'pristine');
  cpSync(gen.dir, pristine, { recursive: true });
  // Three key files of 100 keys each (the generator writes 1,000 a file).
  const docs = readFileSync(join(pristine, 'keys/keys-000.yaml'), 'utf8').split(/^---\n/m);
  assert.equal(docs.length, 300);
  rmSync(join(pristine, 'keys/keys-000.yaml'));
  for (let f = 0; f < 3; f++) writeFileSync(join(pristine, `keys/part-${f}.yaml`), docs.slice(f * 100, f * 100 + 100).join('---\n'));
  return pristine;
}

/** Waits until every file's ctime is RACY_MS old (a stat is recorded only for a file that settled; a witness keeps no SHA-256). */
export async function settle(files: string[]): Promise<void> {
  const newest = Math.max(...files.map((f) => statSync(f).ctimeMs));
  const deadline = newest + RACY_MS + 100;
  while (Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/**
 * The first of `among` whose size is `size` bytes: a certificate to rewrite another with in place,
 * size kept. The generator patches fixed-length fields, but the CA's ECDSA signature is 70-72
 * bytes (DER integers), so two generated certificates are not always one size.
 */
export function certificateOfSize(size: number, among: string[]): string {
  const found = among.find((p) => statSync(p).size === size);
  assert.ok(found, `a certificate of ${size} bytes among ${among.length}`);
  return found;
}

/** The generated certificate files of keys `from` to `to` - 1 (certs/000/key-000NNN.pem). */
export function keyCertificates(dir: string, from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => join(dir, `certs/000/key-${String(from + i).padStart(6, '0')}.pem`));
}
