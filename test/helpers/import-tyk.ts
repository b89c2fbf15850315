// `mtlsgate import tyk` through the built CLI, as the import-tyk tests run it: on the fixtures in
// test/fixtures/tyk (classic and OAS API definitions, policies, key sessions, a tyk.conf) or on
// inputs a test writes, into a temporary directory each test file removes when it is done.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { parse } from 'yaml';
import { CLI } from './serve-fixtures.ts';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'tyk');

/** A temporary directory for this test file's outputs, removed after its tests. */
export function importTmpDir(): string {
  const tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-import-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  return tmp;
}

/** `mtlsgate import tyk INPUTS... -o OUT`, run in the fixtures directory. */
export function importTyk(out: string, ...inputs: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'import', 'tyk', ...inputs, '-o', out], { encoding: 'utf8', timeout: 60_000, cwd: FIXTURES });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The YAML file PATH the import wrote under OUT, parsed. */
export const yamlOf = (out: string, path: string) => parse(readFileSync(join(out, path), 'utf8'));
