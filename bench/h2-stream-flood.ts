// The HTTP/2 floods of docs/security.md section 31, against a real `mtlsgate serve` (dist/, so
// `npm run build` first), with a client that writes its frames itself and so ignores the
// server's SETTINGS_MAX_CONCURRENT_STREAMS. C connections each open S streams to an upstream
// that never answers:
//   --mode flood        GET streams, left open;
//   --mode reset        rapid reset: each stream's HEADERS and RST_STREAM in one write;
//   --mode reset-late   the RST_STREAMs of each batch of 100 streams 20 ms after their HEADERS
//                       (the gateway has started their upstream requests by then).
// Prints the gateway's RSS before, at its peak and at the end, how many requests and TCP
// connections reached the upstream, and what the client got back (resets, GOAWAY).
//
//   node --import tsx bench/h2-stream-flood.ts [--mode flood] [--connections 6] [--streams 8000] [--seconds 8]
//     [--cli DIST/mtlsgate.mjs] [-- SERVE FLAGS...]
// --cli: another build (e.g. one of the commit before section 31) instead of this tree's dist/.
import { writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bundleOf, openApi, tempDir } from '../test/helpers/ops-fixtures.ts';
import { H2_ERROR, rawH2 } from '../test/helpers/raw-h2.ts';
import { demoServeArgs, listenPort } from '../test/helpers/demo-gateway.ts';
import { CLI, demoPki, spawnServe } from '../test/helpers/serve-fixtures.ts';
import { memKiB } from './lib/proc.ts';

const dash = process.argv.indexOf('--');
const { values } = parseArgs({
  args: process.argv.slice(2, dash === -1 ? undefined : dash),
  options: {
    cli: { type: 'string', default: CLI },
    mode: { type: 'string', default: 'flood' },
    connections: { type: 'string', default: '6' },
    streams: { type: 'string', default: '8000' },
    seconds: { type: 'string', default: '8' },
  },
});
const serveFlags = dash === -1 ? [] : process.argv.slice(dash + 1);
const connections = Number(values.connections);
const streams = Number(values.streams);
const seconds = Number(values.seconds);
const mode = values.mode as 'flood' | 'reset' | 'reset-late';
if (!['flood', 'reset', 'reset-late'].includes(mode)) throw new Error(`--mode flood|reset|reset-late, not ${mode}`);

const held = new Set<ServerResponse>();
let reachedUpstream = 0;
const upstream = createServer((_req, res) => {
  reachedUpstream++;
  held.add(res);
  res.on('close', () => held.delete(res));
});
let upstreamConnections = 0;
upstream.on('connection', () => upstreamConnections++);
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const t = tempDir('h2-flood');
const pki = await demoPki(t.dir);
const bundle = join(t.dir, 'bundle.json');
writeFileSync(bundle, bundleOf([openApi('slow', '/', `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`)]));
const serve = spawnServe(demoServeArgs(bundle, pki, { extra: serveFlags }), process.env, values.cli);
try {
  const serving = await serve.serving();
  const port = listenPort(serving);
  const pid = serve.child.pid!;
  await new Promise((r) => setTimeout(r, 500));
  const before = memKiB(pid, 'VmRSS');
  const clients = await Promise.all(Array.from({ length: connections }, () => rawH2({ port, ca: pki.ca.certPem })));
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < streams && !c.closed; i++) {
        const id = 2 * i + 1;
        if (mode === 'flood') c.open(id, 'GET', `/flood/${i}`);
        else if (mode === 'reset') c.openAndReset(id, `/reset/${i}`);
        else c.open(id, 'POST', `/reset/${i}`);
        if (i % 100 === 99) {
          await c.flushed();
          if (mode === 'reset-late') {
            await new Promise((r) => setTimeout(r, 20));
            for (let j = i - 99; j <= i; j++) c.reset(2 * j + 1);
          }
        }
      }
    }),
  );
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const peak = memKiB(pid, 'VmHWM');
  const end = memKiB(pid, 'VmRSS');
  const refused = clients.reduce((n, c) => n + [...c.resets.values()].filter((code) => code === H2_ERROR.REFUSED_STREAM).length, 0);
  const otherResets = clients.reduce((n, c) => n + c.resets.size, 0) - refused;
  console.log(
    JSON.stringify(
      {
        mode,
        cli: values.cli,
        serveFlags,
        connections,
        streamsPerConnection: streams,
        maxConcurrentStreamsAdvertised: clients[0].settings.get(3) ?? 'none (unlimited)',
        rssBeforeMiB: +(before / 1024).toFixed(1),
        rssPeakMiB: +(peak / 1024).toFixed(1),
        rssAtEndMiB: +(end / 1024).toFixed(1),
        requestsAtUpstream: reachedUpstream,
        upstreamConnections,
        requestsLogged: serve.lines().filter((l) => typeof l.status === 'number').length,
        heldAtUpstreamAtEnd: held.size,
        refusedStreams: refused,
        otherResets,
        goaways: clients.filter((c) => c.goaway !== null).map((c) => c.goaway),
      },
      null,
      2,
    ),
  );
  for (const c of clients) c.close();
} finally {
  serve.child.kill('SIGKILL');
  for (const res of held) res.destroy();
  upstream.close();
  t.cleanup();
}
