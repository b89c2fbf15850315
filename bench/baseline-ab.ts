// Keep-alive through this build against a baseline build (`--baseline DIR`: another checkout,
// built, whose dist/mtlsgate.mjs serves; the bundle is compiled by this one), static mTLS with
// the listed client certificate, both gateways up at once on the server core and measured in
// short alternating turns (the order reversed every other round), so that the drift of a shared
// VM hits both alike. Server CPU µs per request, per round and the median of the rounds' new/base
// ratios with their spread. HTTP/2: bench/peers/h2-load-client.ts, 4 connections x 16 streams
// (its core is the ceiling: compare µs/req, not req/s); --h1: ab -k, 64 connections.
//   npm run build && node --import tsx bench/baseline-ab.ts --baseline ../main [--h1]
//     [--rounds 8] [--seconds 3] [--extra "--log-level warn"]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mtlsgateContender } from './contenders/mtlsgate.ts';
import { standaloneContext } from './lib/context.ts';
import { benchPki } from './lib/pki.ts';
import { CLIENT_CORE, runPinned } from './lib/proc.ts';
import { freePort } from '../common/listen.ts';
import { startUpstream } from './upstream.ts';
import { measure, onServerCore } from './workloads/load.ts';
import { API_PATH } from './workloads/proxy.ts';

const { values } = parseArgs({
  options: { h1: { type: 'boolean' }, baseline: { type: 'string' }, rounds: { type: 'string' }, seconds: { type: 'string' }, extra: { type: 'string' } },
});
const root = join(import.meta.dirname, '..');
if (values.baseline === undefined) throw new Error('--baseline DIR: a checkout of the baseline, built (npm run build)');
const rounds = Number(values.rounds ?? 8);
const seconds = Number(values.seconds ?? 3);
const extra = values.extra ? values.extra.split(' ') : ['--log-level', 'warn'];
const ctx = standaloneContext(root, { seconds, rounds, connections: 64 });
const upstream = await startUpstream(ctx);
const pki = await benchPki(ctx.dir(), 'ec');
const listed = pki.files['listed-1'];
const variants = [
  { name: 'base', c: mtlsgateContender({ mode: 'static', id: 'ab-base', extraArgs: extra, root: values.baseline }) },
  { name: 'new', c: mtlsgateContender({ mode: 'static', id: 'ab-new', extraArgs: extra }) },
];
const running: Array<
  (typeof variants)[number] & { port: number; r: Awaited<ReturnType<(typeof variants)[number]['c']['start']>>; us: number[]; rps: number[] }
> = [];
for (const v of variants) {
  const port = await freePort();
  const r = await v.c.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', `baseline-ab-${v.name}`) });
  running.push({ ...v, port, r, us: [] as number[], rps: [] as number[] });
}
const turn = async (x: (typeof running)[number], s: number) => {
  const url = `https://127.0.0.1:${x.port}${API_PATH}`;
  if (values.h1) {
    const m = await measure(x.r.proc.pid, {
      url,
      combinedPem: listed.combined,
      scratchDir: ctx.dir('scratch'),
      keepAlive: true,
      concurrency: 64,
      durationS: s,
    });
    return { us: m.serverUsPerRequest, rps: m.rps, errors: m.errors, other: m.serverCoreOtherLoad };
  }
  const w = await onServerCore(x.r.proc.pid, () =>
    runPinned(
      CLIENT_CORE,
      process.execPath,
      [...ctx.tsNode, join(root, 'bench/peers/h2-load-client.ts'), url, listed.cert, listed.key, String(s), '4', '16'],
      (s + 60) * 1000,
      { cwd: root },
    ),
  );
  const out = JSON.parse(w.value.stdout.trim().split('\n').pop()!) as { complete: number; rps: number; errors: number };
  return { us: (w.serverCpuS * 1e6) / out.complete, rps: out.rps, errors: out.errors, other: w.otherLoad };
};
try {
  for (const x of running) await turn(x, 4); // warm-up
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? running : [...running].reverse();
    const got: Record<string, number> = {};
    for (const x of order) {
      const t = await turn(x, seconds);
      x.us.push(t.us);
      x.rps.push(t.rps);
      got[x.name] = t.us;
      console.log(`round ${r + 1} ${x.name}: ${Math.round(t.rps)} req/s, ${t.us.toFixed(1)} µs/req server CPU, errors ${t.errors}, other load ${t.other}`);
    }
    ratios.push(got.new / got.base);
  }
  const med = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  for (const x of running) console.log(`${x.name}: median ${med(x.us).toFixed(1)} µs/req, ${Math.round(med(x.rps))} req/s`);
  console.log(`new/base per-round ratio: median ${med(ratios).toFixed(3)}, min ${Math.min(...ratios).toFixed(3)}, max ${Math.max(...ratios).toFixed(3)}`);
} finally {
  for (const x of running) await x.r.proc.stop();
  await upstream.proc.stop();
}
process.exit(0);
