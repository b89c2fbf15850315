// `serve --workers 2` against `--workers 1`, measured to resolve ~10% on a shared 2-core VM.
// bench/workers.ts starts a gateway per variant and round, so every figure includes a cold JIT
// (new connections deoptimise and re-optimise the stream code, in each worker: twice with two)
// and one round's noise. Here every variant's gateway starts once and stays up (all pinned on
// the server core, idle while another is measured), is warmed up until its JIT settles, and then
// short bursts alternate between the variants, round after round (the order reversed every other
// round), so that slow drifts of the machine hit every variant alike. Each round gives a W2/W1
// ratio per load; the median of the rounds' ratios, with their spread, is the result.
//   - saturation: ab -k at the same concurrency, CPU µs per request of the whole gateway tree;
//   - fixed rate: bench/peers/open-loop-client.ts at --rate (its 1 s warm-up at the same rate
//     is counted: the server served it);
//   - per process: the primary's own CPU, and the workers' non-main threads (GC helpers, the
//     libuv pool), so a difference can be placed.
// Lease counters (/metrics) are read once before the first and once after the last burst: a
// scrape makes the primary and the workers allocate, whose garbage would land in a burst.
// `--baseline DIR` adds variants served by DIR/dist/mtlsgate.mjs (a build of main before a change),
// measured in the same rounds: those of `--baseline-variants` (default 2l).
//   npm run build && node --import tsx bench/workers-alternate.ts [--rounds 8] [--seconds 4]
//     [--rate 3000] [--connections 16] [--warm 20] [--variants 1u,2u,1l,2l] [--baseline DIR [--baseline-variants 2l]]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { mtlsgateContender } from './contenders/mtlsgate.ts';
import type { Running } from './contenders/contender.ts';
import { standaloneContext } from './lib/context.ts';
import { runOpenLoop } from './lib/open-loop.ts';
import { benchPki } from './lib/pki.ts';
import { isAdmitted, probe } from './lib/probe.ts';
import { CORES, freePort, PINNING, processCpuSeconds, processTree, threadCpuSeconds, treeCounters } from './lib/proc.ts';
import { startUpstream } from './upstream.ts';
import { measureOnce, median, onServerCore } from './workloads/load.ts';
import { API_PATH } from './workloads/proxy.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    rate: { type: 'string' },
    connections: { type: 'string' },
    warm: { type: 'string' },
    variants: { type: 'string' },
    baseline: { type: 'string' },
    'baseline-variants': { type: 'string' },
  },
});
const rounds = Number(values.rounds ?? 8);
const seconds = Number(values.seconds ?? 4);
const rate = Number(values.rate ?? 3000);
const connections = Number(values.connections ?? 16);
const warmS = Number(values.warm ?? 20);
const root = join(import.meta.dirname, '..');
const ctx = standaloneContext(root, { seconds, rounds, connections });

interface Variant {
  /** "1u", "2l", "2l-base": workers, unlimited/limited, served by the baseline build. */
  id: string;
  workers: number;
  limited: boolean;
  baseline: boolean;
}
const variants: Variant[] = [];
for (const tag of (values.variants ?? '1u,2u,1l,2l').split(',')) {
  const m = /^([12])([ul])$/.exec(tag.trim());
  if (!m) throw new Error(`--variants: ${tag} is not one of 1u, 2u, 1l, 2l`);
  variants.push({ id: tag, workers: Number(m[1]), limited: m[2] === 'l', baseline: false });
  if (values.baseline && (values['baseline-variants'] ?? '2l').split(',').includes(tag.trim()))
    variants.push({ id: `${tag}-base`, workers: Number(m[1]), limited: m[2] === 'l', baseline: true });
}

interface Sample {
  /** Requests served in the burst. */
  n: number;
  us: number;
  rps: number;
  /** The primary's own CPU per request (µs), two workers only. */
  primaryUs: number | null;
  /** Non-main threads' CPU per request (µs) over the tree. */
  threadsUs: number;
  syscalls: number;
  ctx: number;
  otherLoad: number;
  clientCpu: number | null;
}
const samples = new Map<string, Sample[]>();
const add = (key: string, s: Sample) => samples.set(key, [...(samples.get(key) ?? []), s]);

function threadsCpu(root: number): number {
  let s = 0;
  for (const p of processTree(root)) s += threadCpuSeconds(p).others;
  return s;
}

async function leaseCounts(adminUrl: string): Promise<{ msgs: number; waits: number }> {
  const page = await (await fetch(`${adminUrl}/metrics`)).text();
  const sum = (name: string) =>
    page
      .split('\n')
      .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return { msgs: sum('mtlsgate_lease_messages_total'), waits: sum('mtlsgate_lease_waits_total') };
}

const pki = await benchPki(ctx.dir(), 'ec');
const listed = pki.files['listed-1'];
const upstream = await startUpstream(ctx);
const running = new Map<string, { v: Variant; g: Running; url: string }>();
console.log(
  `cores ${CORES}, pinned ${PINNING} (gateway trees on one core, load + upstream on the other), ${connections} keep-alive connections, ` +
    `${rounds} rounds of ${seconds} s bursts, fixed rate ${rate} req/s, ${warmS} s warm-up per gateway, variants ${variants.map((v) => v.id).join(' ')}`,
);

/** One saturation burst and one fixed-rate burst against variant `v`. */
async function burst(v: Variant, url: string, pid: number, record: boolean): Promise<string> {
  const spec = { url, combinedPem: listed.combined, keepAlive: true, concurrency: connections, scratchDir: ctx.dir('scratch'), durationS: seconds };
  const at = () => ({ c: treeCounters(pid), p: processCpuSeconds(pid), t: threadsCpu(pid) });
  const a = at();
  const sat = await measureOnce(pid, spec);
  const b = at();
  if (sat.errors > 0) throw new Error(`${v.id}: ${sat.errors} errors`);
  const fixed = await onServerCore(pid, () =>
    runOpenLoop({ root, tsNode: ctx.tsNode, url, cert: listed.cert, key: listed.key, rate, durationS: seconds, connections }),
  );
  const c = at();
  const ol = fixed.value;
  if (ol.errors > 0) throw new Error(`${v.id}: ${ol.errors} errors at ${rate} req/s`);
  const served = ol.sent + rate; // the client's 1 s warm-up is served too
  const sample = (
    cpuS: number,
    n: number,
    x: ReturnType<typeof at>,
    y: ReturnType<typeof at>,
    rps: number,
    otherLoad: number,
    clientCpu: number | null,
  ): Sample => ({
    n,
    us: (cpuS * 1e6) / n,
    rps,
    primaryUs: v.workers > 1 ? ((y.p - x.p) * 1e6) / n : null,
    threadsUs: ((y.t - x.t) * 1e6) / n,
    syscalls: (y.c.syscalls - x.c.syscalls) / n,
    ctx: (y.c.voluntary + y.c.involuntary - x.c.voluntary - x.c.involuntary) / n,
    otherLoad,
    clientCpu,
  });
  const s = sample((sat.serverUsPerRequest * sat.complete) / 1e6, sat.complete, a, b, sat.rps, sat.serverCoreOtherLoad, sat.clientCpu);
  const f = sample(fixed.serverCpuS, served, b, c, ol.achievedRps, fixed.otherLoad, ol.clientCpu);
  if (record) {
    add(`${v.id}|sat`, s);
    add(`${v.id}|fixed`, f);
  }
  return `saturation ${s.rps} req/s ${s.us.toFixed(1)} µs/req (other load ${s.otherLoad}); fixed ${f.rps} req/s ${f.us.toFixed(1)} µs/req (other load ${f.otherLoad})`;
}

const leases = new Map<string, { msgs: number; waits: number }>();
try {
  for (const v of variants) {
    const c = mtlsgateContender({
      mode: 'dynamic',
      keys: 0,
      limited: v.limited,
      id: `alt-${v.id}`,
      extraArgs: ['--workers', String(v.workers)],
      root: v.baseline ? values.baseline : undefined,
    });
    const port = await freePort();
    const g = await c.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', `alt-${v.id}`) });
    const url = `https://127.0.0.1:${port}${API_PATH}`;
    if (!isAdmitted(await probe(url, listed))) throw new Error(`${v.id}: the listed certificate is not admitted`);
    running.set(v.id, { v, g, url });
  }
  // Warm-up: each gateway sees new connections and both loads until its JIT has settled.
  for (const { v, g, url } of running.values()) {
    const deadline = Date.now() + warmS * 1000;
    while (Date.now() < deadline) console.log(`warm-up ${v.id}: ${await burst(v, url, g.proc.pid, false)}`);
  }
  for (const { v, g } of running.values()) if (v.workers > 1 && v.limited && g.adminUrl) leases.set(v.id, await leaseCounts(g.adminUrl));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [...running.values()] : [...running.values()].reverse();
    for (const { v, g, url } of order) console.log(`round ${round + 1} ${v.id}: ${await burst(v, url, g.proc.pid, true)}`);
  }
  for (const [id, before] of leases) {
    const after = await leaseCounts(running.get(id)!.g.adminUrl!);
    const n = ['sat', 'fixed'].reduce((a, l) => a + samples.get(`${id}|${l}`)!.reduce((x, s) => x + s.n, 0), 0);
    const msgs = after.msgs - before.msgs;
    const waits = after.waits - before.waits;
    console.log(
      `${id}: lease messages ${msgs} (${(msgs / n).toFixed(4)}/req), waits ${waits} (${(waits / n).toFixed(5)}/req) over ${n} requests in the measured bursts`,
    );
  }
} finally {
  for (const { g } of running.values()) await g.proc.stop();
  await upstream.proc.stop();
}

const fmt = (x: number | null, d = 1) => (x === null ? '-' : x.toFixed(d));
const med = (xs: Sample[], f: (s: Sample) => number | null) => {
  const ys = xs.map(f).filter((y): y is number => y !== null);
  return ys.length ? median(ys) : null;
};
console.log('\nmedian of rounds (µs/req: CPU of the gateway tree per request):');
for (const load of ['sat', 'fixed'] as const) {
  for (const v of variants) {
    const xs = samples.get(`${v.id}|${load}`)!;
    console.log(
      `  ${load === 'sat' ? 'saturation' : `fixed ${rate}/s`} ${v.id}: ${fmt(med(xs, (s) => s.us))} µs/req (${xs.map((s) => s.us.toFixed(0)).join(' ')}), ` +
        `${fmt(
          med(xs, (s) => s.rps),
          0,
        )} req/s, primary ${fmt(med(xs, (s) => s.primaryUs))}, other threads ${fmt(med(xs, (s) => s.threadsUs))}, ` +
        `syscalls ${fmt(
          med(xs, (s) => s.syscalls),
          2,
        )}, ctx switches ${fmt(
          med(xs, (s) => s.ctx),
          3,
        )}, other load on the core ${fmt(
          med(xs, (s) => s.otherLoad),
          3,
        )}, ` +
        `client CPU ${fmt(
          med(xs, (s) => s.clientCpu),
          2,
        )}`,
    );
  }
}
console.log('\nW2 / W1, round by round (same build, same key kind), and the median with the middle half of the rounds:');
for (const load of ['sat', 'fixed'] as const) {
  for (const v of variants.filter((x) => x.workers === 2)) {
    // A baseline W2 is compared with the baseline W1 when there is one, else with this build's.
    const one = samples.get(`${v.id.replace(/^2/, '1')}|${load}`) ?? samples.get(`${v.id.replace(/^2/, '1').replace(/-base$/, '')}|${load}`);
    if (!one) continue;
    const ratios = samples.get(`${v.id}|${load}`)!.map((s, i) => s.us / one[i].us);
    const sorted = [...ratios].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
    console.log(
      `  ${load === 'sat' ? 'saturation' : `fixed ${rate}/s`} ${v.id}: median ${median(ratios).toFixed(3)} (quartiles ${q(0.25).toFixed(2)}-${q(0.75).toFixed(2)}; ` +
        `rounds ${ratios.map((r) => r.toFixed(2)).join(' ')})`,
    );
  }
}
if (values.baseline) {
  console.log('\nthis build / the baseline, round by round (same variant):');
  for (const load of ['sat', 'fixed'] as const) {
    for (const v of variants.filter((x) => x.baseline)) {
      const base = samples.get(`${v.id}|${load}`)!;
      const ratios = samples.get(`${v.id.replace(/-base$/, '')}|${load}`)!.map((s, i) => s.us / base[i].us);
      console.log(
        `  ${load === 'sat' ? 'saturation' : `fixed ${rate}/s`} ${v.id.replace(/-base$/, '')}: median ${median(ratios).toFixed(3)} (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}); ` +
          `primary µs/req ${fmt(med(base, (s) => s.primaryUs))} -> ${fmt(med(samples.get(`${v.id.replace(/-base$/, '')}|${load}`)!, (s) => s.primaryUs))}`,
      );
    }
  }
}
