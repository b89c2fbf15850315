// Runs the built CLI the way a user does: ./dist/mtlsgate.mjs executed directly (its #! line
// and mode bits, no `node` in front), with arguments, optional standard input and environment.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'mtlsgate.mjs');
/** `node --import TS_LOADER FILE.ts` runs a helper from source, as the test runner runs each file (tsx costs 0.3 CPU-s more a process). */
export const TS_LOADER = join(ROOT, 'scripts', 'ts-loader.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm test` builds first; building here too keeps `run-tests.mjs FILTER` usable alone. */
export function ensureBuilt(): void {
  if (!existsSync(CLI)) spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
}

export interface CliOptions {
  cwd?: string;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
}

/** The environment a run gets: this process's without MTLSGATE_* (a developer's shell may hold some), then `env`. */
function cliEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MTLSGATE_'))), ...env };
}

export function mtlsgate(args: string[], opts: CliOptions = {}): CliResult {
  const r = spawnSync(CLI, args, { cwd: opts.cwd ?? ROOT, input: opts.input, env: cliEnv(opts.env), encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** mtlsgate without waiting: runs that do not depend on each other go side by side (sideBySide). */
export function mtlsgateAsync(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, args, { cwd: opts.cwd ?? ROOT, env: cliEnv(opts.env), timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    // Decoded as a whole stream, as spawnSync's encoding does: a character split across chunks stays whole.
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input);
  });
}

/**
 * `fn` over `items`, at most `limit` at a time, the results in the items' order. For CLI runs
 * that do not depend on each other: each is a process of its own, mostly starting up, so a few
 * side by side take the time of one on a machine with cores to spare.
 */
export async function sideBySide<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
