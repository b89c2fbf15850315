// `compile --watch` at scale (issue 15's "recompile after one key file changed"): the real CLI in
// a child process pinned to the server core watches the generated config; after its first compile,
// one key file is changed the way the compile-cache bench changes it (a key appended, then one
// key's certificate swapped: new certificate files written first, the key file written beside and
// renamed over), and the time from the rename to the line saying OUT was rewritten is measured.
// Each rewritten OUT is compared with an uncached `compile` of the same config (`identical`).
// The original key file is put back at the end, as the compile-cache bench does.
// With a cache directory the CLI runs `compile --watch --cache DIR` (primed by the caller: it starts
// from the snapshot there), and each step also records the process's peak RSS so far (VmHWM).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCert } from '../../cli/pki.ts';
import type { BenchContext } from '../lib/context.ts';
import { pinned, runPinned, SERVER_CORE } from '../lib/proc.ts';
import { replaceFile, sha256 } from './compile-cache.ts';
import { round } from './load.ts';

export interface WatchStep {
  step: 'start' | 'added' | 'swap';
  /** start: spawn to "watching"; a change: the key file renamed into place to OUT rewritten (its line read). */
  wallMs: number;
  /** What the line says: the compile's own ms and its mode (full, incremental). */
  line: string;
  identical?: boolean;
  loadAverage: number;
  /** The watching process's peak RSS so far (/proc/PID/status VmHWM), KiB. */
  peakKiB?: number;
  error?: string;
}

export interface WatchRow {
  keys: number;
  cache?: string;
  steps: WatchStep[];
}

const KEY_FILE = join('keys', 'keys-000.yaml');
const ASIDE = `${KEY_FILE}.bench-watch-original`;
const NEW_CERTS = join('certs', 'bench-watch');

export async function runCompileWatchBench(ctx: BenchContext, configDir: string, keys: number, cacheDir?: string): Promise<WatchRow> {
  const work = ctx.dir('compile', `watch-${keys}`);
  const out = join(work, 'watched.json');
  const ref = join(work, 'uncached.json');
  const cli = join(ctx.root, 'dist/mtlsgate.mjs');
  if (existsSync(join(configDir, ASIDE))) renameSync(join(configDir, ASIDE), join(configDir, KEY_FILE));
  rmSync(join(configDir, NEW_CERTS), { recursive: true, force: true });
  rmSync(out, { force: true });
  // The new certificate files exist before the watch starts: the change measured is the key file's.
  const ca = await createCa('compile-watch bench CA', { alg: 'ec' });
  mkdirSync(join(configDir, NEW_CERTS), { recursive: true });
  for (const name of ['added', 'swapped'])
    writeFileSync(join(configDir, NEW_CERTS, `${name}.pem`), (await issueCert(ca, `bench-watch-${name}`, { alg: 'ec' })).certPem);
  const row: WatchRow = { keys, ...(cacheDir ? { cache: cacheDir } : {}), steps: [] };
  const [cmd, args] = pinned(SERVER_CORE, process.execPath, [cli, 'compile', configDir, '-o', out, '--watch', ...(cacheDir ? ['--cache', cacheDir] : [])]);
  ctx.log(`compile watch ${keys}: start`);
  let startedAt = Date.now();
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => (text += s));
  let seen = 0;
  const lineAfter = async (pattern: RegExp, timeoutMs: number): Promise<string> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(text.slice(seen));
      if (m) {
        seen += m.index + m[0].length;
        return m[0].trim();
      }
      if (child.exitCode !== null || Date.now() > until) throw new Error(`no ${pattern}: ${text.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  const compare = async (s: WatchStep) => {
    const r = await runPinned(SERVER_CORE, process.execPath, [cli, 'compile', configDir, '-o', ref], 900_000);
    s.identical = r.code === 0 && sha256(ref) === sha256(out);
  };
  try {
    const loadAverage = round(loadavg()[0], 2);
    const first = await lineAfter(/^.*watching .*$/m, 900_000);
    row.steps.push({ step: 'start', wallMs: Date.now() - startedAt, line: first.split('\n')[0], loadAverage, ...peakOf(child) });
    const original = readFileSync(join(configDir, KEY_FILE), 'utf8');
    renameSync(join(configDir, KEY_FILE), join(configDir, ASIDE));
    const added = `${original}---\nkind: key\nid: bench-watch-added\ncertificate: ../${NEW_CERTS}/added.pem\napply_policies: [policy-000]\n`;
    const firstCert = /certificate: (\S+)/.exec(original)?.[1];
    if (!firstCert) throw new Error(`${KEY_FILE} names no certificate`);
    const edits: [WatchStep['step'], string][] = [
      ['added', added],
      ['swap', added.replace(`certificate: ${firstCert}`, `certificate: ../${NEW_CERTS}/swapped.pem`)],
    ];
    for (const [step, content] of edits) {
      ctx.log(`compile watch ${keys}: ${step}`);
      const loadAverage = round(loadavg()[0], 2);
      startedAt = Date.now();
      replaceFile(configDir, KEY_FILE, content);
      const line = await lineAfter(/^.*keys-000\.yaml.* changed: .*$/m, 300_000);
      const s: WatchStep = { step, wallMs: Date.now() - startedAt, line, loadAverage, ...peakOf(child) };
      if (!/ wrote /.test(line)) s.error = line;
      else await compare(s);
      row.steps.push(s);
    }
  } finally {
    child.kill('SIGTERM');
    if (existsSync(join(configDir, ASIDE))) renameSync(join(configDir, ASIDE), join(configDir, KEY_FILE));
    rmSync(join(configDir, NEW_CERTS), { recursive: true, force: true });
  }
  return row;
}

/** The process's peak RSS so far (taskset execs node: the same PID), or nothing where /proc has no status. */
function peakOf(child: ChildProcess): { peakKiB?: number } {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return m ? { peakKiB: Number(m[1]) } : {};
  } catch {
    return {};
  }
}
