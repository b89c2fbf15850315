// `serve --workers 2`: what one worker takes reaches the others (runtime/peer-floors.ts,
// docs/workers.md). Every worker follows the bundle URL and the crl_urls by itself. Before: a
// worker that fetched a CRL revoking `lost` refused it while the other, handed the older list by
// the URL (a CDN edge behind, a replayed copy), kept admitting it on every connection it got;
// and a worker handed an older signed bundle by the URL served it while the other served the
// newer one. Now the taker tells the primary, which tells the others: they take the same CRL
// bytes (verified as if fetched) and raise their bundle floor. A replacement starts from them (below).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadBundle } from '../bundle/read.ts';
import type { HealthReport } from '../runtime/admin.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { crlBundle, crlWorkersSetup, serveBodies as serveBodiesOn, stolenAndLost } from './helpers/crl-workers.ts';
import { createOpensslCa } from './helpers/openssl-pki.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { compileWithCli, curl, run, CLI, writeConfig } from './helpers/serve-fixtures.ts';

const setup = crlWorkersSetup('peer-floors', 'Internal CA');
const { tmp, servers, gateways } = setup;

const serveBodies = (answer: () => { body: string | Buffer; delayMs?: number }) => serveBodiesOn(servers, answer);

function serveWorkers(bundle: string, extra: string[]) {
  const gw = spawnDemoGateway(bundle, setup.pki, { admin: 'loopback', extra: ['--workers', '2', ...extra] });
  gateways.push(gw);
  return gw;
}

/** `count` requests, each its own curl and TLS connection: round-robin spreads them over both workers. */
async function answers(gw: ReturnType<typeof spawnDemoGateway>, path: string, who: string, count: number): Promise<string[]> {
  const port = listenPort(await gw.serving());
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = await curl(`https://127.0.0.1:${port}${path}`, setup.pki, who);
    out.push(r.status === 200 ? 'admitted' : (JSON.parse(r.body) as { code: string }).code);
  }
  return out;
}

test('a CRL one worker fetched is taken by the other, which the URL keeps handing the older list: a revoked certificate is refused on every connection', async () => {
  const { base, full } = stolenAndLost(setup.ca, setup.pki);
  // The newer list goes to one fetch only; every other fetch gets the older one.
  let newerOnce = false;
  let newerServed = false;
  const url = await serveBodies(() => {
    if (!newerOnce || newerServed) return { body: base };
    newerServed = true;
    return { body: full };
  });
  const bundle = await crlBundle(tmp.dir, setup.ca, setup.echo.url, `${url}/internal.crl`);
  const gw = serveWorkers(bundle, ['--crl-refresh', '1s', '--crl-stale', 'closed']);
  await waitFor('both workers hold the older list', async () => (await answers(gw, '/ca/x', 'stolen', 2)).every((a) => a === 'mtls.cert_revoked'));
  assert.deepEqual(await answers(gw, '/ca/x', 'lost', 4), ['admitted', 'admitted', 'admitted', 'admitted']);

  newerOnce = true;
  await waitFor('the newer list fetched by one worker', () => newerServed);
  // Both workers fetch every second: the other one gets the older list again, at least twice.
  await new Promise((r) => setTimeout(r, 2_500));
  assert.deepEqual(await answers(gw, '/ca/x', 'lost', 6), Array(6).fill('mtls.cert_revoked'));
  assert.ok(
    gw.lines().some((l) => l.msg === 'CRL updated (the copy another worker fetched)'),
    'the other worker took the copy the first one fetched',
  );
});

test('a signed bundle one worker took raises the floor of the other: the older bundle the URL then hands it is refused', async () => {
  const key = join(tmp.dir, 'ops');
  assert.equal((await run(process.execPath, [CLI, 'keygen', key])).code, 0);
  const sign = ['--sign', `${key}.key`];
  // Signed in this order: first < older < newer.
  const first = await compileWithCli(
    writeConfig(join(tmp.dir, 'b-first'), setup.pki.dir, setup.echo.url, ['partner-a', 'bob']),
    join(tmp.dir, 'first.json'),
    sign,
  );
  const older = await compileWithCli(
    writeConfig(join(tmp.dir, 'b-older'), setup.pki.dir, setup.echo.url, ['partner-a', 'bob'], true),
    join(tmp.dir, 'older.json'),
    sign,
  );
  const newer = await compileWithCli(writeConfig(join(tmp.dir, 'b-newer'), setup.pki.dir, setup.echo.url, ['partner-a']), join(tmp.dir, 'newer.json'), sign);
  const digest = (b: Buffer) => loadBundle(b).digest;
  // After the switch the newer bundle goes to one poll; every later poll gets the older one, a
  // moment later (what the primary's message needs to arrive first, with room to spare).
  let switched = false;
  let newerServed = false;
  let olderServed = 0;
  const url = await serveBodies(() => {
    if (!switched) return { body: first };
    if (!newerServed) {
      newerServed = true;
      return { body: newer };
    }
    olderServed++;
    return { body: older, delayMs: 300 };
  });
  const gw = serveWorkers(`${url}/bundle.json`, ['--bundle-public-key', `${key}.pub`, '--poll-interval', '1s']);
  const admin = `http://${(await gw.serving()).admin}`;
  const workers = async () => ((await (await fetch(`${admin}/health`)).json()) as HealthReport).workers!.map((w) => w.bundle);
  assert.deepEqual(await workers(), [digest(first), digest(first)]);

  switched = true;
  await waitFor('one worker serves the newer bundle', async () => (await workers()).includes(digest(newer)));
  await waitFor('the older bundle handed out three times', () => olderServed >= 3);
  await new Promise((r) => setTimeout(r, 500));
  const serving = await workers();
  // Before: the other worker took the older bundle (signed after the first), and served it.
  assert.ok(!serving.includes(digest(older)), `no worker serves the older bundle: ${JSON.stringify(serving)}`);
  assert.ok(serving.includes(digest(newer)));
  assert.ok(gw.lines().some((l) => /signed at .*, before the bundle another worker took/.test(String(l.error ?? ''))));
});

// Session 13 (docs/security.md section 39): a worker started to replace one that died starts from
// the floors the others hold. Before, the primary told it what they had taken only once it
// reported ready: it read its bundle and fetched its CRLs against what it had read itself (no
// --state-dir here: nothing) and served with them, so an older copy the URL handed it was served.
const serveBody = (body: () => string | Buffer) => serveBodies(() => ({ body: body() }));

/** SIGKILLs the first worker; resolves once the primary has seen it die (it forks a replacement 1 s later). */
async function killFirstWorker(gw: ReturnType<typeof spawnDemoGateway>) {
  const pids = (await gw.serving()).pids as number[];
  process.kill(pids[0], 'SIGKILL');
  await waitFor('the primary saw the worker die', () => gw.lines().some((l) => l.msg === 'worker stopped unexpectedly; starting another in 1000 ms'));
}
const replacementLines = (gw: ReturnType<typeof spawnDemoGateway>) => gw.lines().filter((l) => typeof l.worker === 'number' && l.worker > 2);

test('a replacement worker refuses the older signed bundle its peers refuse, at its very start; the next replacement serves the newer one', async () => {
  const key = join(tmp.dir, 'ops-replacement');
  assert.equal((await run(process.execPath, [CLI, 'keygen', key])).code, 0);
  const sign = ['--sign', `${key}.key`];
  // Signed in this order: older < newer. The older one still pins bob.
  const older = await compileWithCli(
    writeConfig(join(tmp.dir, 'r-older'), setup.pki.dir, setup.echo.url, ['partner-a', 'bob']),
    join(tmp.dir, 'r-older.json'),
    sign,
  );
  const newer = await compileWithCli(writeConfig(join(tmp.dir, 'r-newer'), setup.pki.dir, setup.echo.url, ['partner-a']), join(tmp.dir, 'r-newer.json'), sign);
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
  assert.notEqual((await curl(`https://127.0.0.1:${listenPort(await gw.serving())}/static/x`, setup.pki, 'bob')).status, 200);
});

test('a replacement worker takes the CRL its peers took before its own first fetch answers: the older list the URL hands it is refused', async (t) => {
  // A CA of its own: the first CRL test issued `stolen` and `lost` under the other one.
  const ownCa = createOpensslCa('Replacement CA');
  t.after(() => ownCa.cleanup());
  const { base, full } = stolenAndLost(ownCa, setup.pki);
  let served = full;
  const url = await serveBody(() => served);
  mkdirSync(join(tmp.dir, 'replacement'));
  const bundle = await crlBundle(join(tmp.dir, 'replacement'), ownCa, setup.echo.url, `${url}/internal.crl`);
  const gw = serveWorkers(bundle, ['--crl-refresh', '1s']);
  const port = listenPort(await gw.serving());
  const lost = async (n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await curl(`https://127.0.0.1:${port}/ca/x`, setup.pki, 'lost');
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
