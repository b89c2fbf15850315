// `serve --workers 2`: a worker that lies about what it took does not move the set's floors
// (runtime/cluster/verify-taken.ts, docs/security.md section 42). A module loaded into every
// worker (NODE_OPTIONS=--import) plays a worker taken over through its request path: on SIGUSR2
// it sends the primary the well-formed messages the test wrote to a file. Before: the primary
// believed them: a bundle record "signed" four minutes ahead raised the other worker's floor (it
// refused the next real bundle, signed now) and went into --state-dir's file; a CRL record with
// the real list's bytes and a cRLNumber of ffffffff went into the file and to every
// replacement, which then refused the real list (its number is lower).
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseCrl } from '../bundle/crl.ts';
import { loadBundle } from '../bundle/read.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import type { HealthReport } from '../runtime/admin.ts';
import { demoServeArgs, listenPort } from './helpers/demo-gateway.ts';
import { crlBundle, crlWorkersSetup, serveBodies, stolenAndLost } from './helpers/crl-workers.ts';
import { createOpensslCa } from './helpers/openssl-pki.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { CLI, compileWithCli, curl, run, spawnServe, writeConfig } from './helpers/serve-fixtures.ts';

const setup = crlWorkersSetup('forged-floors', 'Forged Floors CA');
const { tmp, servers, gateways } = setup;

/** serve --workers 2 with every worker ready to send, on SIGUSR2, the messages in the file `forged` names. */
function serveWithLiar(name: string, args: string[]) {
  const forged = join(tmp.dir, `${name}-forged.json`);
  const inject = join(tmp.dir, `${name}-liar.mjs`);
  writeFileSync(
    inject,
    `import cluster from 'node:cluster';\nimport { readFileSync } from 'node:fs';\nif (cluster.isWorker) process.on('SIGUSR2', () => { for (const m of JSON.parse(readFileSync(${JSON.stringify(forged)}, 'utf8'))) process.send(m); });\n`,
  );
  const gw = spawnServe(args, { ...process.env, NODE_OPTIONS: `--import=${inject}` });
  gateways.push(gw);
  return {
    gw,
    /** Worker 1 sends `messages`. */
    lie: async (messages: unknown[]) => {
      writeFileSync(forged, JSON.stringify(messages));
      process.kill(((await gw.serving()).pids as number[])[0], 'SIGUSR2');
    },
  };
}

const refusedCount = async (admin: string) =>
  Number(/mtlsgate_worker_messages_refused_total (\d+)/.exec(await (await fetch(`${admin}/metrics`)).text())?.[1] ?? 0);
const stateOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));

test('a bundle record a worker makes up (signed four minutes ahead, no or a false signature) moves no floor: the other worker takes the next real bundle', async () => {
  const key = join(tmp.dir, 'ops');
  assert.equal((await run(process.execPath, [CLI, 'keygen', key])).code, 0);
  const sign = ['--sign', `${key}.key`];
  const first = await compileWithCli(writeConfig(join(tmp.dir, 'b1'), setup.pki.dir, setup.echo.url, ['partner-a', 'bob']), join(tmp.dir, 'first.json'), sign);
  const served = join(tmp.dir, 'served.json');
  writeFileSync(served, first);
  const state = join(tmp.dir, 'bundle-state');
  const { gw, lie } = serveWithLiar(
    'bundle',
    demoServeArgs(served, setup.pki, { admin: 'loopback', extra: ['--workers', '2', '--bundle-public-key', `${key}.pub`, '--state-dir', state] }),
  );
  const admin = `http://${(await gw.serving()).admin}`;
  const keyId = String(loadBundle(first).signature).split(':')[1];
  const ahead = Date.now() + 4 * 60_000;
  const digest = `sha256:${randomBytes(32).toString('hex')}`;
  const falseSignature = `ed25519:${keyId}:${new Date(ahead).toISOString()}:${randomBytes(64).toString('base64')}`;
  await lie([
    { type: 'mtlsgate:taken', bundle: { signedAt: ahead, digest, keyId } },
    { type: 'mtlsgate:taken', bundle: { signedAt: ahead, digest, keyId, signature: falseSignature } },
  ]);
  // Before: the primary took them (the state file says so); now it drops both, counted.
  await waitFor('the primary dealt with both', async () => (await refusedCount(admin)) === 2 || stateOf(state).bundle?.digest === digest);
  assert.equal(stateOf(state).bundle.digest, loadBundle(first).digest, 'the state file keeps the real bundle');
  // The counter can be read before the primary's log lines reach the pipe: wait for both lines.
  const droppedLines = () => gw.lines().filter((l) => l.msg === 'message from a worker dropped: its floor does not verify');
  await waitFor('both drops are logged', () => droppedLines().length >= 2);
  const dropped = droppedLines();
  assert.match(String(dropped[0]?.error), /no signature sent with it/);
  assert.match(String(dropped[1]?.error), /does not verify with key/);

  // A real bundle signed now: before, the other worker refused it ("before the bundle another worker took").
  const second = await compileWithCli(writeConfig(join(tmp.dir, 'b2'), setup.pki.dir, setup.echo.url, ['partner-a']), join(tmp.dir, 'second.json'), sign);
  copyFileSync(join(tmp.dir, 'second.json'), served);
  const secondDigest = loadBundle(second).digest;
  await waitFor('both workers serve the real newer bundle', async () => {
    const h = (await (await fetch(`${admin}/health`)).json()) as HealthReport;
    return h.status === 'ok' && h.workers!.every((w) => w.bundle === secondDigest);
  });
  await waitFor('the state file holds it', () => stateOf(state).bundle.digest === secondDigest);
  assert.ok(!gw.lines().some((l) => /before the bundle another worker took/.test(String(l.error))), 'no worker refused the real bundle');
});

test('a CRL record a worker makes up (the real list with a cRLNumber of ffffffff) moves no floor: a replacement takes the real list', async () => {
  const { full } = stolenAndLost(setup.ca, setup.pki);
  const url = await serveBodies(servers, () => ({ body: full }));
  mkdirSync(join(tmp.dir, 'crl'));
  const bundle = await crlBundle(join(tmp.dir, 'crl'), setup.ca, setup.echo.url, `${url}/internal.crl`);
  const state = join(tmp.dir, 'crl-state');
  const { gw, lie } = serveWithLiar(
    'crl',
    demoServeArgs(bundle, setup.pki, { admin: 'loopback', extra: ['--workers', '2', '--crl-refresh', '1s', '--state-dir', state] }),
  );
  const serving = await gw.serving();
  const admin = `http://${serving.admin}`;
  const real = parseCrl(Buffer.from(full));
  await waitFor('the state file holds the real list', () =>
    Object.values(stateOf(state).crls).some((c) => (c as { crl_number: string }).crl_number === real.number),
  );
  const caFingerprint = fingerprintOf(new X509Certificate(setup.ca.caPem).raw);
  const floor = { ca: caFingerprint, thisUpdate: real.thisUpdate.getTime(), number: 'ffffffff' };
  await lie([
    { type: 'mtlsgate:taken', crl: { url: `${url}/internal.crl`, floor, der: Buffer.from(full).toString('base64') } },
    {
      type: 'mtlsgate:taken',
      crl: { url: `${url}/internal.crl`, floor, der: Buffer.from(full).toString('base64'), issuer: new X509Certificate(setup.ca.caPem).raw.toString('base64') },
    },
  ]);
  const numbers = () => Object.values(stateOf(state).crls).map((c) => (c as { crl_number: string }).crl_number);
  await waitFor('the primary dealt with both', async () => (await refusedCount(admin)) === 2 || numbers().includes('ffffffff'));
  assert.deepEqual(numbers(), [real.number], 'the state file keeps the real cRLNumber');
  // The counter can be read before the primary's log lines reach the pipe: wait for both lines.
  const droppedLines = () => gw.lines().filter((l) => l.msg === 'message from a worker dropped: its floor does not verify');
  await waitFor('both drops are logged', () => droppedLines().length >= 2);
  const dropped = droppedLines();
  assert.match(String(dropped[0]?.error), /the CRL and its CA certificate were not sent with it/);
  assert.match(String(dropped[1]?.error), /the floor sent .* is not the CRL's own/);

  // The other worker dies; its replacement starts from what the set took. Before: from
  // ffffffff, so it refused the real list from its peers and from the URL alike.
  process.kill((serving.pids as number[])[1], 'SIGKILL');
  const replacement = () => gw.lines().filter((l) => typeof l.worker === 'number' && l.worker > 2);
  await waitFor('the replacement serves', () => replacement().some((l) => l.msg === 'worker serving'));
  await waitFor('the replacement took the real list', () => replacement().some((l) => String(l.msg).startsWith('CRL updated')));
  assert.ok(!replacement().some((l) => /older than/.test(String(l.error))), 'the replacement refused no real list');
  const port = listenPort(serving);
  for (let i = 0; i < 4; i++) assert.notEqual((await curl(`https://127.0.0.1:${port}/ca/x`, setup.pki, 'lost')).status, 200, 'lost is revoked on every worker');
});

test("a CRL of a worker's own CA (signed by it) takes no place of the real CA's floor: a restart still refuses the real CA's older list", async () => {
  // Section 42's known limit, closed in section 46: one floor per URL, so the worker's own CA took
  // the real CA's place in the state file, and a restart took the real CA's older list again.
  const real = createOpensslCa('Planted Floor CA');
  const own = createOpensslCa('A Worker Own CA');
  try {
    const { base, full } = stolenAndLost(real, setup.pki);
    let body = full;
    const url = `${await serveBodies(servers, () => ({ body }))}/internal.crl`;
    mkdirSync(join(tmp.dir, 'own'));
    const bundle = await crlBundle(join(tmp.dir, 'own'), real, setup.echo.url, url);
    const state = join(tmp.dir, 'own-state');
    const { gw, lie } = serveWithLiar(
      'own',
      demoServeArgs(bundle, setup.pki, { admin: 'loopback', extra: ['--workers', '2', '--crl-refresh', '1s', '--state-dir', state] }),
    );
    const admin = `http://${(await gw.serving()).admin}`;
    const fingerprint = (pem: string) => fingerprintOf(new X509Certificate(pem).raw);
    const floorsOf = (): Array<{ ca: string; crl_number: string }> => [stateOf(state).crls[url] ?? []].flat();
    const realNumber = parseCrl(Buffer.from(full)).number;
    await waitFor('the state file holds the real list', () => floorsOf().some((f) => f.crl_number === realNumber));
    const planted = own.gencrl();
    const parsed = parseCrl(Buffer.from(planted));
    const floor = { ca: fingerprint(own.caPem), thisUpdate: parsed.thisUpdate.getTime(), number: parsed.number };
    await lie([
      {
        type: 'mtlsgate:taken',
        crl: { url, floor, der: Buffer.from(planted).toString('base64'), issuer: new X509Certificate(own.caPem).raw.toString('base64') },
      },
    ]);
    // It verifies (the worker's CA signed it), so it is kept, beside the real CA's floor.
    await waitFor("the worker's CA's floor is in the state file", () => floorsOf().some((f) => f.ca === `sha256:${floor.ca}`));
    assert.equal(await refusedCount(admin), 0);
    // Before: the URL's one floor was now the worker's CA's; the real CA's was gone.
    assert.deepEqual(
      floorsOf().find((f) => f.ca === `sha256:${fingerprint(real.caPem)}`)?.crl_number,
      realNumber,
      "the real CA's floor stays in the state file",
    );
    gw.kill();
    await gw.exited;

    // Restarted while the URL hands out the real CA's older list, without `lost`.
    body = base;
    const again = spawnServe(
      demoServeArgs(bundle, setup.pki, { admin: 'loopback', extra: ['--crl-refresh', '1s', '--crl-stale', 'closed', '--state-dir', state] }),
    );
    gateways.push(again);
    const serving = await again.serving();
    const health = async () => ((await (await fetch(`http://${serving.admin}/health`)).json()) as HealthReport).revocation?.crl_urls[0];
    await waitFor('the older list fetched', async () => (await health())?.last_error ?? (await health())?.fetched_at);
    // Before: taken (no floor for the real CA), and lost was admitted.
    assert.match(String((await health())?.last_error), /older than the last CRL taken from this URL before this start/);
    const r = await curl(`https://127.0.0.1:${listenPort(serving)}/ca/x`, setup.pki, 'lost');
    assert.notEqual(r.status, 200, 'lost is not admitted');
  } finally {
    real.cleanup();
    own.cleanup();
  }
});

test('CRLs a worker reports for URLs nobody configured: the primary keeps at most 64 URLs, the rest dropped with a log line (section 49)', async () => {
  // Section 46's known limit: the primary, holding no bundle, kept every verified CRL a worker
  // reported, for any URL, bytes and all, and wrote each URL to the state file with no bound.
  const { full } = stolenAndLost(setup.ca, setup.pki);
  const url = `${await serveBodies(servers, () => ({ body: full }))}/real.crl`;
  mkdirSync(join(tmp.dir, 'many'));
  const bundle = await crlBundle(join(tmp.dir, 'many'), setup.ca, setup.echo.url, url);
  const state = join(tmp.dir, 'many-state');
  const { gw, lie } = serveWithLiar('many', demoServeArgs(bundle, setup.pki, { admin: 'loopback', extra: ['--workers', '2', '--state-dir', state] }));
  const admin = `http://${(await gw.serving()).admin}`;
  await waitFor('the state file holds the real list', () => stateOf(state).crls?.[url] !== undefined);
  const own = createOpensslCa('A Worker Many URLs CA');
  try {
    const planted = own.gencrl();
    const parsed = parseCrl(Buffer.from(planted));
    const crl = (n: number) => ({
      url: `http://nobody-configured.invalid/${n}.crl`,
      floor: { ca: fingerprintOf(new X509Certificate(own.caPem).raw), thisUpdate: parsed.thisUpdate.getTime(), number: parsed.number },
      der: Buffer.from(planted).toString('base64'),
      issuer: new X509Certificate(own.caPem).raw.toString('base64'),
    });
    await lie(Array.from({ length: 70 }, (_, n) => ({ type: 'mtlsgate:taken', crl: crl(n) })));
    // 63 more URLs beside the real one are kept; 7 dropped. Before: all 70 went into the file.
    await waitFor('the primary dropped the URLs past 64', async () => (await refusedCount(admin)) >= 7 || Object.keys(stateOf(state).crls).length > 64);
    await waitFor('the state file has the 63 kept', () => Object.keys(stateOf(state).crls).length === 64);
    assert.equal(await refusedCount(admin), 7);
    assert.ok(stateOf(state).crls[url] !== undefined, 'the real URL stays');
    const dropped = () => gw.lines().filter((l) => l.msg === 'message from a worker dropped: over what the primary keeps of CRLs');
    await waitFor('the drop is logged', () => dropped().length >= 1);
    assert.match(String(dropped()[0].error), /64 crl_urls are kept already, not one more/);
  } finally {
    own.cleanup();
  }
});
