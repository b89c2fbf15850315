// The compile cache at scale (issue 15: "recompiling after one key file changed takes under 5 s
// at 1,000,000 keys, using a cache keyed by file content that never changes the output bytes").
// For each --scale-keys size (1,000 APIs, each key its own certificate file), the real CLI in a
// child process, pinned to the server core:
//   cold   `compile DIR -o OUT --cache CACHE` with an empty CACHE (writes every entry)
//   warm   the same again, nothing changed
//   added  one key file changed: a key (with a new certificate file) appended to keys-000.yaml
//   swap   one key's certificate swapped: the key file names another (new) certificate file
// and after each change an uncached `compile DIR -o REF` of the changed config: the cached
// output must have the same SHA-256 (`identical`). The edits never write into an existing file:
// the edited key file is written beside and renamed over (the config may be a `cp -al` hardlink
// copy of another tree, whose files must stay as they are), and the original is put back the
// same way afterwards (also at the start, if a killed run left it aside).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCert } from '../../cli/pki.ts';
import type { BenchContext } from '../lib/context.ts';
import { runPinned, SERVER_CORE } from '../lib/proc.ts';
import { round } from './load.ts';

export interface CacheStep {
  step: 'cold' | 'warm' | 'added' | 'swap';
  wallS: number;
  cpuS: number | null;
  peakRssMiB: number | null;
  /** The compiler's --timings line (stage: ms), and the cache hits / stale entries it reported. */
  timings: string;
  sha256: string;
  /** After a change: SHA-256 of an uncached compile of the same config, and whether they match. */
  uncachedSha256?: string;
  uncachedWallS?: number;
  identical?: boolean;
  exitCode: number | null;
  /** The 1-minute load average when the step started (other work on this shared machine). */
  loadAverage: number;
  error?: string;
}

export interface CacheRow {
  apis: number;
  keys: number;
  /** Bytes of the cache directory after the cold compile. */
  cacheMiB: number;
  steps: CacheStep[];
}

const KEY_FILE = join('keys', 'keys-000.yaml');
const ASIDE = `${KEY_FILE}.bench-original`;
const NEW_CERTS = join('certs', 'bench-cache');

export const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Replaces `rel` in `dir` by a new file (never writing into the existing inode). */
export function replaceFile(dir: string, rel: string, text: string): void {
  writeFileSync(join(dir, `${rel}.bench-tmp`), text);
  renameSync(join(dir, `${rel}.bench-tmp`), join(dir, rel));
}

function restore(dir: string): void {
  // renameSync replaces the edited file's directory entry (never its bytes).
  if (existsSync(join(dir, ASIDE))) renameSync(join(dir, ASIDE), join(dir, KEY_FILE));
  rmSync(join(dir, NEW_CERTS), { recursive: true, force: true });
}

export async function runCompileCacheBench(ctx: BenchContext, configDir: string, apis: number, keys: number): Promise<CacheRow> {
  const work = ctx.dir('compile', `cache-${keys}`);
  const cache = join(work, 'cache');
  const out = join(work, 'cached.json');
  const ref = join(work, 'uncached.json');
  restore(configDir);
  rmSync(cache, { recursive: true, force: true });
  const cli = join(ctx.root, 'dist/mtlsgate.mjs');
  const compile = async (step: CacheStep['step'], target: string, withCache: boolean) => {
    rmSync(target, { force: true });
    const args = [cli, 'compile', configDir, '-o', target, '--timings', ...(withCache ? ['--cache', cache] : [])];
    ctx.log(`compile cache ${keys}: ${step}${withCache ? '' : ' (uncached reference)'}`);
    return runPinned(SERVER_CORE, process.execPath, args, 900_000);
  };
  const row: CacheRow = { apis, keys, cacheMiB: 0, steps: [] };
  // Every cache entry and the snapshot name the build that wrote them (key-cache.ts
  // compilerCode): a rebuild of dist/ during the run (`npm run build` in the same checkout)
  // makes the next step a cold compile. Such a step is marked void, not reported as a figure.
  const build = sha256(cli);
  const record = async (step: CacheStep['step']) => {
    const loadAverage = round(loadavg()[0], 2);
    const r = await compile(step, out, true);
    const s: CacheStep = {
      step,
      wallS: round(r.wallMs / 1000, 2),
      cpuS: r.cpuSeconds === null ? null : round(r.cpuSeconds, 2),
      peakRssMiB: r.maxRssKiB === null ? null : Math.round(r.maxRssKiB / 1024),
      timings: /^timings: (.*)$/m.exec(r.stderr)?.[1] ?? '',
      sha256: r.code === 0 ? sha256(out) : '',
      exitCode: r.code,
      loadAverage,
    };
    const cacheLine = /^cache: .*$/m.exec(r.stderr)?.[0];
    if (cacheLine) s.timings += `; ${cacheLine}`;
    if (r.code !== 0) s.error = (r.stderr || r.stdout).trim().split('\n').slice(0, 8).join('\n');
    else if (sha256(cli) !== build) s.error = `void: ${cli} was rebuilt during the run, so the cache this step read was another build's`;
    row.steps.push(s);
    return s;
  };
  const compare = async (s: CacheStep) => {
    const r = await compile(s.step, ref, false);
    s.uncachedWallS = round(r.wallMs / 1000, 2);
    s.uncachedSha256 = r.code === 0 ? sha256(ref) : '';
    s.identical = r.code === 0 && s.sha256 !== '' && s.sha256 === s.uncachedSha256;
  };
  try {
    await record('cold');
    row.cacheMiB = round(duBytes(cache) / 2 ** 20, 1);
    await record('warm');
    // One key file changed: a key added, with a certificate file of its own.
    const ca = await createCa('compile-cache bench CA', { alg: 'ec' });
    mkdirSync(join(configDir, NEW_CERTS), { recursive: true });
    for (const name of ['added', 'swapped'])
      writeFileSync(join(configDir, NEW_CERTS, `${name}.pem`), (await issueCert(ca, `bench-${name}`, { alg: 'ec' })).certPem);
    const original = readFileSync(join(configDir, KEY_FILE), 'utf8');
    renameSync(join(configDir, KEY_FILE), join(configDir, ASIDE));
    const added = `${original}---\nkind: key\nid: bench-cache-added\ncertificate: ../${NEW_CERTS}/added.pem\napply_policies: [policy-000]\n`;
    replaceFile(configDir, KEY_FILE, added);
    await compare(await record('added'));
    // One key's certificate swapped for another (new) certificate file.
    const first = /certificate: (\S+)/.exec(original)?.[1];
    if (!first) throw new Error(`${KEY_FILE} names no certificate`);
    replaceFile(configDir, KEY_FILE, added.replace(`certificate: ${first}`, `certificate: ../${NEW_CERTS}/swapped.pem`));
    await compare(await record('swap'));
  } finally {
    // The edited file is this run's own (the original is aside): put the original back.
    restore(configDir);
  }
  return row;
}

/** Total bytes of the files under `dir` (du -sb). */
function duBytes(dir: string): number {
  return Number(/^(\d+)/.exec(spawnSync('du', ['-sb', dir]).stdout?.toString() ?? '')?.[1] ?? 0);
}
