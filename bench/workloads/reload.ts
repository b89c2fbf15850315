// Throughput during a reload every second against no reloads, on one gateway: keep-alive load
// with no reload, then the same load while the watched bundle file is replaced every second
// (write a temporary file, rename it over: what a deploy does), alternating two versions that
// differ in one API name. Every failed or non-2xx request counts; there must be none. /health
// must report the digest of the last version written (proof the reloads were taken).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { KeyAlg } from '../../cli/pki.ts';
import { loadBundle } from '../../bundle/read.ts';
import { serializeBundle } from '../../bundle/write.ts';
import { BENCH_API_ID } from '../bundles.ts';
import { mtlsgateContender } from '../contenders/mtlsgate.ts';
import { health, metricSum } from '../lib/admin.ts';
import type { BenchContext } from '../lib/context.ts';
import { benchPki } from '../lib/pki.ts';
import { isAdmitted, probe } from '../lib/probe.ts';
import { freePort } from '../../common/listen.ts';
import type { Upstream } from '../upstream.ts';
import { measure, round, type LoadResult } from './load.ts';
import { API_PATH } from './proxy.ts';

export interface ReloadRun {
  bundle: string;
  keys: number;
  noReload: LoadResult;
  reloadEverySecond: LoadResult;
  /** rps with reloads / rps without. */
  ratio: number;
  reloadsWritten: number;
  /** Reloads the gateway counted as taken (mtlsgate_bundle_reloads_total{result="ok"}). */
  reloadsTaken: number;
  reloadsRefused: number;
  /** /health's digest equals the last version written. */
  lastVersionServed: boolean;
  failedRequests: number;
}

export async function runReloadBench(ctx: BenchContext, upstream: Upstream, alg: KeyAlg = 'ec'): Promise<ReloadRun[]> {
  const pki = await benchPki(ctx.dir(), alg);
  const runs: ReloadRun[] = [];
  const variants = [
    { name: 'static mTLS, 1 API', contender: mtlsgateContender({ mode: 'static', id: 'reload-static' }) },
    { name: `dynamic mTLS, ${ctx.opts.dynamicKeys} keys`, contender: mtlsgateContender({ mode: 'dynamic', id: 'reload-dynamic' }) },
  ];
  for (const { name, contender } of variants) {
    const port = await freePort();
    const running = await contender.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', `${contender.id}-${alg}`) });
    try {
      const url = `https://127.0.0.1:${port}${API_PATH}`;
      if (!isAdmitted(await probe(url, pki.files['listed-1']))) throw new Error(`${name}: the listed certificate is not admitted`);
      const bundleFile = running.bundleFile!;
      const content = loadBundle(readFileSync(bundleFile)).content;
      const versions = [0, 1].map((i) =>
        serializeBundle({ ...content, apis: { ...content.apis, [BENCH_API_ID]: { ...content.apis[BENCH_API_ID], name: `bench reload version ${i}` } } }),
      );
      const digests = versions.map((v) => loadBundle(v).digest);
      const spec = { url, combinedPem: pki.files['listed-1'].combined, keepAlive: true, concurrency: ctx.opts.connections, scratchDir: ctx.dir('scratch') };
      await measure(running.proc.pid, { ...spec, durationS: 1 });
      const noReload = await measure(running.proc.pid, { ...spec, durationS: ctx.opts.durationS });
      const okBefore = await metricSum(running.adminUrl!, 'mtlsgate_bundle_reloads_total', { result: 'ok' });
      const failedBefore = await metricSum(running.adminUrl!, 'mtlsgate_bundle_reloads_total', { result: 'failed' });
      let written = 0;
      const writer = setInterval(() => {
        writeFileSync(`${bundleFile}.tmp`, versions[written % 2]);
        renameSync(`${bundleFile}.tmp`, bundleFile);
        written++;
      }, 1000);
      let reloadEverySecond: LoadResult;
      try {
        reloadEverySecond = await measure(running.proc.pid, { ...spec, durationS: ctx.opts.durationS });
      } finally {
        clearInterval(writer);
      }
      // Give the watcher time to take the last write before asking which version serves.
      await new Promise((r) => setTimeout(r, 1500));
      const lastVersionServed = JSON.stringify(await health(running.adminUrl!)).includes(digests[(written - 1) % 2].replace('sha256:', ''));
      const reloadsTaken = (await metricSum(running.adminUrl!, 'mtlsgate_bundle_reloads_total', { result: 'ok' })) - okBefore;
      const reloadsRefused = (await metricSum(running.adminUrl!, 'mtlsgate_bundle_reloads_total', { result: 'failed' })) - failedBefore;
      const run: ReloadRun = {
        bundle: name,
        keys: Object.keys(content.keys).length,
        noReload,
        reloadEverySecond,
        ratio: round(reloadEverySecond.rps / noReload.rps, 3),
        reloadsWritten: written,
        reloadsTaken,
        reloadsRefused,
        lastVersionServed,
        failedRequests: noReload.errors + reloadEverySecond.errors,
      };
      ctx.log(
        `  reload (${name}): ${noReload.rps} -> ${reloadEverySecond.rps} req/s (x${run.ratio}), ${written} written / ${reloadsTaken} taken / ${reloadsRefused} refused, failed requests ${run.failedRequests}, p99 ${noReload.p99Ms} -> ${reloadEverySecond.p99Ms} ms, max ${noReload.maxMs} -> ${reloadEverySecond.maxMs} ms, last version served: ${lastVersionServed}`,
      );
      runs.push(run);
    } finally {
      await running.proc.stop();
    }
  }
  return runs;
}
