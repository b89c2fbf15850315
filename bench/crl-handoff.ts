// What a large CRL handed between the processes of `serve --workers 2` costs the primary's event
// loop (docs/security.md section 58):
//   npm run build && node --import tsx bench/crl-handoff.ts [ENTRIES] [RUNS] [CLI]
// (CLI: another build's mtlsgate.mjs, e.g. main's copied to bench/.work/, to measure before a change.)
// Per run: a real `serve --workers 2` (dist/mtlsgate.mjs) whose crl_url answers a small list,
// then a CA-signed list of ENTRIES (default 1,000,000) made-up serials, with an ETag (once,
// then 304). Both workers fetch it, each reports it to the primary, which verifies it and hands
// it to the other. Meanwhile `/ready`, which the primary answers alone (it asks no worker), is
// asked back to back; its slowest answer is the primary's longest event-loop block as a client
// of the admin listener sees it (a lease request waits the same way). The window ends 3 s after
// both workers logged the big list taken. This process's own loop is watched too (its HTTP
// server writes the list twice): a block here would show up as a slow /ready.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { bigCrl } from '../test/helpers/big-crl.ts';
import { crlBundle } from '../test/helpers/crl-workers.ts';
import { demoServeArgs } from '../test/helpers/demo-gateway.ts';
import { startEcho } from '../test/helpers/gateway-fixtures.ts';
import { createOpensslCa } from '../test/helpers/openssl-pki.ts';
import { tempDir, waitFor } from '../test/helpers/ops-fixtures.ts';
import { CLI, demoPki, spawnServe } from '../test/helpers/serve-fixtures.ts';
import { watchLoop } from './lib/loop-block.ts';

const entries = Number(process.argv[2] ?? 1_000_000);
const runs = Number(process.argv[3] ?? 3);
const cli = process.argv[4] ?? CLI;
const tmp = tempDir('crl-handoff');
const pki = await demoPki(tmp.dir);
const echo = await startEcho();
const ca = createOpensslCa('Handoff Bench CA');
const key = join(ca.dir, 'ca-key.pem');
let served = { body: bigCrl(ca.caCert, key, 10), etag: '"small"' };
const server = createServer((req, res) => {
  const { body, etag } = served;
  if (req.headers['if-none-match'] === etag) res.writeHead(304, { etag }).end();
  else res.writeHead(200, { etag, 'content-length': body.length }).end(body);
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/big.crl`;
mkdirSync(join(tmp.dir, 'cfg'));
const bundle = await crlBundle(join(tmp.dir, 'cfg'), ca, echo.url, url);

for (let run = 1; run <= runs; run++) {
  served = { body: bigCrl(ca.caCert, key, 10), etag: `"small-${run}"` };
  const gw = spawnServe(
    demoServeArgs(bundle, pki, { admin: 'loopback', extra: ['--workers', '2', '--crl-stale', 'open', '--crl-refresh', '1s'] }),
    process.env,
    cli,
  );
  const admin = (await gw.serving()).admin as string;
  const tookList = (n: number) => gw.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('CRL updated') && l.entries === n).length;
  await waitFor('both workers took the small list', () => tookList(10) >= 2, 20_000);
  const load = loadavg()[0].toFixed(2);
  const big = bigCrl(ca.caCert, key, entries);
  const loop = watchLoop();
  served = { body: big, etag: `"big-${run}"` };
  const started = performance.now();
  let slowest = 0;
  let asked = 0;
  let both: number | null = null;
  while (both === null || performance.now() - both < 3_000) {
    const t0 = performance.now();
    await (await fetch(`http://${admin}/ready`)).text();
    slowest = Math.max(slowest, performance.now() - t0);
    asked++;
    if (both === null && tookList(entries) >= 2) both = performance.now();
    if (performance.now() - started > 60_000) throw new Error('the big list was not taken by both workers within 60 s');
  }
  const own = await loop.stop();
  console.log(
    `${cli}: run ${run} (load average ${load}): ${entries} entries, ${big.length} bytes; both workers took it after ${((both - started) / 1000).toFixed(1)} s; slowest /ready ${slowest.toFixed(0)} ms of ${asked}; this process's own longest block ${own.worst.toFixed(0)} ms`,
  );
  gw.kill();
  await gw.exited;
}
server.close();
await echo.close();
ca.cleanup();
tmp.cleanup();
process.exit(0);
