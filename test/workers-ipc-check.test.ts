// `serve --workers 2`: the primary checks what a worker sends before it acts on it
// (runtime/cluster/ipc-check.ts, docs/security.md section 39). A worker runs the same code, so a
// malformed message is a bug or a worker taken over through its request path; the test plays
// the second: a module loaded into every worker (NODE_OPTIONS=--import) sends the messages below
// when the worker gets SIGUSR2. Before: prom-client's answer with an unknown request id threw in
// the primary's message listener and an acquire without `closes` rejected unhandled (either ends
// the primary, and with it every worker); a bundle record whose signing time is no date was kept
// and stopped every later write of --state-dir's file; one signed years ahead was sent on to the
// other worker, which then refused every real bundle.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadBundle } from '../bundle/read.ts';
import type { DemoPki } from '../cli/pki.ts';
import type { HealthReport } from '../runtime/admin.ts';
import { demoServeArgs } from './helpers/demo-gateway.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { CLI, compileWithCli, demoPki, run, spawnServe, writeConfig } from './helpers/serve-fixtures.ts';

const tmp = tempDir('ipc-check');
let pki: DemoPki;
let echo: EchoUpstream;
const gateways: Array<ReturnType<typeof spawnServe>> = [];
before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
});
after(async () => {
  for (const gw of gateways) gw.kill();
  await echo?.close();
  tmp.cleanup();
});

const zeros = `sha256:${'0'.repeat(64)}`;
const BAD = [
  { type: 'prom-client:getMetricsRes', requestId: 4242, metrics: [] },
  { type: 'mtlsgate:acquire', req: 1, key: 'k', rate: null, quota: null, want: 1, prefetch: false, closes: null },
  { type: 'mtlsgate:return', key: 'k', closes: 'all' },
  { type: 'mtlsgate:taken', bundle: { signedAt: 'yesterday', digest: zeros, keyId: 'k' } },
  { type: 'mtlsgate:taken', bundle: { signedAt: Date.now() + 10 * 365 * 86_400_000, digest: zeros, keyId: 'k' } },
  { type: 'mtlsgate:taken', crl: { url: 'http://x/crl', floor: null, der: 'AA==' } },
  { type: 'mtlsgate:answer', id: 1, health: { status: 'fine' } },
  { type: 'mtlsgate:nonsense' },
];

test('malformed messages from a worker are dropped and counted; the primary keeps serving, keeps writing --state-dir, and no worker takes a forged floor', async () => {
  const key = join(tmp.dir, 'ops');
  assert.equal((await run(process.execPath, [CLI, 'keygen', key])).code, 0);
  const sign = ['--sign', `${key}.key`];
  const first = await compileWithCli(writeConfig(join(tmp.dir, 'c1'), pki.dir, echo.url, ['partner-a', 'bob']), join(tmp.dir, 'first.json'), sign);
  const second = join(tmp.dir, 'second.json');
  const served = join(tmp.dir, 'served.json');
  writeFileSync(served, first);
  const inject = join(tmp.dir, 'bad-ipc.mjs');
  writeFileSync(
    inject,
    `import cluster from 'node:cluster';\nif (cluster.isWorker) process.on('SIGUSR2', () => { for (const m of ${JSON.stringify(BAD)}) process.send(m); });\n`,
  );
  const state = join(tmp.dir, 'state');
  const gw = spawnServe(
    demoServeArgs(served, pki, { admin: 'loopback', extra: ['--workers', '2', '--bundle-public-key', `${key}.pub`, '--state-dir', state] }),
    { ...process.env, NODE_OPTIONS: `--import=${inject}` },
  );
  gateways.push(gw);
  const serving = await gw.serving();
  const admin = `http://${serving.admin}`;
  process.kill((serving.pids as number[])[0], 'SIGUSR2');

  const metrics = async () => (await fetch(`${admin}/metrics`)).text();
  await waitFor('every malformed message counted', async () => /mtlsgate_worker_messages_refused_total 7/.test(await metrics()));
  const dropped = gw.lines().filter((l) => l.msg === 'message from a worker dropped: malformed');
  // Logged at the 1st, 2nd and 4th of one worker: a worker sending them without end cannot flood the log.
  assert.deepEqual(
    dropped.map((l) => l.refused),
    [1, 2, 4],
  );
  assert.match(String(dropped[0].error), /mtlsgate:acquire: acquire needs/);

  // A newer real bundle: both workers take it, and the state file records it.
  await compileWithCli(writeConfig(join(tmp.dir, 'c2'), pki.dir, echo.url, ['partner-a']), second, sign);
  copyFileSync(second, served);
  const digest = loadBundle(readFileSync(second)).digest;
  await waitFor('both workers serve the newer bundle', async () => {
    const h = (await (await fetch(`${admin}/health`)).json()) as HealthReport;
    return h.status === 'ok' && h.workers!.every((w) => w.bundle === digest);
  });
  await waitFor('the state file holds it', () => JSON.parse(readFileSync(join(state, 'state.json'), 'utf8')).bundle?.digest === digest);
  assert.ok(!gw.lines().some((l) => l.msg === 'state not saved'), 'every write of the state file succeeded');
  assert.equal(gw.child.exitCode, null, 'the primary runs');
});
