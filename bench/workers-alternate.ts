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
// Placement (bench/lib/placement.ts), per variant as `2u@split`, else `--placement` (core0):
//   core0: the gateway tree on core 0, load + upstream on core 1 (both variants on one core);
//   split: two workers each on its own core, one process on core 0; load + upstream on every core;
//   free:  nothing pinned. Every W2 variant is compared with every W1 variant of the same key kind,
//   so `--variants 1u@free,2u@split,2u@free --loads fixed` compares the deployment placements.
// A `/2` suffix (`1u@split/2`) serves the fixed load at half the rate: what each of two workers
// sees of the full rate, so `2u@split / 1u@split/2` is the cost of two workers at the same load
// per process (the rest of W2/W1 at a fixed rate is each process batching less of a thinner load).
//   npm run build && node --import tsx bench/workers-alternate.ts [--rounds 8] [--seconds 4]
//     [--rate 3000] [--connections 16] [--warm 20] [--variants 1u,2u,1l,2l] [--placement core0]
//     [--loads sat,fixed] [--baseline DIR [--baseline-variants 2l]]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { mtlsgateContender } from './contenders/mtlsgate.ts';
import type { Running } from './contenders/contender.ts';
import { standaloneContext } from './lib/context.ts';
import { loadCores, placeGateway, placeUpstream, type Placement, PLACEMENTS, watchedCores } from './lib/placement.ts';
import { runOpenLoop } from './lib/open-loop.ts';
import { benchPki } from './lib/pki.ts';
import { isAdmitted, probe } from './lib/probe.ts';
import { CORES, PINNING, processCpuSeconds, processTree, threadCpuSeconds, treeCounters } from './lib/proc.ts';
import { freePort } from '../common/listen.ts';
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
    placement: { type: 'string' },
    loads: { type: 'string' },
    baseline: { type: 'string' },
    'baseline-variants': { type: 'string' },
  },
});
const rounds = Number(values.rounds ?? 8);
const seconds = Number(values.seconds ?? 4);
const rate = Number(values.rate ?? 3000);
const connections = Number(values.connections ?? 16);
const warmS = Number(values.warm ?? 20);
const loads = (values.loads ?? 'sat,fixed').split(',').map((l) => l.trim());
for (const l of loads) if (l !== 'sat' && l !== 'fixed') throw new Error(`--loads: ${l} is not sat or fixed`);
const defaultPlacement = (values.placement ?? 'core0') as Placement;
if (!PLACEMENTS.includes(defaultPlacement)) throw new Error(`--placement: one of ${PLACEMENTS.join(', ')}`);
const root = join(import.meta.dirname, '..');
const ctx = standaloneContext(root, { seconds, rounds, connections });

interface Variant {
  /** "1u@core0", "2l@split", "2l@core0-base": workers, unlimited/limited, placement, served by the baseline build. */
  id: string;
  workers: number;
  limited: boolean;
  placement: Placement;
  /** The fixed load's rate for this variant (`/2`: half of --rate). */
  rate: number;
  baseline: boolean;
}
const variants: Variant[] = [];
for (const raw of (values.variants ?? '1u,2u,1l,2l').split(',')) {
  const m = /^([12])([ul])(?:@(\w+))?(\/2)?$/.exec(raw.trim());
  if (!m) throw new Error(`--variants: ${raw} is not one of 1u, 2u, 1l, 2l (optionally @${PLACEMENTS.join('|@')})`);
  const placement = (m[3] ?? defaultPlacement) as Placement;
  if (!PLACEMENTS.includes(placement)) throw new Error(`--variants: ${raw}: placement one of ${PLACEMENTS.join(', ')}`);
  const tag = `${m[1]}${m[2]}@${placement}${m[4] ?? ''}`;
  const base = { workers: Number(m[1]), limited: m[2] === 'l', placement, rate: m[4] ? rate / 2 : rate };
  variants.push({ id: tag, ...base, baseline: false });
  if (values.baseline && (values['baseline-variants'] ?? '2l').split(',').includes(`${m[1]}${m[2]}`))
    variants.push({ id: `${tag}-base`, ...base, baseline: true });
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
  `cores ${CORES}, pinning ${PINNING} (placements: core0 = gateway tree on core 0, load + upstream on core 1; ` +
    `split = each worker on its own core, primary free, one process on core 0, load + upstream free; free = nothing pinned), ` +
    `${connections} keep-alive connections, ${rounds} rounds of ${seconds} s bursts, loads ${loads.join('+')}, fixed rate ${rate} req/s, ` +
    `${warmS} s warm-up per gateway, variants ${variants.map((v) => v.id).join(' ')}`,
);

/** One saturation burst and/or one fixed-rate burst (`--loads`) against variant `v`. */
async function burst(v: Variant, url: string, pid: number, record: boolean): Promise<string> {
  placeUpstream(upstream.proc.pid, v.placement);
  const cores = loadCores(v.placement);
  const watched = watchedCores(v.placement);
  const spec = {
    url,
    combinedPem: listed.combined,
    keepAlive: true,
    concurrency: connections,
    scratchDir: ctx.dir('scratch'),
    durationS: seconds,
    cores,
    serverCores: watched,
  };
  const at = () => ({ c: treeCounters(pid), p: processCpuSeconds(pid), t: threadsCpu(pid) });
  const out: string[] = [];
  const a = at();
  const sat = loads.includes('sat') ? await measureOnce(pid, spec) : null;
  const b = at();
  if (sat && sat.errors > 0) throw new Error(`${v.id}: ${sat.errors} errors`);
  const fixed = loads.includes('fixed')
    ? await onServerCore(
        pid,
        () => runOpenLoop({ root, tsNode: ctx.tsNode, url, cert: listed.cert, key: listed.key, rate: v.rate, durationS: seconds, connections, cores }),
        watched,
      )
    : null;
  const c = at();
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
  if (sat) {
    const s = sample((sat.serverUsPerRequest * sat.complete) / 1e6, sat.complete, a, b, sat.rps, sat.serverCoreOtherLoad, sat.clientCpu);
    if (record) add(`${v.id}|sat`, s);
    out.push(`saturation ${s.rps} req/s ${s.us.toFixed(1)} µs/req (other load ${s.otherLoad})`);
  }
  if (fixed) {
    const ol = fixed.value;
    if (ol.errors > 0) throw new Error(`${v.id}: ${ol.errors} errors at ${v.rate} req/s`);
    const served = ol.sent + v.rate; // the client's 1 s warm-up is served too
    const f = sample(fixed.serverCpuS, served, b, c, ol.achievedRps, fixed.otherLoad, ol.clientCpu);
    if (record) add(`${v.id}|fixed`, f);
    out.push(`fixed ${f.rps} req/s ${f.us.toFixed(1)} µs/req (other load ${f.otherLoad})`);
  }
  return out.join('; ');
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
    console.log(`${v.id}: placed (pid:allowed cores, primary first) ${placeGateway(g.proc.pid, v.placement)}`);
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
    const n = loads.reduce((a, l) => a + samples.get(`${id}|${l}`)!.reduce((x, s) => x + s.n, 0), 0);
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
console.log(
  '\nmedian of rounds (µs/req: CPU of the gateway tree per request; other load: the rest of the watched cores, ' +
    'in cores: core0 watches core 0, split and free watch every core, so there it includes the load generator and the upstream):',
);
for (const load of loads) {
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
console.log(
  '\nW2 / W1, round by round (same key kind; each W2 against each W1 of its build, or of this build), the median with the middle half of the rounds:',
);
for (const load of loads) {
  for (const v of variants.filter((x) => x.workers === 2)) {
    const sameKind = variants.filter((x) => x.workers === 1 && x.limited === v.limited);
    const ones = sameKind.some((x) => x.baseline === v.baseline) ? sameKind.filter((x) => x.baseline === v.baseline) : sameKind.filter((x) => !x.baseline);
    for (const w1 of ones) {
      const one = samples.get(`${w1.id}|${load}`)!;
      const ratios = samples.get(`${v.id}|${load}`)!.map((s, i) => s.us / one[i].us);
      const sorted = [...ratios].sort((a, b) => a - b);
      const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
      console.log(
        `  ${load === 'sat' ? 'saturation' : `fixed ${rate}/s`} ${v.id} / ${w1.id}: median ${median(ratios).toFixed(3)} (quartiles ${q(0.25).toFixed(2)}-${q(0.75).toFixed(2)}; ` +
          `rounds ${ratios.map((r) => r.toFixed(2)).join(' ')})`,
      );
    }
  }
}
if (values.baseline) {
  console.log('\nthis build / the baseline, round by round (same variant):');
  for (const load of loads) {
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
