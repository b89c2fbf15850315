// Compile benchmark: 1,000 APIs / 100,000 keys, each key with its own certificate, compiled by
// the real CLI in a child process: wall time, keys/s, peak RSS (GNU time's maximum resident set).
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCompileConfig } from '../gen-config.ts';
import { makeBigCrl } from '../lib/big-crl.ts';
import type { BenchContext } from '../lib/context.ts';
import { runPinned, SERVER_CORE } from '../lib/proc.ts';
import { SCALE_APIS } from './scale.ts';
import { type CacheRow, runCompileCacheBench } from './compile-cache.ts';
import { runCompileWatchBench, type WatchRow } from './compile-watch.ts';
import { round } from './load.ts';

export interface CompileResult {
  apis: number;
  keys: number;
  /** Entries of the CRL a revocation document adds (0 = none). */
  crlEntries: number;
  /** Seconds spent generating the config in this run (0 = reused from bench/.work). */
  generatedInS: number;
  wallS: number;
  cpuS: number | null;
  keysPerS: number;
  peakRssMiB: number | null;
  bundleMiB: number;
  exitCode: number | null;
  error?: string;
  /** `compile --cache` at each --scale-keys size: cold, warm, one key file changed (compile-cache.ts). */
  cache?: CacheRow[];
  /** `compile --watch` at each --scale-keys size: one key file changed to OUT rewritten (compile-watch.ts). */
  watch?: WatchRow[];
}

export async function runCompileBench(ctx: BenchContext): Promise<CompileResult> {
  const { compileApis: apis, compileKeys: keys } = ctx.opts;
  const gen = await generateCompileConfig(ctx.dir('compile', `config-${apis}-${keys}`), { apis, keys }, ctx.log);
  // Issue 11: a CA trusted by one more API, and a revocation document with a big CRL it signed.
  const crlEntries = ctx.opts.compileCrl;
  const extra = join(gen.dir, 'pki-bench');
  rmSync(extra, { recursive: true, force: true });
  if (crlEntries > 0) {
    const crl = makeBigCrl(ctx.dir('compile', 'crl'), crlEntries);
    mkdirSync(extra, { recursive: true });
    writeFileSync(join(extra, 'ca.pem'), crl.caPem);
    writeFileSync(join(extra, 'bench.crl'), crl.crlPem);
    writeFileSync(
      join(extra, 'pki.yaml'),
      'kind: api\nid: crl-bench\nproxy:\n  listen_path: /crl-bench/\n  target_url: http://127.0.0.1:9\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\nkind: revocation\nid: bench\ncrl: [bench.crl]\n',
    );
  }
  const out = join(ctx.dir('compile'), 'bundle.json');
  rmSync(out, { force: true });
  const r = await runPinned(SERVER_CORE, process.execPath, [join(ctx.root, 'dist/mtlsgate.mjs'), 'compile', gen.dir, '-o', out], 600_000);
  const result: CompileResult = {
    apis,
    keys,
    crlEntries,
    generatedInS: round(gen.generatedInS, 1),
    wallS: round(r.wallMs / 1000, 2),
    cpuS: r.cpuSeconds === null ? null : round(r.cpuSeconds, 2),
    keysPerS: Math.round(keys / (r.wallMs / 1000)),
    peakRssMiB: r.maxRssKiB === null ? null : Math.round(r.maxRssKiB / 1024),
    bundleMiB: r.code === 0 ? round(statSync(out).size / 2 ** 20, 1) : 0,
    exitCode: r.code,
  };
  if (r.code !== 0) result.error = (r.stderr || r.stdout).trim().split('\n').slice(0, 8).join('\n');
  result.cache = [];
  result.watch = [];
  for (const n of ctx.opts.scaleKeys) {
    const config = await generateCompileConfig(ctx.dir('compile', `config-${SCALE_APIS}-${n}`), { apis: SCALE_APIS, keys: n }, ctx.log);
    result.cache.push(await runCompileCacheBench(ctx, config.dir, SCALE_APIS, n));
    result.watch.push(await runCompileWatchBench(ctx, config.dir, n));
  }
  return result;
}
