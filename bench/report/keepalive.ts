// The keep-alive sections measured in turns: the load generator's ceiling, the interleaved
// ratio to the bare Node proxy, and HTTP/2 against HTTP/1.1.
import { pct, r2, section, table } from './markdown.ts';
import type { BenchResults } from './results.ts';

/** The load generators against one server. */
export function generatorSection(res: BenchResults): string {
  if (!res.sections.generator) return '';
  return section(
    '## Load generator ceiling (ECDSA, keep-alive)\n',
    table(
      ['generator', 'target', 'req/s', 'p99 ms', 'server CPU', 'client CPU', 'keep-alive share'],
      res.sections.generator.map((g) => [
        g.generator,
        g.target,
        g.rps,
        g.p99Ms,
        pct(g.serverCpu),
        pct(g.clientCpu),
        g.keepAliveShare === null ? '–' : pct(g.keepAliveShare),
      ]),
    ),
  );
}

/** The interleaved keep-alive ratios. */
export function pairedSection(res: BenchResults): string {
  if (!res.sections.paired?.length) return '';
  const p = res.sections.paired[0];
  return section(
    `## Keep-alive, interleaved: ratio to the bare Node proxy (${p.rounds} rounds × ${p.turnS} s per contender)\n`,
    'All contenders run at once on the server core; the load visits them in turn, in a rotating order, every round. Each round gives a ratio from runs seconds apart; the median round is the figure, min–max the spread. The most robust ratio on a noisy machine.\n',
    table(
      ['contender', 'alg', 'req/s ratio (median)', 'min–max', 'CPU-per-request ratio (median)', 'server µs/req (median)', 'req/s (median)', 'errors'],
      res.sections.paired.flatMap((sec) =>
        sec.rows.map((r) => [
          r.label,
          r.alg,
          r2(r.medianRatio),
          `${r2(r.minRatio)}–${r2(r.maxRatio)}`,
          r2(r.medianCpuRatio),
          r.medianUsPerRequest,
          r.medianRps,
          r.errors,
        ]),
      ),
    ),
  );
}

/** HTTP/2 against HTTP/1.1 through mtlsgate. */
export function http2Section(res: BenchResults): string {
  if (!res.sections.http2?.length) return '';
  const h = res.sections.http2[0];
  return section(
    `## HTTP/2 against HTTP/1.1 through mtlsgate (static mTLS, keep-alive, ${h.rounds} alternating rounds × ${h.turnS} s)\n`,
    "Same gateway, same client certificate, 64 requests in flight: 64 HTTP/1.1 connections (ab) against 4 HTTP/2 connections × 16 streams (a Node client: ab and wrk speak HTTP/1.x only). The client CPU column is the load generator's share of its core: near 100% means the client was the ceiling, and the server µs/req is the figure to compare.\n",
    table(
      ['protocol', 'alg', 'connections', 'req/s (median)', 'server µs/req (median)', 'client CPU', 'p99 ms', 'errors'],
      res.sections.http2.flatMap((sec) =>
        sec.rows.map((r) => [r.protocol, sec.alg, r.connections, r.medianRps, r.medianUsPerRequest, pct(r.medianClientCpu), r.p99Ms, r.errors]),
      ),
    ),
  );
}
