// `serve --workers 2` against `--workers 1`: server CPU microseconds per request (the whole
// process tree: primary and workers) under the same keep-alive ab load, for a key without limits
// and a limited key (limits never reached, so the limiter decides every request: in-process
// with one worker, leases from the primary with two). Rounds interleave the variants, so the
// drift of a shared machine hits them alike; the median round is reported.
//   npm run build && node --import tsx bench/workers.ts [--seconds 8] [--rounds 3] [--connections 16]
// The gateway is pinned like every bench contender (bench/lib/proc.ts: serve and its workers on
// one core, ab and the upstream on the other), so this compares CPU cost per request, not
// throughput on two cores.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { mtlsgateContender } from './contenders/mtlsgate.ts';
import { createContext } from './lib/context.ts';
import { benchPki } from './lib/pki.ts';
import { isAdmitted, probe } from './lib/probe.ts';
import { CORES, freePort, PINNING } from './lib/proc.ts';
import { startUpstream } from './upstream.ts';
import { measure } from './workloads/load.ts';
import { API_PATH } from './workloads/proxy.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, rounds: { type: 'string' }, connections: { type: 'string' } } });
const seconds = Number(values.seconds ?? 8);
const rounds = Number(values.rounds ?? 3);
const connections = Number(values.connections ?? 16);
const root = join(import.meta.dirname, '..');
const ctx = createContext(
  root,
  {
    quick: false,
    only: [],
    durationS: seconds,
    rounds,
    turnS: seconds,
    handshakeDurationS: seconds,
    connections,
    handshakeConnections: 16,
    contenders: [],
    algs: ['ec'],
    dynamicKeys: 0,
    compileApis: 0,
    compileKeys: 0,
    compileCrl: 0,
    scaleKeys: [],
  },
  (line) => console.log(line),
);

const variants = [
  { name: 'workers 1, unlimited', workers: 1, limited: false },
  { name: 'workers 2, unlimited', workers: 2, limited: false },
  { name: 'workers 1, limited', workers: 1, limited: true },
  { name: 'workers 2, limited', workers: 2, limited: true },
];
const results = new Map<string, Array<{ rps: number; us: number; other: number }>>();

const pki = await benchPki(ctx.dir(), 'ec');
const upstream = await startUpstream(ctx);
console.log(`cores ${CORES}, pinned ${PINNING}, ${connections} keep-alive connections, ${seconds} s per run, ${rounds} rounds`);
try {
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const c = mtlsgateContender({
        mode: 'dynamic',
        keys: 0,
        limited: v.limited,
        id: `workers-${v.workers}-${v.limited}`,
        extraArgs: ['--workers', String(v.workers)],
      });
      const port = await freePort();
      const running = await c.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', `workers-${v.workers}-${v.limited}`) });
      try {
        const url = `https://127.0.0.1:${port}${API_PATH}`;
        if (!isAdmitted(await probe(url, pki.files['listed-1']))) throw new Error(`${v.name}: the listed certificate is not admitted`);
        const spec = { url, combinedPem: pki.files['listed-1'].combined, keepAlive: true, concurrency: connections, scratchDir: ctx.dir('scratch') };
        await measure(running.proc.pid, { ...spec, durationS: 1 }); // warm-up
        const load = await measure(running.proc.pid, { ...spec, durationS: seconds });
        if (load.errors > 0) throw new Error(`${v.name}: ${load.errors} errors`);
        const row = { rps: load.rps, us: load.serverUsPerRequest, other: load.serverCoreOtherLoad };
        results.set(v.name, [...(results.get(v.name) ?? []), row]);
        console.log(`round ${round + 1} ${v.name}: ${row.rps} req/s, ${row.us} µs server CPU/request, foreign load on the server core ${row.other}`);
      } finally {
        await running.proc.stop();
      }
    }
  }
} finally {
  await upstream.proc.stop();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('\nmedian of rounds:');
for (const v of variants) {
  const rows = results.get(v.name)!;
  console.log(`  ${v.name}: ${median(rows.map((r) => r.rps))} req/s, ${median(rows.map((r) => r.us))} µs/request`);
}
for (const limited of [false, true]) {
  const one = median(results.get(`workers 1, ${limited ? 'limited' : 'unlimited'}`)!.map((r) => r.us));
  const two = median(results.get(`workers 2, ${limited ? 'limited' : 'unlimited'}`)!.map((r) => r.us));
  console.log(`  ${limited ? 'limited' : 'unlimited'}: --workers 2 / --workers 1 server CPU per request = ${(two / one).toFixed(3)}`);
}
