// `npm run bench`: every contender in turn on loopback, then the compiler, bundle swap, reload
// and limiter benches; writes bench/RESULTS.md and bench/results.json (a subset run writes
// bench/.work/RESULTS-subset.md and results-subset.json instead, so committed results always
// come from one full run). Options: see bench/README.md or `--help`.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CONTENDERS } from './contenders/index.ts';
import { createContext, type BenchOptions } from './lib/context.ts';
import { describeMachine } from './lib/machine.ts';
import { CLIENT_CORE, PINNING, which } from './lib/proc.ts';
import { renderPerfSnippet, renderReport, type BenchResults } from './report.ts';
import { startUpstream } from './upstream.ts';
import { runCompileBench } from './workloads/compile.ts';
import { runGeneratorCeiling } from './workloads/generator.ts';
import { runLimitsSection } from './workloads/limits-e2e.ts';
import { runLogLineBench } from './workloads/log-line.ts';
import { runHttp2Bench } from './workloads/http2.ts';
import { runPaired } from './workloads/paired.ts';
import { runContender } from './workloads/proxy.ts';
import { runReloadBench } from './workloads/reload.ts';
import { runScaleBench } from './workloads/scale.ts';
import { runShardReloadBench } from './workloads/shard-reload.ts';
import { runSwapBench } from './workloads/swap.ts';

export const SECTIONS = [
  'generator',
  'paired',
  'http2',
  'keepalive',
  'latency',
  'handshake',
  'resumed',
  'compile',
  'scale',
  'shards',
  'swap',
  'reload',
  'limits',
  'logline',
] as const;
type Section = (typeof SECTIONS)[number];

const HELP = `usage: npm run bench -- [options]
  --only LIST          sections, comma-separated: ${SECTIONS.join(', ')} (default: all)
  --contenders LIST    ${CONTENDERS.map((c) => c.id).join(', ')} (default: all)
  --alg LIST           ec, rsa (default: ec,rsa)
  --duration S         seconds of keep-alive load per run (default 8)
  --rounds N --turn S  paired and http2 sections: rounds, and seconds per contender per round (default 5 × 3 s)
  --handshake-duration S  seconds per new-connection run (default 5)
  --connections N      keep-alive connections (default 64)
  --handshake-connections N  concurrent new connections (default 16)
  --keys N             keys in the dynamic-mTLS bundle (default 100000)
  --compile-apis N --compile-keys N   compile bench size (default 1000 / 100000)
  --compile-crl N      entries of the CRL the compile bench's revocation document holds (default 10000)
  --scale-keys LIST    key counts of the scale section (1,000 APIs each; default 100000). The
                       1,000,000-key row is opt-in: --scale-keys 100000,1000000 (its config takes
                       ~4 min to generate the first time, cached in bench/.work; compile ~1-2 min)
  --quick              2 s runs, 10k keys, compile 100 APIs / 10k keys (checks the harness)`;

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      contenders: { type: 'string' },
      alg: { type: 'string' },
      duration: { type: 'string' },
      'handshake-duration': { type: 'string' },
      connections: { type: 'string' },
      'handshake-connections': { type: 'string' },
      keys: { type: 'string' },
      'compile-apis': { type: 'string' },
      'compile-keys': { type: 'string' },
      'compile-crl': { type: 'string' },
      'scale-keys': { type: 'string' },
      rounds: { type: 'string' },
      turn: { type: 'string' },
      quick: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const list = (v: string | undefined) =>
    v
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
  const int = (v: string | undefined, name: string, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  const quick = values.quick ?? false;
  const only = list(values.only);
  for (const s of only) if (!SECTIONS.includes(s as Section)) throw new Error(`--only: unknown section ${JSON.stringify(s)}; sections: ${SECTIONS.join(', ')}`);
  const contenders = list(values.contenders);
  for (const c of contenders)
    if (!CONTENDERS.some((x) => x.id === c))
      throw new Error(`--contenders: unknown ${JSON.stringify(c)}; contenders: ${CONTENDERS.map((x) => x.id).join(', ')}`);
  const algs = list(values.alg);
  for (const a of algs) if (a !== 'ec' && a !== 'rsa') throw new Error(`--alg: ${JSON.stringify(a)} is not ec or rsa`);
  return {
    quick,
    only,
    contenders,
    algs: (algs.length ? algs : ['ec', 'rsa']) as ('ec' | 'rsa')[],
    durationS: int(values.duration, 'duration', quick ? 2 : 8),
    rounds: int(values.rounds, 'rounds', quick ? 2 : 5),
    turnS: int(values.turn, 'turn', quick ? 1 : 3),
    handshakeDurationS: int(values['handshake-duration'], 'handshake-duration', quick ? 2 : 5),
    connections: int(values.connections, 'connections', 64),
    handshakeConnections: int(values['handshake-connections'], 'handshake-connections', 16),
    dynamicKeys: int(values.keys, 'keys', quick ? 10_000 : 100_000),
    compileApis: int(values['compile-apis'], 'compile-apis', quick ? 100 : 1000),
    compileKeys: int(values['compile-keys'], 'compile-keys', quick ? 10_000 : 100_000),
    compileCrl: int(values['compile-crl'], 'compile-crl', quick ? 1_000 : 10_000),
    scaleKeys: values['scale-keys'] ? list(values['scale-keys']).map((k) => int(k, 'scale-keys', 0)) : [quick ? 10_000 : 100_000],
  };
}

/** Keep this driver (and everything it spawns unpinned: redis-server) off the server core. */
function pinSelf(): void {
  if (PINNING) spawnSync('taskset', ['-a', '-p', '-c', String(CLIENT_CORE), String(process.pid)], { stdio: 'ignore' });
}

async function main(): Promise<void> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const opts = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const log = (line: string) => console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  if (!which('ab')) {
    console.error('bench: ab (ApacheBench) is the load generator and is not installed: apt-get install apache2-utils');
    process.exit(2);
  }
  const ctx = createContext(root, opts, log);
  pinSelf();
  const wants = (s: Section) => opts.only.length === 0 || opts.only.includes(s);
  const results: BenchResults = { machine: describeMachine(root), options: opts, sections: {}, errors: [] };
  log(`machine: ${results.machine.cpuModel}, ${results.machine.cores} cores, Node ${results.machine.node}; ${results.machine.pinning}`);
  const upstream = await startUpstream(ctx);
  log(`upstream: ${upstream.kind} on ${upstream.url}`);
  const attempt = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    log(`== ${name}`);
    try {
      return await fn();
    } catch (err) {
      const message = (err as Error).message;
      results.errors.push({ section: name, message });
      log(`${name} FAILED: ${message}`);
      return undefined;
    }
  };
  try {
    if (wants('generator')) results.sections.generator = await attempt('generator', () => runGeneratorCeiling(ctx, upstream));
    if (wants('paired')) {
      results.sections.paired = await attempt('paired', async () => {
        // Default trio: the ceiling, the gateway, the gateway without its request log line.
        const ids = opts.contenders.length ? opts.contenders : ['node-bare', 'mtlsgate-static', 'mtlsgate-static-nolog'];
        const chosen = ids.map((id) => CONTENDERS.find((c) => c.id === id)!).filter((c) => !c.binary || which(c.binary));
        const out = [];
        for (const alg of opts.algs) out.push(await runPaired(ctx, chosen, alg, upstream, { rounds: opts.rounds, turnS: opts.turnS }));
        return out;
      });
    }
    if (wants('http2')) {
      results.sections.http2 = await attempt('http2', async () => {
        const out = [];
        for (const alg of opts.algs) out.push(await runHttp2Bench(ctx, upstream, alg, { rounds: opts.rounds, turnS: opts.turnS }));
        return out;
      });
    }
    if (wants('keepalive') || wants('latency') || wants('handshake') || wants('resumed')) {
      results.sections.proxy = await attempt('contenders', async () => {
        const runs = [];
        for (const alg of opts.algs) {
          for (const c of CONTENDERS.filter((x) => opts.contenders.length === 0 || opts.contenders.includes(x.id))) {
            log(`${c.id} (${alg})`);
            runs.push(
              await runContender(ctx, c, alg, upstream, {
                keepAlive: wants('keepalive'),
                newConnection: wants('handshake'),
                resumed: wants('resumed') && which('openssl') !== null,
                fixedRate: wants('latency') && alg === opts.algs[0],
              }),
            );
          }
        }
        return runs;
      });
    }
    if (wants('compile')) results.sections.compile = await attempt('compile', () => runCompileBench(ctx));
    if (wants('scale')) results.sections.scale = await attempt('scale', () => runScaleBench(ctx));
    if (wants('shards')) results.sections.shards = await attempt('shards', () => runShardReloadBench(ctx, upstream));
    if (wants('swap')) results.sections.swap = await attempt('swap', () => runSwapBench(ctx, upstream.url));
    if (wants('reload')) results.sections.reload = await attempt('reload', () => runReloadBench(ctx, upstream));
    if (wants('limits')) results.sections.limits = await attempt('limits', () => runLimitsSection(ctx, upstream));
    if (wants('logline')) results.sections.logLine = await attempt('logline', () => runLogLineBench(ctx));
  } finally {
    await upstream.proc.stop();
  }
  results.durationS = Math.round((Date.now() - started) / 1000);
  results.loadAverageAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  const full = !opts.quick && opts.only.length === 0 && opts.contenders.length === 0 && opts.algs.length === 2;
  const [md, json] = full
    ? [join(root, 'bench/RESULTS.md'), join(root, 'bench/results.json')]
    : [join(ctx.dir(), 'RESULTS-subset.md'), join(ctx.dir(), 'results-subset.json')];
  writeFileSync(json, JSON.stringify(results, null, 2) + '\n');
  writeFileSync(md, renderReport(results));
  if (full) writeFileSync(join(root, 'bench/README-PERF-SNIPPET.md'), renderPerfSnippet(results));
  log(`done in ${results.durationS} s: ${md}, ${json}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
