// Reloads that cost what changed (issue 15), on a sharded bundle (`compile --shards auto`) of N
// synthetic keys (dynamic mTLS, each key its own certificate fingerprint): `mtlsgate serve
// --bundle DIR` start-up (first answer, RSS); the latency of a one-key change (the changed shard
// and the manifest written -> /health reports the new digest), median and worst of 20 on an
// otherwise idle gateway, with what each reload cost the event loop (the gateway logs it:
// `stall_ms`, its longest synchronous run; `loop_delay_ms`, the event loop's longest delay
// during the reload); and keep-alive throughput with a one-key change every second (a different
// key each time, so the routing overlay grows and is folded as real changes make it) against none,
// in alternating windows of one run (bench/workloads/reload-windows.ts: ratio and its spread,
// the gateway's CPU, the event-loop max per window), failed requests, reloads taken, how long
// each change took to be served under load and whether the last was served within 2 s.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundle } from '../../bundle/read.ts';
import { autoShardCount, shardOf } from '../../bundle/shard-of.ts';
import { type ManifestBase, splitWire } from '../../bundle/shards.ts';
import type { BundleContent, ShardContent } from '../../bundle/types.ts';
import { encodeContent } from '../../bundle/wire.ts';
import { documentDigest, serializeManifest, serializeShard } from '../../bundle/write.ts';
import { buildGatewayBundle, withSyntheticKeys } from '../bundles.ts';
import { health } from '../lib/admin.ts';
import type { BenchContext } from '../lib/context.ts';
import { benchPki, LISTED_CLIENTS } from '../lib/pki.ts';
import { isAdmitted, probe } from '../lib/probe.ts';
import { serveCommand } from '../lib/serve-command.ts';
import { memKiB, SERVER_CORE, startProc, waitForPort } from '../lib/proc.ts';
import { freePort } from '../../common/listen.ts';
import type { Upstream } from '../upstream.ts';
import { type LoadResult, measure, median, round } from './load.ts';
import { type Window, type WindowSummary, summarize, windowedRun } from './reload-windows.ts';
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
  /** Over the changes after the first (the gateway settled): median and worst. */
  oneKeyMedianMs: number;
  oneKeyWorstMs: number;
  oneKeyChanges: number;
  /**
   * The first change, made right after the first answer: it waits for the reload worker's start
   * and warm-up, which run once the set is loaded (runtime/store.ts), so it is reported apart.
   */
  firstChangeMs: number;
  /** Every one-key change's latency, in the order made. */
  oneKeyMs: number[];
  /** Idle gateway, over the one-key changes: the longest `stall_ms` and `loop_delay_ms` a reload logged. */
  idleStallMaxMs: number;
  idleLoopDelayMaxMs: number;
  /** Under load, over the reloads of the windows with reloads: the same (and the median stall). */
  loadStallMaxMs: number;
  loadStallMedianMs: number;
  loadLoopDelayMaxMs: number;
  /** ab's view of the whole windowed run (bench/workloads/reload-windows.ts). */
  load: LoadResult;
  /** Throughput, CPU and event-loop max in the windows without and with a change every second. */
  windows: WindowSummary;
  windowSamples: Window[];
  /** windows.ratio: req/s with a change every second over req/s without. */
  ratio: number;
  reloadsWritten: number;
  /** Distinct shards the loaded run's changes touched (a different key each change). */
  shardsChanged: number;
  reloadsTaken: number;
  failedRequests: number;
  /** Under load, the longest time from a change written to the gateway logging its swap (ms). */
  servedUnderLoadMaxMs: number;
  /** Event-loop max over ab's first 2 s (its connections opening), outside every window. */
  loopMaxMsStartBurst: number;
  /** The last version written was served within 2 s of being written. */
  lastServedWithin2s: boolean;
  error?: string;
}

interface Version {
  manifest: Buffer;
  digest: string;
  shards: [string, Buffer][];
  /** What the next version is made from (bench/workloads/shard-reload.ts `withInactive`). */
  base: ManifestBase;
  contents: ShardContent[];
}

function assemble(base: ManifestBase, contents: ShardContent[], files: Buffer[]): Version {
  const digests = files.map(documentDigest);
  const manifest = serializeManifest({ ...base, shards: digests });
  return { manifest, digest: documentDigest(manifest), shards: files.map((f, i) => [digests[i].slice(7), f]), base, contents };
}

export function version(content: BundleContent, count: number): Version {
  const { base, shards } = splitWire(encodeContent(content), count);
  return assemble(base, shards, shards.map(serializeShard));
}

/**
 * `v` with key `id` made inactive: its shard alone serialised again, and the manifest. The same
 * bytes as splitting the whole content with that key's `is_inactive` set (a shard lists its
 * inactive ids in id order), at the cost of one shard rather than 1,000,000 keys.
 */
export function withInactive(v: Version, id: string): Version {
  const s = shardOf(id, v.contents.length);
  const shard = v.contents[s];
  if (shard.keys.inactive.includes(id)) return v;
  const contents = [...v.contents];
  contents[s] = { ...shard, keys: { ...shard.keys, inactive: [...shard.keys.inactive, id].sort() } };
  const files = v.shards.map(([, f]) => f);
  files[s] = serializeShard(contents[s]);
  return assemble(v.base, contents, files);
}

/** Writes the shards `dir` lacks, then the manifest (atomically: a temporary file renamed over it). Returns bytes written. */
export function writeVersion(dir: string, v: Version, have: Set<string>): number {
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

export async function waitDigest(adminUrl: string, digest: string, timeoutMs: number): Promise<number | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if ((await servedDigest(adminUrl)) === digest) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 2));
  }
  return null;
}

/** One-key changes measured on the idle gateway (each direction of a round trip is one). */
const CHANGES = 20;
/**
 * Windows of the loaded run (half with a change every second). Windows of the same kind differ
 * by ±15% on these VMs, so 12 pairs rather than 8: the ratio's spread shrinks with their number.
 */
const WINDOWS = 24;
/** Versions prepared for the loaded run, one key more inactive each (more than its changes: 12 windows of 3 s with one a second). */
const SPREAD_CHANGES = 64;

export interface ReloadCost {
  stallMs: number;
  loopDelayMs: number;
  digest: string;
  /** The log line's time (Date.now() clock: the swap, give or take the line's own write). */
  at: number;
}

/** What the gateway logged for each reload in its log from byte `from` on (`bundle reloaded` lines). */
export function reloadCosts(logFile: string, from: number): ReloadCost[] {
  const text = readFileSync(logFile).subarray(from).toString('utf8');
  const out: ReloadCost[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"bundle reloaded"')) continue;
    const j = JSON.parse(line) as { stall_ms?: number; loop_delay_ms?: number; digest: string; time: string };
    if (j.stall_ms !== undefined) out.push({ stallMs: j.stall_ms, loopDelayMs: j.loop_delay_ms ?? Number.NaN, digest: j.digest, at: Date.parse(j.time) });
  }
  return out;
}

/** Per change written (at `writtenAt[k]`, digest `digestOf(k)`): ms until the gateway logged it loaded, null if it never did. */
function servedAfter(writtenAt: number[], reloads: ReloadCost[], digestOf: (k: number) => string): (number | null)[] {
  let r = 0;
  return writtenAt.map((t, k) => {
    while (r < reloads.length && !(reloads[r].digest === digestOf(k) && reloads[r].at >= t - 1)) r++;
    return r < reloads.length ? reloads[r++].at - t : null;
  });
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
    // Idle: one key toggled (its shard changes back and forth). Under load: a different key each
    // change (made inactive, the ones before stay so), so every change overlays another shard
    // and the gateway's routing overlay is folded now and then, as with real changes.
    const b = withInactive(a, 'synthetic-000001');
    const spreadKey = (k: number) => `synthetic-${String(k + 1).padStart(6, '0')}`;
    const spread = [a];
    for (let k = 1; k <= SPREAD_CHANGES; k++) spread.push(withInactive(spread[k - 1], spreadKey(k)));
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
      // Warm-up: the first seconds after start run slower (JIT, start-up garbage).
      await measure(proc.pid, { ...spec, durationS: 3 });
      logAt = statSync(logFile).size;
      let writes = 0;
      const windowS = ctx.opts.quick ? 2 : 3;
      const run = await windowedRun({
        pid: proc.pid,
        adminUrl,
        spec,
        windows: ctx.opts.quick ? 8 : WINDOWS,
        windowS,
        write: () => {
          if (++writes > SPREAD_CHANGES) throw new Error(`more than ${SPREAD_CHANGES} changes under load: prepare more versions`);
          return writeVersion(dir, spread[writes], have);
        },
      });
      const last = spread[writes];
      const lastServed = (await waitDigest(adminUrl, last.digest, 2_000)) !== null;
      const underLoad = reloadCosts(logFile, logAt);
      const served = servedAfter(run.writtenAt, underLoad, (k) => spread[k + 1].digest);
      const windows = summarize(run, windowS);
      const sorted = latencies.slice(1).sort((x, y) => x - y);
      const row: ShardReloadRow = {
        keys: n,
        shards: count,
        bundleMiB: round(full / 2 ** 20, 1),
        changeKiB: round(changeBytes / 1024, 1),
        readyMs: Math.round(readyMs),
        rssMiB,
        oneKeyMedianMs: round(median(sorted), 1),
        oneKeyWorstMs: round(sorted[sorted.length - 1], 1),
        oneKeyChanges: sorted.length,
        firstChangeMs: round(latencies[0], 1),
        oneKeyMs: latencies.map((x) => round(x, 1)),
        idleStallMaxMs: maxOf(idle.map((c) => c.stallMs)),
        idleLoopDelayMaxMs: maxOf(idle.map((c) => c.loopDelayMs)),
        loadStallMaxMs: maxOf(underLoad.map((c) => c.stallMs)),
        loadStallMedianMs: round(median(underLoad.map((c) => c.stallMs)), 1),
        loadLoopDelayMaxMs: maxOf(underLoad.map((c) => c.loopDelayMs)),
        load: run.load,
        windows,
        windowSamples: run.windows,
        ratio: windows.ratio,
        reloadsWritten: writes,
        shardsChanged: new Set(Array.from({ length: writes }, (_, k) => shardOf(spreadKey(k + 1), count))).size,
        reloadsTaken: run.windows.reduce((t, w) => t + w.reloadsTaken, 0),
        failedRequests: run.load.errors,
        servedUnderLoadMaxMs: maxOf(served.filter((x) => x !== null)),
        // Every change taken, the last one too, within 2 s of being written.
        lastServedWithin2s: lastServed && served.length > 0 && served[served.length - 1] !== null && served[served.length - 1]! <= 2000,
        loopMaxMsStartBurst: run.burstLoopMaxMs,
      };
      ctx.log(
        `  shards ${n} keys (${count} shards, ${row.bundleMiB} MiB, change ${row.changeKiB} KiB): ready ${row.readyMs} ms, RSS ${rssMiB} MiB; first change after start served in ${row.firstChangeMs} ms, then one-key changes in ${row.oneKeyMedianMs} ms (worst ${row.oneKeyWorstMs}, of ${sorted.length}), reload stall max ${row.idleStallMaxMs} ms, loop delay during reloads max ${row.idleLoopDelayMaxMs} ms; ` +
          `${windows.cleanPairs} of ${windows.pairs} window pairs clean (${windowS} s each): ${windows.rpsNoReload} -> ${windows.rpsReload} req/s (x${windows.ratio}; pairs ${windows.pairRatioMin}..${windows.pairRatioMax}, median ${windows.pairRatioMedian}; per CPU-second x${windows.cpuRatio}), ` +
          `other threads ${windows.otherThreadsMsPerReload} ms CPU a reload, main thread ${windows.mainUsPerRequestNoReload} -> ${windows.mainUsPerRequestReload} µs a request, ${writes} written (${row.shardsChanged} shards) / ${row.reloadsTaken} taken (served within ${row.servedUnderLoadMaxMs} ms), failed ${row.failedRequests}, ` +
          `event-loop max per window median/max ${windows.loopMaxMedianMsNoReload}/${windows.loopMaxMsNoReload} -> ${windows.loopMaxMedianMsReload}/${windows.loopMaxMsReload} ms (burst ${row.loopMaxMsStartBurst} ms), under load reload stall median/max ${row.loadStallMedianMs}/${row.loadStallMaxMs} ms, loop delay during reloads ${row.loadLoopDelayMaxMs} ms, last served within 2 s: ${row.lastServedWithin2s}`,
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
