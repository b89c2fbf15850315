// The first one-key change after start, over several starts (the shards bench makes one per
// run), with the builds alternated start by start (their order reversed every other start) so
// that the VM's drift hits every build alike.
// Each start: `serve --bundle DIR` of N synthetic keys (as the shards bench), the first answer
// (ready), then at once a one-key change (changed shard + manifest written -> /health reports
// it), then CHANGES more with a pause between, as the shards bench's idle changes; each reload's
// `stall_ms` and `loop_delay_ms` from the gateway's log.
//   npm run build && node --import tsx bench/first-change.ts [--keys 100000] [--starts 4]
//     [--builds dist/mtlsgate.mjs,/work/main/dist/mtlsgate.mjs] [--changes 6] [--delay-ms 0]
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadBundle } from '../bundle/read.ts';
import { autoShardCount } from '../bundle/shard-of.ts';
import { buildGatewayBundle, withSyntheticKeys } from './bundles.ts';
import { standaloneContext } from './lib/context.ts';
import { benchPki, LISTED_CLIENTS } from './lib/pki.ts';
import { isAdmitted, probe } from './lib/probe.ts';
import { serveCommand } from './lib/serve-command.ts';
import { memKiB, SERVER_CORE, startProc, waitForPort } from './lib/proc.ts';
import { freePort } from '../common/listen.ts';
import { startUpstream } from './upstream.ts';
import { median, round } from './workloads/load.ts';
import { API_PATH } from './workloads/proxy.ts';
import { reloadCosts, version, waitDigest, withInactive, writeVersion } from './workloads/shard-reload.ts';

const { values } = parseArgs({
  options: { keys: { type: 'string' }, starts: { type: 'string' }, builds: { type: 'string' }, changes: { type: 'string' }, 'delay-ms': { type: 'string' } },
});
const keys = Number(values.keys ?? 100_000);
const starts = Number(values.starts ?? 4);
const changes = Number(values.changes ?? 6);
const delayMs = Number(values['delay-ms'] ?? 0);
const root = join(import.meta.dirname, '..');
const builds = (values.builds ?? 'dist/mtlsgate.mjs').split(',').map((b) => resolve(b.trim()));
const ctx = standaloneContext(root, { seconds: 1, rounds: 1, connections: 1 });

interface Start {
  readyMs: number;
  rssMiB: number;
  firstMs: number;
  laterMs: number[];
  stalls: number[];
  loopDelays: number[];
}

const upstream = await startUpstream(ctx);
try {
  const pki = await benchPki(ctx.dir(), 'ec');
  const work = ctx.dir('first-change');
  const small = join(work, 'initial.json');
  await buildGatewayBundle(ctx, pki, upstream.url, 'dynamic', 0, small);
  const content = withSyntheticKeys(loadBundle(readFileSync(small)).content, LISTED_CLIENTS[0], keys);
  const a = version(content, autoShardCount(keys));
  const b = withInactive(a, 'synthetic-000001');
  const results = new Map<string, Start[]>(builds.map((x) => [x, []]));
  for (let s = 0; s < starts; s++) {
    const order = s % 2 === 0 ? builds : [...builds].reverse();
    for (const build of order) {
      const dir = join(work, `bundle-${keys}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(join(dir, 'shards'), { recursive: true });
      const have = new Set<string>();
      writeVersion(dir, a, have);
      const port = await freePort();
      const admin = await freePort();
      const logFile = join(work, `serve-${s}-${builds.indexOf(build)}.log`);
      const args = serveCommand(root, dir, pki, port, admin);
      args[args.indexOf(join(root, 'dist/mtlsgate.mjs'))] = build;
      const t0 = performance.now();
      const proc = startProc(`serve-${s}`, SERVER_CORE, process.execPath, args, { logFile });
      const adminUrl = `http://127.0.0.1:${admin}`;
      try {
        await waitForPort(port, proc, 180_000);
        if (!isAdmitted(await probe(`https://127.0.0.1:${port}${API_PATH}`, pki.files['listed-1']))) throw new Error('not admitted');
        const readyMs = performance.now() - t0;
        const rssMiB = Math.round(memKiB(proc.pid, 'VmRSS') / 1024);
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        const logAt = statSync(logFile).size;
        const lat: number[] = [];
        for (let i = 0; i <= changes; i++) {
          const next = i % 2 === 0 ? b : a;
          writeVersion(dir, next, have);
          lat.push((await waitDigest(adminUrl, next.digest, 30_000)) ?? Number.NaN);
          await new Promise((r) => setTimeout(r, 300));
        }
        const costs = reloadCosts(logFile, logAt);
        const one: Start = {
          readyMs: Math.round(readyMs),
          rssMiB,
          firstMs: round(lat[0], 1),
          laterMs: lat.slice(1).map((x) => round(x, 1)),
          stalls: costs.map((c) => c.stallMs),
          loopDelays: costs.map((c) => c.loopDelayMs),
        };
        results.get(build)!.push(one);
        console.log(
          `${build} start ${s}: ready ${one.readyMs} ms, RSS ${rssMiB} MiB, first change ${one.firstMs} ms, later ${one.laterMs.join(' ')}; stall ${one.stalls.join(' ')}; loop delay ${one.loopDelays.join(' ')}`,
        );
      } finally {
        await proc.stop();
      }
    }
  }
  for (const [build, rs] of results) {
    const later = rs.flatMap((r) => r.laterMs);
    console.log(
      `${build}: ${keys} keys, ${rs.length} starts: ready median ${Math.round(median(rs.map((r) => r.readyMs)))} ms (${rs.map((r) => r.readyMs).join(', ')}); ` +
        `first change median ${round(median(rs.map((r) => r.firstMs)), 1)} ms (${rs.map((r) => r.firstMs).join(', ')}); later median ${round(median(later), 1)} worst ${Math.max(...later)} ms; ` +
        `stall of the first reload ${rs.map((r) => r.stalls[0]).join(', ')} ms, max over all ${Math.max(...rs.flatMap((r) => r.stalls))} ms; loop delay max ${Math.max(...rs.flatMap((r) => r.loopDelays))} ms`,
    );
  }
} finally {
  await upstream.proc.stop();
}
