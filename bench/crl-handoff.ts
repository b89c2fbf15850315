// What a large CRL handed between the processes of `serve --workers 2` costs the primary's event
// loop (docs/security.md section 58):
//   npm run build && node --import tsx bench/crl-handoff.ts [ENTRIES] [RUNS] [CLI,CLI...]
// (CLI: a build's mtlsgate.mjs, default dist's; several, comma-separated, e.g. main's copied to
// bench/.work/ to measure before a change: each run alternates between them.)
// Per run: a real `serve --workers 2` (dist/mtlsgate.mjs) whose crl_url answers a small list,
// then a CA-signed list of ENTRIES (default 1,000,000) made-up serials, with an ETag (once,
// then 304). Both workers fetch it, each reports it to the primary, which verifies it and hands
// it to the other. Meanwhile `/ready`, which the primary answers alone (it asks no worker), is
// asked back to back; its slowest answer is the primary's longest event-loop block as a client
// of the admin listener sees it (a lease request waits the same way). The window ends 3 s after
// both workers logged the big list taken. The primary's loop is also watched from inside: a
// module loaded into it (NODE_OPTIONS=--import, the bench's, not the gateway's) runs a 1 ms timer
// and writes every lateness over 2 ms, with its time, to a file; the bench prints the longest in
// the window and what the 1 ms timer saw, which neither the bench's own scheduling nor the HTTP
// round trip inflates (being descheduled on a loaded machine still does). The crl_url is answered by a child process (writing
// 39 MB twice held this one's loop up to 275 ms); this process's own loop is watched too: a
// block here would show up as a slow /ready.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
const clis = (process.argv[4] ?? CLI).split(',');
const tmp = tempDir('crl-handoff');
const pki = await demoPki(tmp.dir);
const echo = await startEcho();
const ca = createOpensslCa('Handoff Bench CA');
const key = join(ca.dir, 'ca-key.pem');
// The crl_url: a child process answering the file named on its stdin's last line, its name as ETag.
const server = spawn(
  process.execPath,
  [
    '-e',
    `const fs = require('node:fs'); let file = null;
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => (file = l));
const s = require('node:http').createServer((req, res) => {
  const body = fs.readFileSync(file); const etag = JSON.stringify(file);
  if (req.headers['if-none-match'] === etag) res.writeHead(304, { etag }).end();
  else res.writeHead(200, { etag, 'content-length': body.length }).end(body);
}).listen(0, '127.0.0.1', () => console.log(s.address().port));`,
  ],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const port = await new Promise<string>((r) => server.stdout.once('data', (d: Buffer) => r(d.toString().trim())));
const url = `http://127.0.0.1:${port}/big.crl`;
/** The crl_url answers `body` from now on (under a new ETag). */
const serve = (name: string, body: Buffer) => {
  const file = join(tmp.dir, name);
  writeFileSync(file, body);
  server.stdin.write(`${file}\n`);
};
// The probe: in the primary only (cluster.isPrimary; the workers run the same module).
const lateness = join(tmp.dir, 'primary-lateness.log');
const probe = join(tmp.dir, 'primary-probe.mjs');
writeFileSync(
  probe,
  `import cluster from 'node:cluster';
import { appendFileSync, readFileSync } from 'node:fs';
if (cluster.isPrimary) {
  // The main thread's CPU time (utime + stime, clock ticks of 10 ms): a lateness during which it
  // did not run is the process waiting for a core, not its loop at work.
  const cpu = () => { const f = readFileSync('/proc/self/task/' + process.pid + '/stat', 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
  let last = performance.now();
  let ran = cpu();
  setInterval(() => {
    const now = performance.now();
    const c = cpu();
    if (now - last - 1 > 2) appendFileSync(${JSON.stringify(lateness)}, Date.now() + ' ' + (now - last - 1).toFixed(1) + ' ' + (c - ran) + '\\n');
    last = now;
    ran = c;
  }, 1).unref();
}
`,
);
/** The primary's timer latenesses between two wall-clock times, longest first: [ms late, ms its main thread ran meanwhile]. */
const primaryBlocks = (from: number, to: number): number[][] =>
  (existsSync(lateness) ? readFileSync(lateness, 'utf8').trim().split('\n') : [])
    .map((l) => l.split(' ').map(Number))
    // Written when the timer runs again: `at` is the end of the lateness, which must start in the window.
    .filter(([at, ms]) => at - ms >= from && at <= to)
    .map(([, ms, ran]) => [ms, ran])
    .sort((a, b) => b[0] - a[0]);
mkdirSync(join(tmp.dir, 'cfg'));
const bundle = await crlBundle(join(tmp.dir, 'cfg'), ca, echo.url, url);

for (let run = 1; run <= runs * clis.length; run++) {
  const cli = clis[(run - 1) % clis.length];
  serve(`small-${run}.crl`, bigCrl(ca.caCert, key, 10));
  const gw = spawnServe(
    demoServeArgs(bundle, pki, { admin: 'loopback', extra: ['--workers', '2', '--crl-stale', 'open', '--crl-refresh', '1s'] }),
    { ...process.env, NODE_OPTIONS: `--import=${probe}` },
    cli,
  );
  const admin = (await gw.serving()).admin as string;
  const tookList = (n: number) => gw.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('CRL updated') && l.entries === n).length;
  await waitFor('both workers took the small list', () => tookList(10) >= 2, 20_000);
  const load = loadavg()[0].toFixed(2);
  const big = bigCrl(ca.caCert, key, entries);
  const loop = watchLoop();
  serve(`big-${run}.crl`, big);
  const started = performance.now();
  const from = Date.now();
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
  const blocks = primaryBlocks(from, Date.now());
  console.log(
    `${cli}: run ${run} (load average ${load}): ${entries} entries, ${big.length} bytes; both workers took it after ${((both - started) / 1000).toFixed(1)} s; primary's timer latest ${
      blocks
        .slice(0, 3)
        .map(([ms, ran]) => `${ms} ms (main thread ran ${ran})`)
        .join(', ') || 'none over 2 ms'
    }; most main-thread CPU within one late timer: ${Math.max(0, ...blocks.map(([, ran]) => ran))} ms; slowest /ready ${slowest.toFixed(0)} ms of ${asked}; this process's own longest block ${own.worst.toFixed(0)} ms`,
  );
  gw.kill();
  await gw.exited;
}
server.kill();
await echo.close();
ca.cleanup();
tmp.cleanup();
process.exit(0);
