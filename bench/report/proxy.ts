// The side-by-side section: every contender's keep-alive, fixed-rate, new-connection and
// resumed-session rows, and the pin check before load.
import type { LoadResult } from '../workloads/load.ts';
import { RESUME_PROCESSES } from '../workloads/proxy.ts';
import { pct, r2, ratio, section, table } from './markdown.ts';
import { BASELINE, type BenchResults, find } from './results.ts';

function loadRow(label: string, l: LoadResult, base: LoadResult | undefined, extra: (string | number)[]): (string | number)[] {
  return [
    label,
    l.rps,
    r2(ratio(l.rps, base?.rps)),
    l.p50Ms,
    l.p99Ms,
    r2(ratio(l.p99Ms, base?.p99Ms)),
    pct(l.serverCpu),
    l.serverUsPerRequest,
    pct(l.clientCpu),
    `${pct(l.serverCoreOtherLoad)}${l.retried ? ' (retried)' : ''}`,
    l.errors,
    ...extra,
  ];
}

function proxySection(res: BenchResults): string {
  const runs = res.sections.proxy;
  if (!runs) return '';
  const out: string[] = [];
  for (const alg of res.options.algs) {
    const algName = alg === 'ec' ? 'ECDSA P-256' : 'RSA-2048';
    const mine = runs.filter((r) => r.alg === alg);
    const base = find(runs, BASELINE, alg);
    const ka = mine.filter((r) => r.keepAlive);
    if (ka.length) {
      out.push(`### Keep-alive, ${res.options.connections} connections, ${algName}\n`);
      out.push(
        table(
          [
            'contender',
            'req/s',
            '× bare Node',
            'p50 ms',
            'p99 ms',
            'p99 × bare',
            'server CPU',
            'server µs/req',
            'client CPU',
            'other load on server core',
            'errors',
            'keep-alive reqs',
            'server RSS MiB',
          ],
          ka.map((r) =>
            loadRow(r.label, r.keepAlive!, base?.keepAlive, [`${pct(r.keepAlive!.keepAliveRequests / Math.max(1, r.keepAlive!.complete))}`, r.rssMiB ?? '?']),
          ),
        ),
      );
      out.push('');
    }
    const fr = mine.filter((r) => r.fixedRate);
    if (fr.length) {
      out.push(
        `### Latency at a fixed ${fr[0].fixedRate!.offeredRps} req/s offered, open loop (latency from each request's due time), up to 16 connections, ${algName}\n`,
      );
      out.push(
        table(
          ['contender', 'req/s achieved', 'p50 ms', 'p90 ms', 'p99 ms', 'p99 × bare', 'max ms', 'server CPU', 'other load on server core', 'errors'],
          fr.map((r) => {
            const f = r.fixedRate!;
            return [
              r.label,
              f.achievedRps,
              f.p50Ms,
              f.p90Ms,
              f.p99Ms,
              r2(ratio(f.p99Ms, base?.fixedRate?.p99Ms)),
              f.maxMs,
              pct(f.serverCpu),
              `${pct(f.serverCoreOtherLoad)}${f.retried ? ' (retried)' : ''}`,
              f.errors,
            ];
          }),
        ),
      );
      out.push('');
    }
    const nc = mine.filter((r) => r.newConnection);
    if (nc.length) {
      out.push(`### New TLS connection per request (full handshake, client certificate), ${res.options.handshakeConnections} concurrent, ${algName}\n`);
      out.push(
        table(
          [
            'contender',
            'handshakes/s',
            '× bare Node',
            'p50 ms',
            'p99 ms',
            'p99 × bare',
            'server CPU',
            'server µs/handshake',
            'client CPU',
            'other load on server core',
            'errors',
          ],
          nc.map((r) => loadRow(r.label, r.newConnection!, base?.newConnection, [])),
        ),
      );
      out.push('');
    }
    const rs = mine.filter((r) => r.resumed);
    if (rs.length) {
      out.push(`### Resumed TLS session per request (openssl s_time -reuse, one request each, ${RESUME_PROCESSES} processes in parallel), ${algName}\n`);
      out.push(
        table(
          [
            'contender',
            'connections/s',
            '× bare Node',
            'server CPU',
            'server µs/connection',
            'client CPU',
            'other load on server core',
            'same answer as a full handshake',
          ],
          rs.map((r) => {
            const x = r.resumed!;
            return [
              r.label,
              x.perSecond,
              r2(ratio(x.perSecond, base?.resumed?.perSecond)),
              pct(x.serverCpu),
              x.serverUsPerConnection,
              pct(x.clientCpu),
              `${pct(x.serverCoreOtherLoad)}${x.retried ? ' (retried)' : ''}`,
              x.sameAnswer ? 'yes' : '**no**',
            ];
          }),
        ),
      );
      out.push('');
    }
    const other = mine.filter((r) => r.status !== 'ok');
    if (other.length) out.push(other.map((r) => `- ${r.label} (${algName}): **${r.status}**${r.error ? `: ${r.error}` : ''}`).join('\n') + '\n');
  }
  out.push('### Pin check before load (curl, ECDSA and RSA alike)\n');
  const checks = runs.filter((r) => r.check && r.alg === res.options.algs[0]);
  out.push(
    table(
      ['contender', 'listed certificate', 'unlisted, same CA', 'other CA', 'notes'],
      checks.map((r) => [r.label, r.check!.listed, r.check!.unlisted, r.check!.otherCa, r.notes.join('; ')]),
    ),
  );
  return out.join('\n');
}

/** The side-by-side section: its title and every contender's tables. */
export function sideBySideSection(res: BenchResults): string {
  if (!res.sections.proxy) return '';
  return section('## Side by side: "only these pinned client certificates may call /api/"\n', proxySection(res));
}
