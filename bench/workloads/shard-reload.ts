// Reloads that cost what changed (issue 15), on a sharded bundle (`compile --shards auto`) of N
// synthetic keys (dynamic mTLS, each key its own certificate fingerprint): `mtlsgate serve
// --bundle DIR` start-up (first answer, RSS); the latency of a one-key change (the changed shard
// and the manifest written -> /health reports the new digest), median and worst of 20 on an
// otherwise idle gateway, with what each reload cost the event loop (the gateway logs it:
// `stall_ms`, its longest synchronous run; `loop_delay_ms`, the event loop's longest delay
// during the reload); and keep-alive throughput with a one-key change every second against none:
// ratio, failed requests, reloads taken, whether the last version written is served within 2 s,
// and the event loop's longest delay in each run after its first 2 s (ab opens its connections
// at the start: their handshakes are one burst the loop works through, with or without reloads).
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundle } from '../../bundle/read.ts';
import { autoShardCount } from '../../bundle/shard-of.ts';
import { splitWire } from '../../bundle/shards.ts';
import type { BundleContent } from '../../bundle/types.ts';
import { encodeContent } from '../../bundle/wire.ts';
import { documentDigest, serializeManifest, serializeShard } from '../../bundle/write.ts';
import { buildGatewayBundle, withSyntheticKeys } from '../bundles.ts';
import { health, metricSum } from '../lib/admin.ts';
import type { BenchContext } from '../lib/context.ts';
import { benchPki, LISTED_CLIENTS } from '../lib/pki.ts';
import { isAdmitted, probe } from '../lib/probe.ts';
import { serveCommand } from '../lib/serve-command.ts';
import { freePort, memKiB, SERVER_CORE, startProc, waitForPort } from '../lib/proc.ts';
import type { Upstream } from '../upstream.ts';
import { type LoadResult, measure, median, round } from './load.ts';
import { API_PATH } from './proxy.ts';

export interface ShardReloadRow {
  keys: number;
  shards: number;
  /** Bytes of all shard files plus the manifest. */
  bundleMiB: number;
  /** Bytes written by a one-key change (the changed shard and the manifest). */
  changeKiB: number;
  readyMs: number;
  rssMiB: number;
  /** Changed shard + manifest written -> /health reports the new digest (CHANGES changes, idle gateway). */
  oneKeyMedianMs: number;
  oneKeyWorstMs: number;
  oneKeyChanges: number;
  /** Every one-key change's latency, in the order made. */
  oneKeyMs: number[];
  /** Idle gateway, over the one-key changes: the longest `stall_ms` and `loop_delay_ms` a reload logged. */
  idleStallMaxMs: number;
  idleLoopDelayMaxMs: number;
  /** Under load, over the reloads of the reload-every-second run: the same. */
  loadStallMaxMs: number;
  loadLoopDelayMaxMs: number;
  noReload: LoadResult;
  reloadEverySecond: LoadResult;
  ratio: number;
  reloadsWritten: number;
  reloadsTaken: number;
  failedRequests: number;
  /**
   * The gateway's longest event-loop delay (ms) in the run without reloads and in the run with,
   * after each run's first 2 s (prom-client's monitorEventLoopDelay, 10 ms resolution, reset by
   * each scrape); and over the first 2 s (ab's connection burst) of the run without reloads.
   */
  loopMaxMsNoReload: number;
  loopMaxMsReload: number;
  loopMaxMsStartBurst: number;
  /** The last version written was served within 2 s of being written. */
  lastServedWithin2s: boolean;
  error?: string;
}

interface Version {
  manifest: Buffer;
  digest: string;
  shards: [string, Buffer][];
}

function version(content: BundleContent, count: number): Version {
  const { base, shards } = splitWire(encodeContent(content), count);
  const files = shards.map(serializeShard);
  const digests = files.map(documentDigest);
  const manifest = serializeManifest({ ...base, shards: digests });
  return { manifest, digest: documentDigest(manifest), shards: files.map((f, i) => [digests[i].slice(7), f]) };
}

/** Writes the shards `dir` lacks, then the manifest (atomically: a temporary file renamed over it). Returns bytes written. */
function writeVersion(dir: string, v: Version, have: Set<string>): number {
  let bytes = 0;
  for (const [hex, file] of v.shards) {
    if (have.has(hex)) continue;
    writeFileSync(join(dir, 'shards', `${hex}.json`), file);
    have.add(hex);
    bytes += file.length;
  }
  writeFileSync(join(dir, 'manifest.json.tmp'), v.manifest);
  renameSync(join(dir, 'manifest.json.tmp'), join(dir, 'manifest.json'));
  return bytes + v.manifest.length;
}

async function servedDigest(adminUrl: string): Promise<string> {
  return ((await health(adminUrl)) as { bundle: { digest: string } }).bundle.digest;
}

async function waitDigest(adminUrl: string, digest: string, timeoutMs: number): Promise<number | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if ((await servedDigest(adminUrl)) === digest) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 2));
  }
  return null;
}

/** One-key changes measured on the idle gateway (each direction of a round trip is one). */
const CHANGES = 20;

interface ReloadCost {
  stallMs: number;
  loopDelayMs: number;
}

/** What the gateway logged for each reload in its log from byte `from` on (`bundle reloaded` lines). */
function reloadCosts(logFile: string, from: number): ReloadCost[] {
  const text = readFileSync(logFile).subarray(from).toString('utf8');
  const out: ReloadCost[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"bundle reloaded"')) continue;
    const j = JSON.parse(line) as { stall_ms?: number; loop_delay_ms?: number };
    if (j.stall_ms !== undefined) out.push({ stallMs: j.stall_ms, loopDelayMs: j.loop_delay_ms ?? Number.NaN });
  }
  return out;
}

const maxOf = (xs: number[]): number => (xs.length === 0 ? Number.NaN : Math.max(...xs));

export async function runShardReloadBench(ctx: BenchContext, upstream: Upstream): Promise<ShardReloadRow[]> {
  const pki = await benchPki(ctx.dir(), 'ec');
  const work = ctx.dir('shards');
  const small = join(work, 'initial.json');
  await buildGatewayBundle(ctx, pki, upstream.url, 'dynamic', 0, small);
  const compiled = loadBundle(readFileSync(small)).content;
  const rows: ShardReloadRow[] = [];
  for (const n of ctx.opts.scaleKeys) {
    ctx.log(`shards: ${n} keys: building two versions (one key differs)`);
    const content = withSyntheticKeys(compiled, LISTED_CLIENTS[0], n);
    const count = autoShardCount(n);
    const a = version(content, count);
    const changed = 'synthetic-000001';
    const b = version({ ...content, keys: { ...content.keys, [changed]: { ...content.keys[changed], is_inactive: true } } }, count);
    const dir = join(work, `bundle-${n}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'shards'), { recursive: true });
    const have = new Set<string>();
    const full = writeVersion(dir, a, have);
    const port = await freePort();
    const admin = await freePort();
    const t0 = performance.now();
    const proc = startProc(`serve-shards-${n}`, SERVER_CORE, process.execPath, serveCommand(ctx.root, dir, pki, port, admin), {
      logFile: join(work, `serve-${n}.log`),
    });
    const adminUrl = `http://127.0.0.1:${admin}`;
    try {
      await waitForPort(port, proc, 180_000);
      const url = `https://127.0.0.1:${port}${API_PATH}`;
      if (!isAdmitted(await probe(url, pki.files['listed-1']))) throw new Error('the listed certificate is not admitted');
      const readyMs = performance.now() - t0;
      const rssMiB = Math.round(memKiB(proc.pid, 'VmRSS') / 1024);
      const logFile = join(work, `serve-${n}.log`);
      const latencies: number[] = [];
      let changeBytes = 0;
      let logAt = statSync(logFile).size;
      for (let i = 0; i < CHANGES; i++) {
        const next = i % 2 === 0 ? b : a;
        const written = writeVersion(dir, next, have);
        if (i === 0) changeBytes = written;
        latencies.push((await waitDigest(adminUrl, next.digest, 30_000)) ?? Number.NaN);
        // A pause between changes, as between real ones (the gateway settles: GC, the log written).
        await new Promise((r) => setTimeout(r, 300));
      }
      const idle = reloadCosts(logFile, logAt);
      const spec = { url, combinedPem: pki.files['listed-1'].combined, keepAlive: true, concurrency: ctx.opts.connections, scratchDir: ctx.dir('scratch') };
      await measure(proc.pid, { ...spec, durationS: 1 });
      const loopMax = async () => round((await metricSum(adminUrl, 'mtlsgate_nodejs_eventloop_lag_max_seconds')) * 1000, 1);
      /** A keep-alive run, and the loop's longest delay over its first 2 s and over the rest. */
      const run = async (): Promise<{ load: LoadResult; burst: number; steady: number }> => {
        await loopMax();
        let burst = Number.NaN;
        const mid = new Promise<void>((r) => setTimeout(() => void loopMax().then((v) => ((burst = v), r())), 2000));
        const load = await measure(proc.pid, { ...spec, durationS: ctx.opts.durationS });
        await mid;
        return { load, burst, steady: await loopMax() };
      };
      const quiet = await run();
      const noReload = quiet.load;
      const loopMaxMsNoReload = quiet.steady;
      const okBefore = await metricSum(adminUrl, 'mtlsgate_bundle_reloads_total', { result: 'ok' });
      let writes = 0;
      const writer = setInterval(() => {
        writeVersion(dir, writes % 2 === 0 ? b : a, have);
        writes++;
      }, 1000);
      let reloadEverySecond: LoadResult;
      let loopMaxMsReload: number;
      logAt = statSync(logFile).size;
      try {
        const loaded = await run();
        reloadEverySecond = loaded.load;
        loopMaxMsReload = loaded.steady;
      } finally {
        clearInterval(writer);
      }
      const last = (writes - 1) % 2 === 0 ? b : a;
      const lastServedWithin2s = (await waitDigest(adminUrl, last.digest, 2_000)) !== null;
      const reloadsTaken = (await metricSum(adminUrl, 'mtlsgate_bundle_reloads_total', { result: 'ok' })) - okBefore;
      const underLoad = reloadCosts(logFile, logAt);
      const sorted = [...latencies].sort((x, y) => x - y);
      const row: ShardReloadRow = {
        keys: n,
        shards: count,
        bundleMiB: round(full / 2 ** 20, 1),
        changeKiB: round(changeBytes / 1024, 1),
        readyMs: Math.round(readyMs),
        rssMiB,
        oneKeyMedianMs: round(median(sorted), 1),
        oneKeyWorstMs: round(sorted[sorted.length - 1], 1),
        oneKeyChanges: latencies.length,
        oneKeyMs: latencies.map((x) => round(x, 1)),
        idleStallMaxMs: maxOf(idle.map((c) => c.stallMs)),
        idleLoopDelayMaxMs: maxOf(idle.map((c) => c.loopDelayMs)),
        loadStallMaxMs: maxOf(underLoad.map((c) => c.stallMs)),
        loadLoopDelayMaxMs: maxOf(underLoad.map((c) => c.loopDelayMs)),
        noReload,
        reloadEverySecond,
        ratio: round(reloadEverySecond.rps / noReload.rps, 3),
        reloadsWritten: writes,
        reloadsTaken,
        failedRequests: noReload.errors + reloadEverySecond.errors,
        lastServedWithin2s,
        loopMaxMsNoReload,
        loopMaxMsReload,
        loopMaxMsStartBurst: quiet.burst,
      };
      ctx.log(
        `  shards ${n} keys (${count} shards, ${row.bundleMiB} MiB, change ${row.changeKiB} KiB): ready ${row.readyMs} ms, RSS ${rssMiB} MiB; one-key change served in ${row.oneKeyMedianMs} ms (worst ${row.oneKeyWorstMs}, of ${latencies.length}), reload stall max ${row.idleStallMaxMs} ms, loop delay during reloads max ${row.idleLoopDelayMaxMs} ms; ${noReload.rps} -> ${reloadEverySecond.rps} req/s (x${row.ratio}), ${writes} written / ${reloadsTaken} taken, failed ${row.failedRequests}, max latency ${noReload.maxMs} -> ${reloadEverySecond.maxMs} ms, event-loop max after 2 s ${loopMaxMsNoReload} -> ${loopMaxMsReload} ms (first 2 s: ${row.loopMaxMsStartBurst} ms), under load reload stall max ${row.loadStallMaxMs} ms / loop delay during reloads ${row.loadLoopDelayMaxMs} ms, last served within 2 s: ${lastServedWithin2s}`,
      );
      rows.push(row);
    } catch (err) {
      ctx.log(`  shards ${n} keys: ${(err as Error).message}`);
      rows.push({ keys: n, shards: count, error: (err as Error).message } as ShardReloadRow);
    } finally {
      await proc.stop();
    }
  }
  return rows;
}
