// What taking a large CRL from a crl_url costs the event loop (docs/security.md section 48):
//   node --expose-gc --import tsx bench/crl-take.ts [ENTRIES] [thread|worker]
// Serves a CA-signed CRL of ENTRIES (default 1,000,000) made-up serials on loopback, takes it
// with the runtime's CRL fetcher either on the main thread (as every CRL was taken before) or
// through the CRL worker, and prints the longest event-loop block (a 1 ms timer's worst lateness,
// and perf_hooks' event-loop delay max), the time from fetch to adoption, the memory the list holds once
// taken (heap + array buffers after a GC: run with --expose-gc; and the RSS growth), and the cost of a lookup (one revoked, one not).
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startCrlFetcher } from '../runtime/crl-fetcher.ts';
import { CrlStore } from '../runtime/revocation.ts';
import { SerialTable } from '../runtime/serial-table.ts';
import { bigCrl } from '../test/helpers/big-crl.ts';
import { createOpensslCa } from '../test/helpers/openssl-pki.ts';
import { watchLoop } from './lib/loop-block.ts';

const entries = Number(process.argv[2] ?? 1_000_000);
const mode = process.argv[3] === 'thread' ? 'thread' : 'worker';
const ca = createOpensslCa('Bench CA');
const crl = bigCrl(ca.caCert, join(ca.dir, 'ca-key.pem'), entries, ['abcdef']);
const server = createServer((_req, res) => res.end(crl));
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/big.crl`;
const fingerprint = new X509Certificate(ca.caPem).fingerprint256.replace(/:/g, '').toLowerCase();
const trusted = [{ fingerprint, cert: new X509Certificate(ca.caPem) }];
const store = new CrlStore();
store.setUrls([url], new Map([[url, fingerprint]]));

globalThis.gc?.();
const held = () => {
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.arrayBuffers };
};
const before = held();
const loop = watchLoop();
const t0 = performance.now();
const fetcher = startCrlFetcher({
  snapshot: () => ({ revocationCas: () => trusted }) as never,
  store,
  intervalMs: 600_000,
  retryMs: 600_000,
  workerMinBytes: mode === 'thread' ? Number.POSITIVE_INFINITY : undefined,
});
await fetcher.refreshAll();
const took = performance.now() - t0;
const { worst: worstLate, perfMax } = await loop.stop();
fetcher.stop();
const taken = store.byUrl.get(url)!;
if (taken.serials.size !== entries + 1) throw new Error(`taken ${taken.serials.size} entries: ${taken.lastError}`);
const lookup = (s: string) => {
  const n = 2_000_000;
  const t = process.hrtime.bigint();
  let found = 0;
  const serials = taken.serials;
  for (let i = 0; i < n; i++) if (serials.has(s)) found++;
  return `${(Number(process.hrtime.bigint() - t) / n).toFixed(0)} ns (${found === n ? 'found' : 'not found'})`;
};
const lookups = [lookup('abcdef'), lookup('1100000000000000000000000000000000000007'), lookup('12345')];
// A SerialTable's arrays come from the worker: memoryUsage() does not count them, they count themselves.
const tableMiB = taken.serials instanceof SerialTable ? ` (the table's arrays: ${(taken.serials.byteLength / 1048576).toFixed(0)} MiB)` : '';
globalThis.gc?.();
const holding = held();
// What the list holds: the memory it frees once the URL is dropped.
taken.serials = new Set();
globalThis.gc?.();
const after = held();
console.log(
  `${mode}: ${crl.length} bytes, ${entries + 1} entries; fetch to adoption ${took.toFixed(0)} ms; longest event-loop block ${worstLate.toFixed(0)} ms (perf_hooks max ${perfMax.toFixed(0)} ms); list holds ${((holding.heap - after.heap) / 1048576).toFixed(0)} MiB (heap + array buffers)${tableMiB}, RSS ${(holding.rss / 1048576).toFixed(0)} MiB (${(before.rss / 1048576).toFixed(0)} before the fetch); lookups ${lookups.join(', ')}`,
);
server.close();
ca.cleanup();
