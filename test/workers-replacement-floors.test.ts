// `serve --workers 2`: a worker started to replace one that died starts from the floors the
// others hold (runtime/peer-floors.ts, docs/security.md section 39). Before: it read its bundle
// and fetched its CRLs ordered only against what it had read itself (--state-dir, none here) and
// served with them; the primary told it what the others had taken only once it reported ready.
// So a bundle or CRL URL that handed the replacement an older copy (a replay of a revoked
// certificate's good standing) had it served, until that message came.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadBundle } from '../bundle/read.ts';
import type { DemoPki } from '../cli/pki.ts';
import type { HealthReport } from '../runtime/admin.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { crlBundle, serveBodies, stolenAndLost } from './helpers/crl-workers.ts';
import { createOpensslCa, type OpensslCa } from './helpers/openssl-pki.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { compileWithCli, curl, demoPki, run, CLI, writeConfig } from './helpers/serve-fixtures.ts';

const tmp = tempDir('replacement-floors');
let pki: DemoPki;
let echo: EchoUpstream;
let ca: OpensslCa;
const servers: Server[] = [];
const gateways: Array<ReturnType<typeof spawnDemoGateway>> = [];

before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
  ca = createOpensslCa('Internal CA');
});
after(async () => {
  for (const gw of gateways) gw.kill();
  for (const s of servers) s.close();
  ca?.cleanup();
  await echo?.close();
  tmp.cleanup();
});

const serveBody = (body: () => string | Buffer) => serveBodies(servers, () => ({ body: body() }));

function serveWorkers(bundle: string, extra: string[]) {
  const gw = spawnDemoGateway(bundle, pki, { admin: 'loopback', extra: ['--workers', '2', ...extra] });
  gateways.push(gw);
  return gw;
}

/** SIGKILLs the first worker; resolves with the lines of the workers started after it (ids above 2) once `until` holds for them. */
async function killFirstWorker(gw: ReturnType<typeof spawnDemoGateway>) {
  const pids = (await gw.serving()).pids as number[];
  process.kill(pids[0], 'SIGKILL');
  await waitFor('the primary saw the worker die', () => gw.lines().some((l) => l.msg === 'worker stopped unexpectedly; starting another in 1000 ms'));
}
const replacementLines = (gw: ReturnType<typeof spawnDemoGateway>) => gw.lines().filter((l) => typeof l.worker === 'number' && l.worker > 2);

test('a replacement worker refuses the older signed bundle its peers refuse, at its very start; the next replacement serves the newer one', async () => {
  const key = join(tmp.dir, 'ops');
  assert.equal((await run(process.execPath, [CLI, 'keygen', key])).code, 0);
  const sign = ['--sign', `${key}.key`];
  // Signed in this order: older < newer. The older one still pins bob.
  const older = await compileWithCli(writeConfig(join(tmp.dir, 'b-older'), pki.dir, echo.url, ['partner-a', 'bob']), join(tmp.dir, 'older.json'), sign);
  const newer = await compileWithCli(writeConfig(join(tmp.dir, 'b-newer'), pki.dir, echo.url, ['partner-a']), join(tmp.dir, 'newer.json'), sign);
  const digest = (b: Buffer) => loadBundle(b).digest;
  let served = newer;
  const url = await serveBody(() => served);
  const gw = serveWorkers(`${url}/bundle.json`, ['--bundle-public-key', `${key}.pub`, '--poll-interval', '1s']);
  const admin = `http://${(await gw.serving()).admin}`;
  const health = async () => (await (await fetch(`${admin}/health`)).json()) as HealthReport;
  assert.deepEqual(
    (await health()).workers!.map((w) => w.bundle),
    [digest(newer), digest(newer)],
  );

  // While the replacement starts, the URL hands out the older bundle (a replay).
  served = older;
  await killFirstWorker(gw);
  const first = await waitFor('the replacement served or gave up', () =>
    replacementLines(gw).find((l) => l.msg === 'worker serving' || l.msg === 'mtlsgate worker cannot start'),
  );
  // Before: the replacement served the older bundle ("worker serving" with its digest).
  assert.equal(first.msg, 'mtlsgate worker cannot start', `the replacement started with ${JSON.stringify(first)}`);
  assert.match(String(first.error), /signed at .*, before the bundle another worker took/);
  await waitFor('the primary tries again, later', () => gw.lines().some((l) => l.msg === 'worker could not start; starting another in 2000 ms'));

  served = newer;
  await waitFor('two workers serve the newer bundle', async () => {
    const h = await health();
    return h.status === 'ok' && h.workers!.length === 2 && h.workers!.every((w) => w.bundle === digest(newer));
  });
  assert.ok(!gw.lines().some((l) => l.msg === 'worker serving' && l.digest === digest(older)), 'no worker ever served the older bundle');
  assert.notEqual((await curl(`https://127.0.0.1:${listenPort(await gw.serving())}/static/x`, pki, 'bob')).status, 200);
});

test('a replacement worker takes the CRL its peers took before its own first fetch answers: the older list the URL hands it is refused', async () => {
  const { base, full } = stolenAndLost(ca, pki);
  let served = full;
  const url = await serveBody(() => served);
  const bundle = await crlBundle(tmp.dir, ca, echo.url, `${url}/internal.crl`);
  const gw = serveWorkers(bundle, ['--crl-refresh', '1s']);
  const port = listenPort(await gw.serving());
  const lost = async (n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await curl(`https://127.0.0.1:${port}/ca/x`, pki, 'lost');
      out.push(r.status === 200 ? 'admitted' : (JSON.parse(r.body) as { code: string }).code);
    }
    return out;
  };
  await waitFor('both workers took the newer list', async () => (await lost(4)).every((a) => a === 'mtls.cert_revoked'));

  // The URL hands out the older list (without `lost`) from now on: a replay.
  served = base;
  await killFirstWorker(gw);
  await waitFor('the replacement serves', () => replacementLines(gw).some((l) => l.msg === 'worker serving'));
  await waitFor('the replacement fetched the URL itself', () =>
    replacementLines(gw).some((l) => l.msg === 'CRL refresh failed; the previous list stays in use until its nextUpdate'),
  );
  const lines = replacementLines(gw).map((l) => `${l.msg}${l.error ? `: ${l.error}` : ''}`);
  const peerCopy = lines.indexOf('CRL updated (the copy another worker fetched)');
  // Before: the replacement took the older list from the URL ("CRL updated") and served with it;
  // the peers' copy came after "worker serving".
  assert.ok(peerCopy >= 0 && peerCopy < lines.indexOf('worker serving'), `the peers' CRL taken before serving:\n${lines.join('\n')}`);
  assert.ok(!lines.includes('CRL updated'), `the URL's older list was never taken:\n${lines.join('\n')}`);
  assert.ok(lines.some((l) => /older than the CRL in use/.test(l)));
  assert.deepEqual(await lost(6), Array(6).fill('mtls.cert_revoked'));
});
