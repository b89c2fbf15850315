// What the compile-cache suites share: the generated config they compile (bench/gen-config.ts,
// 10 APIs and 300 keys, split into three key files of 100) and the cache figures they compare.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCompileConfig } from '../../bench/gen-config.ts';
import type { CompileResult } from '../../compiler/index.ts';

/** The cache figures without the reason a snapshot was not used (asserted where it matters). */
export function cacheStats(r: CompileResult) {
  const { snapshotMiss: _, ...rest } = r.cache ?? { hits: -1, stale: -1 };
  return rest;
}

/** Generates the config under `dir` and returns the directory of the pristine copy (keys/part-0..2.yaml). */
export async function threeKeyFileConfig(dir: string): Promise<string> {
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
