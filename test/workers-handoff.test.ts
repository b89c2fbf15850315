// `serve --workers 2`: a connection node:cluster's round-robin was handing to a worker at the
// instant the worker died (runtime/cluster/handoff-guard.ts, docs/workers.md). Made exact here:
// a module loaded into every worker (NODE_OPTIONS=--import) stops the worker's event loop on
// SIGUSR2 (Atomics.wait: no CPU), so the connection the primary hands it next is sent and never
// answered, as when a worker dies between the two; then the worker is killed. Before: that
// connection stayed open, handed to nobody, until the client gave up (here after 10 s).
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, writeFileSync } from 'node:fs';
import type { DemoPki } from '../cli/pki.ts';
import { demoServeArgs, listenPort } from './helpers/demo-gateway.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { compileWithCli, demoClientAgent, demoPki, spawnServe, writeConfig } from './helpers/serve-fixtures.ts';

const tmp = tempDir('handoff');
let pki: DemoPki;
let echo: EchoUpstream;
let bundle: string;
const gateways: Array<ReturnType<typeof spawnServe>> = [];
before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
  bundle = join(tmp.dir, 'bundle.json');
  await compileWithCli(writeConfig(tmp.dir, pki.dir, echo.url, ['partner-a']), bundle);
});
after(async () => {
  for (const gw of gateways) gw.kill();
  await echo?.close();
  tmp.cleanup();
});

/** How long a client here waits for an answer before it gives up (status 0). */
const CLIENT_TIMEOUT_MS = 10_000;

/** A worker writes this file name and its pid just before it stops its loop. */
const stoppedMark = () => join(tmp.dir, 'stopped-');

function serveWithStoppable() {
  const inject = join(tmp.dir, 'stop-loop.mjs');
  writeFileSync(
    inject,
    `import cluster from 'node:cluster';\nimport { writeFileSync } from 'node:fs';\nif (cluster.isWorker) process.on('SIGUSR2', () => { writeFileSync(${JSON.stringify(stoppedMark())} + process.pid, ''); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000); });\n`,
  );
  const gw = spawnServe(demoServeArgs(bundle, pki, { admin: 'loopback', extra: ['--workers', '2'] }), { ...process.env, NODE_OPTIONS: `--import=${inject}` });
  gateways.push(gw);
  return gw;
}

type Reply = { status: number; error: string | null; at: number };

/** `n` requests at once, each on a connection of its own; `replies` fills as they settle. */
function requests(port: number, n: number, replies: Reply[]): Promise<void> {
  const agent = demoClientAgent(pki, 'partner-a', n);
  const one = () =>
    new Promise<void>((resolve) => {
      const done = (status: number, error: string | null) => {
        replies.push({ status, error, at: Date.now() });
        resolve();
      };
      const req = request(`https://127.0.0.1:${port}/static/handoff`, { agent }, (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode ?? 0, null));
      });
      req.on('error', (err: NodeJS.ErrnoException) => done(0, err.code ?? err.message));
      req.setTimeout(CLIENT_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('no answer'), { code: 'CLIENT_TIMEOUT' })));
      req.end();
    });
  return Promise.all(Array.from({ length: n }, one)).then(() => agent.destroy());
}

/** Worker 1 stops its loop; of 4 connections opened at once, the round-robin hands it one, which waits. */
async function oneConnectionWaitingOnWorker1(gw: ReturnType<typeof spawnServe>) {
  const serving = await gw.serving();
  const pids = serving.pids as number[];
  process.kill(pids[0], 'SIGUSR2');
  await waitFor('worker 1 stopped its loop', () => existsSync(stoppedMark() + pids[0]));
  const replies: Reply[] = [];
  const all = requests(listenPort(serving), 4, replies);
  await waitFor('three answered by worker 2', () => replies.length === 3);
  await sleep(500);
  assert.equal(replies.length, 3, 'one connection waits on the stopped worker');
  return { pids, replies, all };
}

test('a connection handed to a worker as it dies is handed to another worker: the client gets its answer at once', async (t) => {
  const gw = serveWithStoppable();
  const { pids, replies, all } = await oneConnectionWaitingOnWorker1(gw);
  const killedAt = Date.now();
  process.kill(pids[0], 'SIGKILL');
  await all;
  const last = replies[3];
  // Before: status 0 (CLIENT_TIMEOUT) 10 s after the kill.
  assert.deepEqual(
    replies.map((r) => r.status),
    [200, 200, 200, 200],
    JSON.stringify(replies),
  );
  assert.ok(last.at - killedAt < 3_000, `answered ${last.at - killedAt} ms after the kill`);
  t.diagnostic(`the connection handed to the dying worker answered ${last.at - killedAt} ms after the kill`);
  await waitFor('the primary says so', () =>
    gw.lines().some((l) => l.msg === 'connections handed to a worker as it died: handed to another worker' && l.connections === 1),
  );
});

test('with no worker left to take it, the connection is closed: the client sees it end at once and can retry', async (t) => {
  const gw = serveWithStoppable();
  const { pids, replies, all } = await oneConnectionWaitingOnWorker1(gw);
  // Worker 2 first: until its replacement listens, no worker could take the connection.
  process.kill(pids[1], 'SIGKILL');
  await waitFor('the primary saw worker 2 die', () => gw.lines().some((l) => l.msg === 'worker stopped unexpectedly; starting another in 1000 ms'));
  const killedAt = Date.now();
  process.kill(pids[0], 'SIGKILL');
  await all;
  const last = replies[3];
  // Before: CLIENT_TIMEOUT 10 s after the kill.
  assert.equal(last.status, 0);
  assert.notEqual(last.error, 'CLIENT_TIMEOUT', JSON.stringify(last));
  assert.ok(last.at - killedAt < 3_000, `ended ${last.at - killedAt} ms after the kill (${last.error})`);
  t.diagnostic(`the connection handed to the dying worker ended (${last.error}) ${last.at - killedAt} ms after the kill`);
  await waitFor('the primary says so', () =>
    gw.lines().some((l) => l.msg === 'connections handed to a worker as it died: closed (no worker left to take them)' && l.connections === 1),
  );
  // The set recovers: replacements for both serve.
  await waitFor('two replacements serve', () => gw.lines().filter((l) => l.msg === 'worker serving' && Number(l.worker) > 2).length === 2, 20_000);
});
