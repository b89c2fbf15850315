// `serve --workers 2` against `--workers 1`: server work per request, measured so that it is fair
// on a 2-core machine where the load generator and the upstream need a core too. The gateway's
// whole process tree (primary and workers) is pinned on one core, the load and the upstream on
// the other, so both variants have the same CPU budget; for each, one keep-alive load:
//   - at saturation (ab, the same concurrency): CPU µs per request. Two processes sharing a core
//     each get a smaller batch per event-loop turn and evict each other's caches, which inflates
//     CPU per request by itself; this figure includes that.
//   - at a fixed offered rate below both saturations (bench/peers/open-loop-client.ts): the same
//     requests per second for both, so CPU µs per request compares the work per request.
//   - counters that do not depend on how busy the machine is, over the process tree: read/write
//     system calls and context switches per request.
// Variants: a key without limits, and a limited key (limits never reached, so the limiter decides
// every request: in-process with one worker, leases from the primary with two). Rounds
// interleave the variants; the median round is reported, with --workers 2 / --workers 1 ratios,
// and the load generators' own CPU (a client near 100% of its core is the ceiling, not the server).
// With two workers and a limited key, the lease messages per request are read from /metrics
// (mtlsgate_lease_messages_total, mtlsgate_lease_waits_total) and the primary's own CPU per
// request from /proc. `--baseline DIR` adds a variant: --workers 2, limited, served by
// DIR/dist/mtlsgate.mjs (another build, e.g. main before a change), interleaved with the rest.
// Instruction counts per request (callgrind, independent of scheduling) take minutes per variant
// under valgrind: bench/workers-callgrind.sh, by hand.
//   npm run build && node --import tsx bench/workers.ts [--seconds 8] [--rounds 3] [--connections 16] [--rate 3000] [--baseline DIR]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { mtlsgateContender } from './contenders/mtlsgate.ts';
import { standaloneContext } from './lib/context.ts';
import { runOpenLoop } from './lib/open-loop.ts';
import { benchPki } from './lib/pki.ts';
import { isAdmitted, probe } from './lib/probe.ts';
import { CORES, PINNING, processCpuSeconds, treeCounters } from './lib/proc.ts';
import { freePort } from '../common/listen.ts';
import { startUpstream } from './upstream.ts';
import { measure, median, onServerCore } from './workloads/load.ts';
import { API_PATH } from './workloads/proxy.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, rounds: { type: 'string' }, connections: { type: 'string' }, rate: { type: 'string' }, baseline: { type: 'string' } },
});
const seconds = Number(values.seconds ?? 8);
const rounds = Number(values.rounds ?? 3);
const connections = Number(values.connections ?? 16);
const rate = Number(values.rate ?? 3000);
const root = join(import.meta.dirname, '..');
const ctx = standaloneContext(root, { seconds, rounds, connections });

interface Variant {
  workers: number;
  limited: boolean;
  baseline?: boolean;
}
const variants: Variant[] = [
  { workers: 1, limited: false },
  { workers: 2, limited: false },
  { workers: 1, limited: true },
  { workers: 2, limited: true },
];
if (values.baseline) variants.push({ workers: 2, limited: true, baseline: true });
const nameOf = (workers: number, limited: boolean, baseline = false) =>
  `workers ${workers}, ${limited ? 'limited' : 'unlimited'}${baseline ? ' (baseline)' : ''}`;

interface Row {
  rps: number;
  us: number;
  syscalls: number;
  vcs: number;
  ivcs: number;
  clientCpu: number | null;
  /** The primary's own CPU per request (µs; two workers only). */
  primaryUs: number | null;
  /** Lease messages (sent + received by the workers) per request, and requests that waited. */
  leaseMsgs: number | null;
  leaseWaits: number | null;
}
const results = new Map<string, Row[]>();
const add = (key: string, row: Row) => results.set(key, [...(results.get(key) ?? []), row]);
const per = (n: number, requests: number) => Math.round((n / requests) * 1000) / 1000;

/** The sum of every sample of `name` in a Prometheus text page (null when absent). */
function metricSum(page: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of page.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function leaseCounts(adminUrl: string): Promise<{ msgs: number | null; waits: number | null }> {
  const page = await (await fetch(`${adminUrl}/metrics`)).text();
  return { msgs: metricSum(page, 'mtlsgate_lease_messages_total'), waits: metricSum(page, 'mtlsgate_lease_waits_total') };
}

interface Counted<T> {
  value: T;
  syscalls: number;
  vcs: number;
  ivcs: number;
  primaryCpuS: number;
  leaseMsgs: number | null;
  leaseWaits: number | null;
}

/** Runs `load` while counting the server tree's system calls and context switches, the root
 *  process's CPU, and (with an admin URL) the lease counters. */
async function counted<T>(pid: number, adminUrl: string | null, load: () => Promise<T>): Promise<Counted<T>> {
  const la = adminUrl === null ? null : await leaseCounts(adminUrl);
  const a = treeCounters(pid);
  const pa = processCpuSeconds(pid);
  const value = await load();
  const b = treeCounters(pid);
  const pb = processCpuSeconds(pid);
  const lb = adminUrl === null ? null : await leaseCounts(adminUrl);
  const diff = (x: number | null | undefined, y: number | null | undefined) => (x == null || y == null ? null : y - x);
  return {
    value,
    syscalls: b.syscalls - a.syscalls,
    vcs: b.voluntary - a.voluntary,
    ivcs: b.involuntary - a.involuntary,
    primaryCpuS: pb - pa,
    leaseMsgs: diff(la?.msgs, lb?.msgs),
    leaseWaits: diff(la?.waits, lb?.waits),
  };
}

const pki = await benchPki(ctx.dir(), 'ec');
const upstream = await startUpstream(ctx);
console.log(
  `cores ${CORES}, pinned ${PINNING} (gateway tree on one core, load + upstream on the other), ${connections} keep-alive connections, ` +
    `${seconds} s per run, fixed rate ${rate} req/s, ${rounds} rounds`,
);
try {
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const name = nameOf(v.workers, v.limited, v.baseline);
      const id = `workers-${v.workers}-${v.limited}${v.baseline ? '-baseline' : ''}`;
      const c = mtlsgateContender({
        mode: 'dynamic',
        keys: 0,
        limited: v.limited,
        id,
        extraArgs: ['--workers', String(v.workers)],
        root: v.baseline ? values.baseline : undefined,
      });
      const port = await freePort();
      const running = await c.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', id) });
      const pid = running.proc.pid;
      try {
        const url = `https://127.0.0.1:${port}${API_PATH}`;
        if (!isAdmitted(await probe(url, pki.files['listed-1']))) throw new Error(`${name}: the listed certificate is not admitted`);
        const spec = { url, combinedPem: pki.files['listed-1'].combined, keepAlive: true, concurrency: connections, scratchDir: ctx.dir('scratch') };
        await measure(pid, { ...spec, durationS: 2 }); // warm-up (JIT)

        const admin = v.workers > 1 && v.limited ? (running.adminUrl ?? null) : null;
        const perReq = (x: number | null, n: number) => (x === null ? null : per(x, n));
        const sat = await counted(pid, admin, () => measure(pid, { ...spec, durationS: seconds }));
        if (sat.value.errors > 0) throw new Error(`${name}: ${sat.value.errors} errors`);
        const n = sat.value.complete;
        const s: Row = {
          rps: sat.value.rps,
          us: sat.value.serverUsPerRequest,
          syscalls: per(sat.syscalls, n),
          vcs: per(sat.vcs, n),
          ivcs: per(sat.ivcs, n),
          clientCpu: sat.value.clientCpu,
          primaryUs: v.workers > 1 ? Math.round((sat.primaryCpuS * 1e6) / n) : null,
          leaseMsgs: perReq(sat.leaseMsgs, n),
          leaseWaits: perReq(sat.leaseWaits, n),
        };
        add(`${name}|saturation`, s);

        const listed = pki.files['listed-1'];
        const fixed = await counted(pid, admin, () =>
          onServerCore(pid, () => runOpenLoop({ root, tsNode: ctx.tsNode, url, cert: listed.cert, key: listed.key, rate, durationS: seconds, connections })),
        );
        const ol = fixed.value.value;
        if (ol.errors > 0) throw new Error(`${name}: ${ol.errors} errors at ${rate} req/s`);
        // The client's first second (the same rate) warms its connections: those requests cost
        // the server CPU too, so they are counted.
        const served = ol.sent + rate;
        const f: Row = {
          rps: ol.achievedRps,
          us: Math.round((fixed.value.serverCpuS * 1e6) / served),
          syscalls: per(fixed.syscalls, served),
          vcs: per(fixed.vcs, served),
          ivcs: per(fixed.ivcs, served),
          clientCpu: ol.clientCpu,
          primaryUs: v.workers > 1 ? Math.round((fixed.primaryCpuS * 1e6) / served) : null,
          leaseMsgs: perReq(fixed.leaseMsgs, served),
          leaseWaits: perReq(fixed.leaseWaits, served),
        };
        add(`${name}|fixed`, f);
        console.log(
          `round ${round + 1} ${name}: saturation ${s.rps} req/s ${s.us} µs/req (primary ${s.primaryUs}, lease msgs ${s.leaseMsgs} waits ${s.leaseWaits}, syscalls ${s.syscalls}, ctx ${s.vcs}+${s.ivcs}, ab CPU ${s.clientCpu}); ` +
            `fixed ${rate} req/s: achieved ${f.rps}, ${f.us} µs/req (primary ${f.primaryUs}, lease msgs ${f.leaseMsgs} waits ${f.leaseWaits}, syscalls ${f.syscalls}, ctx ${f.vcs}+${f.ivcs}, client CPU ${f.clientCpu}, p99 ${ol.p99Ms} ms)`,
        );
      } finally {
        await running.proc.stop();
      }
    }
  }
} finally {
  await upstream.proc.stop();
}

const med = (key: string, f: (r: Row) => number | null) => {
  const xs = results
    .get(key)!
    .map(f)
    .filter((x): x is number => x !== null);
  return xs.length ? Math.round(median(xs) * 1000) / 1000 : null;
};
console.log('\nmedian of rounds (µs/req = server tree CPU per request; syscalls and context switches per request):');
for (const load of ['saturation', 'fixed'] as const) {
  for (const v of variants) {
    const key = `${nameOf(v.workers, v.limited, v.baseline)}|${load}`;
    console.log(
      `  ${load === 'fixed' ? `fixed ${rate} req/s` : 'saturation'}, ${nameOf(v.workers, v.limited, v.baseline)}: ${med(key, (r) => r.rps)} req/s, ` +
        `${med(key, (r) => r.us)} µs/req (all ${results
          .get(key)!
          .map((r) => r.us)
          .join(', ')}), primary ${med(key, (r) => r.primaryUs)} µs/req, ` +
        `lease messages ${med(key, (r) => r.leaseMsgs)}/req, waits ${med(key, (r) => r.leaseWaits)}/req, syscalls ${med(key, (r) => r.syscalls)}, ctx ${med(key, (r) => r.vcs)} voluntary + ` +
        `${med(key, (r) => r.ivcs)} involuntary, load generator CPU ${med(key, (r) => r.clientCpu)} of its core`,
    );
  }
}
console.log('\n--workers 2 / --workers 1 (median rounds):');
for (const load of ['saturation', 'fixed'] as const) {
  for (const [limited, baseline] of values.baseline
    ? [
        [false, false],
        [true, false],
        [true, true],
      ]
    : [
        [false, false],
        [true, false],
      ]) {
    const one = `${nameOf(1, limited)}|${load}`;
    const two = `${nameOf(2, limited, baseline)}|${load}`;
    const ratio = (f: (r: Row) => number) => ((med(two, f) ?? 0) / (med(one, f) ?? 1)).toFixed(3);
    // The same ratio round by round (both variants ran minutes apart in one round), then its median.
    const ones = results.get(one)!;
    const paired = results
      .get(two)!
      .map((r, i) => r.us / ones[i].us)
      .filter((x) => Number.isFinite(x));
    console.log(
      `  ${load === 'fixed' ? `fixed ${rate} req/s` : 'saturation'}, ${limited ? 'limited' : 'unlimited'}${baseline ? ' (baseline)' : ''}: CPU/req ${ratio((r) => r.us)}, ` +
        `per round ${paired.map((x) => x.toFixed(2)).join(', ')} (median ${median(paired).toFixed(3)}), ` +
        `syscalls/req ${ratio((r) => r.syscalls)}, context switches/req ${ratio((r) => r.vcs + r.ivcs)}`,
    );
  }
}
