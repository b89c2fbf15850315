// Where `--workers 2` spends CPU that `--workers 1` does not: `perf record -e cpu-clock` (a
// software clock: works on a VM without hardware counters) on the server core while each variant
// serves a load, kernel and user space, with V8's perf map for JavaScript frames
// (NODE_OPTIONS=--perf-basic-prof, set here for the gateways only). Prints, per variant and load,
// the samples per 1,000 requests by process kind and by shared object, and the top symbols, so a
// function whose cost per request grows with two workers stands out.
// A variant may name its placement (bench/lib/placement.ts): `2u@split` puts each worker on its own
// core and the load on every core; then every core is recorded (perf -a) and samples are counted
// by process, so the load generator's and the upstream's samples are "other processes".
//   npm run build && node --import tsx bench/workers-perf.ts [--seconds 8] [--warm 30] [--rate 3000] [--variants 1u,2u]
//     [--loads sat,fixed]
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mtlsgateContender } from './contenders/mtlsgate.ts';
import type { Running } from './contenders/contender.ts';
import { standaloneContext } from './lib/context.ts';
import { runOpenLoop } from './lib/open-loop.ts';
import { benchPki } from './lib/pki.ts';
import { loadCores, placeGateway, placeUpstream, type Placement, PLACEMENTS } from './lib/placement.ts';
import { processTree, SERVER_CORE } from './lib/proc.ts';
import { freePort } from '../common/listen.ts';
import { startUpstream } from './upstream.ts';
import { measureOnce } from './workloads/load.ts';
import { API_PATH } from './workloads/proxy.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    warm: { type: 'string' },
    rate: { type: 'string' },
    variants: { type: 'string' },
    top: { type: 'string' },
    callers: { type: 'string' },
    loads: { type: 'string' },
  },
});
const seconds = Number(values.seconds ?? 8);
const warmS = Number(values.warm ?? 30);
const rate = Number(values.rate ?? 3000);
const top = Number(values.top ?? 25);
const loads = (values.loads ?? 'sat,fixed').split(',');
/** With --callers REGEX, call chains are recorded (frame pointers: V8's JIT code keeps them) and
 *  the JavaScript functions under the samples whose symbol matches are listed. */
const callers = values.callers ? new RegExp(values.callers) : null;
const root = join(import.meta.dirname, '..');
const ctx = standaloneContext(root, { seconds, rounds: 1, connections: 16 });
const pki = await benchPki(ctx.dir(), 'ec');
const listed = pki.files['listed-1'];
const upstream = await startUpstream(ctx);
const out = ctx.dir('perf');

/** Records the server core (every core for a gateway not confined to it) while `load` runs; the perf.data path. */
async function recorded(file: string, placement: Placement, load: () => Promise<number>): Promise<number> {
  const where = placement === 'core0' ? ['-C', String(SERVER_CORE)] : ['-a'];
  const perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '2000', ...where, ...(callers ? ['-g'] : []), '-o', file], {
    stdio: 'ignore',
  });
  await new Promise((r) => setTimeout(r, 300));
  const n = await load();
  perf.kill('SIGINT');
  await new Promise((r) => perf.once('exit', r));
  return n;
}

function report(file: string, pids: number[], requests: number, label: string): void {
  const mine = new Set(pids.map(String));
  const script = (more: string[]) =>
    spawnSync('perf', ['script', '-i', file, '-F', 'comm,pid,ip,sym,dso', ...more], { encoding: 'utf8', maxBuffer: 1 << 30 }).stdout;
  const r = { stdout: script(['-G']) };
  const byDso = new Map<string, number>();
  const bySym = new Map<string, number>();
  const byPid = new Map<string, number>();
  let ours = 0;
  let other = 0;
  for (const line of r.stdout.split('\n')) {
    // "comm pid ip symbol (dso)"; comm may hold spaces.
    const m = /^\s*(.+?)\s+(\d+)\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$/.exec(line);
    if (!m) continue;
    if (!mine.has(m[2])) {
      other++;
      continue;
    }
    ours++;
    byPid.set(m[2], (byPid.get(m[2]) ?? 0) + 1);
    const dso = m[4].replace(/^.*\//, '');
    const sym = m[3].replace(/\+0x[0-9a-f]+$/, '');
    byDso.set(dso, (byDso.get(dso) ?? 0) + 1);
    bySym.set(`${sym} [${dso}]`, (bySym.get(`${sym} [${dso}]`) ?? 0) + 1);
  }
  const per = (n: number) => ((n * 1000) / requests).toFixed(1);
  console.log(`\n${label}: ${requests} requests, ${ours} samples of the gateway (${per(ours)} per 1,000 requests; 2,000 Hz), ${other} of other processes`);
  console.log(`  by process (the first is the root: the primary with two workers): ${pids.map((p) => `${p} ${per(byPid.get(String(p)) ?? 0)}`).join(', ')}`);
  for (const [d, n] of [...byDso].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  dso ${d}: ${per(n)}`);
  for (const [s, n] of [...bySym].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${per(n).padStart(6)}  ${s}`);
  if (callers) listCallers(script([]), mine, requests, label);
}

/** With -g, each sample is a header line and one line per frame, leaf first. */
function listCallers(script: string, mine: Set<string>, requests: number, label: string): void {
  const byCaller = new Map<string, number>();
  for (const block of script.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const head = /^\s*(.+?)\s+(\d+)\s*$/.exec(lines[0] ?? '');
    if (!head || !mine.has(head[2]) || lines.length < 2 || !callers!.test(lines[1])) continue;
    const js = lines
      .slice(2)
      .map((l) => /\s(JS:\S+(?: \S+)?)/.exec(l)?.[1])
      .filter((x): x is string => x !== undefined)
      .slice(0, 3)
      .join(' < ');
    byCaller.set(js || '(no JavaScript frame)', (byCaller.get(js || '(no JavaScript frame)') ?? 0) + 1);
  }
  console.log(`\n${label}: JavaScript callers of ${callers} (samples per 1,000 requests)`);
  for (const [c, n] of [...byCaller].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${((n * 1000) / requests).toFixed(2).padStart(6)}  ${c}`);
}

const running: Array<{ id: string; g: Running; url: string; placement: Placement }> = [];
try {
  for (const raw of (values.variants ?? '1u,2u').split(',')) {
    const [tag, where = 'core0'] = raw.trim().split('@');
    const placement = where as Placement;
    if (!/^[12][ul]$/.test(tag) || !PLACEMENTS.includes(placement)) throw new Error(`--variants: ${raw}`);
    const workers = Number(tag[0]);
    const c = mtlsgateContender({ mode: 'dynamic', keys: 0, limited: tag[1] === 'l', id: `perf-${tag}`, extraArgs: ['--workers', String(workers)] });
    const port = await freePort();
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${saved ?? ''} --perf-basic-prof`.trim();
    const g = await c.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', `perf-${tag}`) });
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
    console.log(`${raw}: placed (pid:allowed cores, primary first) ${placeGateway(g.proc.pid, placement)}`);
    running.push({ id: raw.trim(), g, url: `https://127.0.0.1:${port}${API_PATH}`, placement });
  }
  const spec = (url: string, durationS: number, placement: Placement) => ({
    cores: loadCores(placement),
    url,
    combinedPem: listed.combined,
    keepAlive: true,
    concurrency: 16,
    scratchDir: ctx.dir('scratch'),
    durationS,
  });
  const fixedLoad = (url: string, durationS: number, placement: Placement) =>
    runOpenLoop({ root, tsNode: ctx.tsNode, url, cert: listed.cert, key: listed.key, rate, durationS, connections: 16, cores: loadCores(placement) });
  for (const { g, url, placement } of running) {
    placeUpstream(upstream.proc.pid, placement);
    const until = Date.now() + warmS * 1000;
    while (Date.now() < until) {
      if (loads.includes('sat')) await measureOnce(g.proc.pid, spec(url, 4, placement));
      if (loads.includes('fixed')) await fixedLoad(url, 2, placement);
    }
  }
  for (const { id, g, url, placement } of running) {
    placeUpstream(upstream.proc.pid, placement);
    const pids = processTree(g.proc.pid);
    const file = (load: string) => join(out, `${id.replace('@', '-')}-${load}.data`);
    if (loads.includes('sat')) {
      const n1 = await recorded(file('sat'), placement, async () => (await measureOnce(g.proc.pid, spec(url, seconds, placement))).complete);
      report(file('sat'), pids, n1, `${id} saturation`);
    }
    if (loads.includes('fixed')) {
      const n2 = await recorded(file('fixed'), placement, async () => (await fixedLoad(url, seconds, placement)).sent + rate);
      report(file('fixed'), pids, n2, `${id} fixed ${rate}/s`);
    }
  }
} finally {
  for (const { g } of running) await g.proc.stop();
  await upstream.proc.stop();
}
