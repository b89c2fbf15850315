// The load generator's own ceiling: ab -k and autocannon against the cheapest mTLS endpoint
// there is (NGINX answering `return 200` itself) and against the bare Node proxy. When the
// server's CPU is at 100% and the client's is not, the generator was not the limit.
import type { Contender } from '../contenders/contender.ts';
import { nginx } from '../contenders/nginx.ts';
import { nodeBare } from '../contenders/node-bare.ts';
import { runAb } from '../lib/ab.ts';
import { runAutocannon } from '../lib/autocannon.ts';
import type { BenchContext } from '../lib/context.ts';
import { benchPki } from '../lib/pki.ts';
import { cpuSeconds, which } from '../lib/proc.ts';
import { freePort } from '../../common/listen.ts';
import type { Upstream } from '../upstream.ts';
import { round } from './load.ts';
import { API_PATH } from './proxy.ts';

export interface GeneratorRow {
  generator: string;
  target: string;
  rps: number;
  p99Ms: number;
  serverCpu: number;
  clientCpu: number | null;
  /** Requests that kept the connection (ab); autocannon is HTTP/1.1 keep-alive throughout. */
  keepAliveShare: number | null;
}

export async function runGeneratorCeiling(ctx: BenchContext, upstream: Upstream): Promise<GeneratorRow[]> {
  const pki = await benchPki(ctx.dir(), 'ec');
  const rows: GeneratorRow[] = [];
  const targets: [Contender, string, string][] = [[nodeBare, API_PATH, 'bare Node proxy']];
  if (which('nginx')) targets.unshift([nginx, '/ceiling', 'NGINX `return 200` (no proxy)']);
  const durationS = Math.min(ctx.opts.durationS, 4);
  for (const [contender, path, target] of targets) {
    const port = await freePort();
    const running = await contender.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', `${contender.id}-generator`) });
    const url = `https://127.0.0.1:${port}${path}`;
    try {
      const warm = { url, combinedPem: pki.files['listed-1'].combined, concurrency: ctx.opts.connections, keepAlive: true, scratchDir: ctx.dir('scratch') };
      await runAb({ ...warm, durationS: 1, maxRequests: 1e6 });
      let before = cpuSeconds(running.proc.pid);
      const ab = await runAb({ ...warm, durationS, maxRequests: durationS * 200_000 });
      rows.push({
        generator: 'ab -k (C, HTTP/1.0 keep-alive)',
        target,
        rps: Math.round(ab.rps),
        p99Ms: ab.p99Ms,
        serverCpu: round((cpuSeconds(running.proc.pid) - before) / ab.elapsedS, 3),
        clientCpu: ab.clientCpuS === null ? null : round(ab.clientCpuS / ab.elapsedS, 3),
        keepAliveShare: round(ab.keepAliveRequests / Math.max(1, ab.complete), 3),
      });
      before = cpuSeconds(running.proc.pid);
      const ac = await runAutocannon({
        root: ctx.root,
        url,
        cert: pki.files['listed-1'].cert,
        key: pki.files['listed-1'].key,
        connections: ctx.opts.connections,
        durationS,
      });
      rows.push({
        generator: 'autocannon (Node, HTTP/1.1)',
        target,
        rps: ac.rps,
        p99Ms: ac.p99Ms,
        serverCpu: round((cpuSeconds(running.proc.pid) - before) / durationS, 3),
        clientCpu: ac.clientCpu,
        keepAliveShare: null,
      });
      for (const r of rows.slice(-2))
        ctx.log(
          `  ${r.generator} -> ${r.target}: ${r.rps} req/s, server CPU ${Math.round(r.serverCpu * 100)}%, client CPU ${r.clientCpu === null ? '?' : Math.round(r.clientCpu * 100) + '%'}`,
        );
    } finally {
      await running.proc.stop();
    }
  }
  return rows;
}
