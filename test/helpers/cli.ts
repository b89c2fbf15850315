// Runs the built CLI the way a user does: ./dist/mtlsgate.mjs executed directly (its #! line
// and mode bits, no `node` in front), with arguments, optional standard input and environment.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'mtlsgate.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm test` builds first; building here too keeps `run-tests.mjs FILTER` usable alone. */
export function ensureBuilt(): void {
  if (!existsSync(CLI)) spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
}

export function mtlsgate(args: string[], opts: { cwd?: string; input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): CliResult {
  // Variables a developer's shell may hold must not change what the test sees.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MTLSGATE_')));
  const r = spawnSync(CLI, args, { cwd: opts.cwd ?? ROOT, input: opts.input, env: { ...env, ...opts.env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
