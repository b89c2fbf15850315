// The short "Performance" section for the top-level README (bench/README-PERF-SNIPPET.md).
import { CONTAMINATED } from '../workloads/load.ts';
import { r2, table } from './markdown.ts';
import { BASELINE, type BenchResults, find } from './results.ts';

export function renderPerfSnippet(res: BenchResults): string {
  const runs = res.sections.proxy ?? [];
  const m = res.machine;
  const lines: string[] = ['## Performance', ''];
  lines.push(
    `Measured side by side in one run (\`npm run bench\`, ${m.date.slice(0, 10)}; ${m.cpuModel}, ${m.cores} cores, Node ${m.node}, OpenSSL ${m.nodeOpenssl}): every contender on one core, enforcing "only these pinned client certificates may call /api/" in front of the same upstream, the same client (ab, TLS 1.3, ECDSA P-256 certificates) on the other core. Ratios, because absolute numbers on a shared VM drift ±15%.`,
    '',
  );
  const base = find(runs, BASELINE, 'ec');
  const rows: (string | number)[][] = [];
  for (const id of ['mtlsgate-static', 'mtlsgate-dynamic', 'caddy', 'nginx', 'haproxy']) {
    const r = find(runs, id, 'ec');
    if (!r?.keepAlive || !base?.keepAlive) continue;
    rows.push([
      r.label,
      r.keepAlive.rps,
      r2(r.keepAlive.rps / base.keepAlive.rps),
      r.keepAlive.serverUsPerRequest,
      r.newConnection && base.newConnection ? r2(r.newConnection.rps / base.newConnection.rps) : '–',
      r.fixedRate && base.fixedRate ? r2(r.fixedRate.p99Ms / base.fixedRate.p99Ms) : '–',
    ]);
  }
  if (base?.keepAlive) rows.unshift([base.label, base.keepAlive.rps, '1.00', base.keepAlive.serverUsPerRequest, '1.00', '1.00']);
  if (rows.length) {
    lines.push(table(['', 'keep-alive req/s', '× bare Node', 'server CPU µs/req', 'new connections × bare Node', 'p99 at fixed rate × bare Node'], rows), '');
    const dirty = [base, ...['mtlsgate-static', 'mtlsgate-dynamic', 'caddy', 'nginx', 'haproxy'].map((id) => find(runs, id, 'ec'))].filter(
      (r) => r?.keepAlive && r.keepAlive.serverCoreOtherLoad > CONTAMINATED,
    );
    if (dirty.length)
      lines.push(
        `Another tenant took part of the server core during ${dirty.map((r) => r!.label).join(', ')} (see RESULTS.md): there, compare server CPU µs/req rather than req/s.`,
        '',
      );
  }
  const facts: string[] = [];
  const noLog = find(runs, 'mtlsgate-static-nolog', 'ec');
  const stat = find(runs, 'mtlsgate-static', 'ec');
  if (noLog?.keepAlive && stat?.keepAlive && base?.keepAlive)
    facts.push(
      `the per-request JSON log line is most of mtlsgate's overhead: ${stat.keepAlive.serverUsPerRequest} µs of server CPU per request with it, ${noLog.keepAlive.serverUsPerRequest} µs without (\`--log-level warn\`), against ${base.keepAlive.serverUsPerRequest} µs for the bare Node proxy`,
    );
  const c = res.sections.compile;
  if (c && c.exitCode === 0)
    facts.push(
      `compiling ${c.apis.toLocaleString('en')} APIs and ${c.keys.toLocaleString('en')} keys (each with its own certificate file) takes ${c.wallS} s and ${c.peakRssMiB ?? '?'} MiB peak RSS`,
    );
  for (const r of (res.sections.scale ?? []).filter((x) => !x.error))
    facts.push(
      `at ${r.keys.toLocaleString('en')} keys (1,000 APIs) the bundle is ${r.bundleMiB} MiB (${r.bytesPerKey} bytes a key), compiled in ${r.compileWallS} s (${r.compileCpuS ?? '?'} s CPU, ${r.compilePeakRssMiB ?? '?'} MiB peak RSS); \`serve\` answers ${r.serveFirstAnswerMs ?? '?'} ms after it starts, at ${r.serveRssMiB ?? '?'} MiB RSS`,
    );
  const sw = res.sections.swap?.find((x) => x.keys >= 100_000);
  if (sw)
    facts.push(
      `swapping in a ${sw.keys.toLocaleString('en')}-key bundle (${sw.bundleMiB} MiB) takes ${Math.round(sw.verifyBuildSwapMs)} ms end to end (verified and parsed off the event loop), with a longest event-loop stall of ${Math.round(sw.maxEventLoopDelayMs)} ms`,
    );
  for (const r of res.sections.reload ?? [])
    facts.push(`with the bundle replaced every second (${r.bundle}), throughput is ${r2(r.ratio)}× that without reloads, ${r.failedRequests} failed requests`);
  const mem = res.sections.limits?.endToEnd.find((x) => x.limiter === 'in-process');
  const red = res.sections.limits?.endToEnd.find((x) => x.limiter === 'redis');
  if (mem && red)
    facts.push(
      `with every request rate-limited, throughput is ${r2(mem.ratio)}× the unlimited gateway's in-process and ${r2(red.ratio)}× through Redis (${red.redisRoundTripsPerRequest} Redis round trip per request)`,
    );
  if (facts.length) lines.push(facts.map((f) => `- ${f[0].toUpperCase()}${f.slice(1)}.`).join('\n'), '');
  lines.push(
    'Full tables, RSA-2048, the machine and how to read them: [bench/RESULTS.md](bench/RESULTS.md). Reproduce (Debian: `apt-get install nginx caddy haproxy apache2-utils redis-server`):',
    '',
    '```sh',
    'npm run bench',
    '```',
    '',
  );
  return lines.join('\n');
}
