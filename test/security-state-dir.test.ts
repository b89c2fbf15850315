// docs/security.md sections 27 and 30 across a restart: `serve --state-dir DIR`.
// Before: what the gateway had taken was kept in memory only. A gateway that (re)started took the
// first bundle that verified, however old (section 30's replay, reopened by every restart), and
// the first CRL of a crl_url that verified, however old (section 27's known limit): the
// revoked certificate passed again. Now DIR/state.json keeps the signing time of the last bundle
// taken and the newest CRL per crl_url, and a restart refuses anything older.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadBundle } from '../bundle/read.ts';
import type { HealthReport } from '../runtime/admin.ts';
import { serveConfig } from '../cli/commands/serve.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { demoServeArgs, listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { createOpensslCa, type OpensslCa, type OpensslLeaf } from './helpers/openssl-pki.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { compileWithCli, curl, demoPki, run, CLI, spawnServe, writeConfig } from './helpers/serve-fixtures.ts';

const tmp = tempDir('state-dir');
let pki: Awaited<ReturnType<typeof demoPki>>;
let echo: EchoUpstream;
before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
});
type Gateway = ReturnType<typeof spawnDemoGateway>;
/** Every gateway started: killed at the end even when a test fails half-way (a live child would keep this file running). */
const started: Gateway[] = [];
function launch(...args: Parameters<typeof spawnDemoGateway>): Gateway {
  const gw = spawnDemoGateway(...args);
  started.push(gw);
  return gw;
}
after(async () => {
  for (const gw of started) gw.kill();
  await echo?.close();
  tmp.cleanup();
});

const adminOf = async (gw: Gateway) => `http://${(await gw.serving()).admin}`;
const health = async (gw: Gateway) => (await (await fetch(`${await adminOf(gw)}/health`)).json()) as HealthReport;
async function stop(gw: Gateway): Promise<void> {
  gw.child.kill('SIGTERM');
  assert.equal((await gw.exited).code, 0);
}
/** A serve that must not start: its exit status and stderr. */
async function refusedAtStart(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const gw = spawnServe(args);
  started.push(gw);
  const { code } = await gw.exited;
  return { code, stderr: gw.output().stderr };
}

describe('bundles: a restart with --state-dir refuses one signed before the last it took', () => {
  const key = join(tmp.dir, 'ops');
  const oldBundle = join(tmp.dir, 'old.json');
  const newBundle = join(tmp.dir, 'new.json');
  const served = join(tmp.dir, 'served.json');
  const state = join(tmp.dir, 'state');
  const withKey = (extra: string[] = []) => ({ admin: 'loopback' as const, extra: ['--bundle-public-key', `${key}.pub`, ...extra] });

  before(async () => {
    assert.equal((await run(process.execPath, [CLI, 'keygen', key])).code, 0);
    const sign = ['--sign', `${key}.key`];
    await compileWithCli(writeConfig(join(tmp.dir, 'old'), pki.dir, echo.url, ['partner-a', 'bob']), oldBundle, sign);
    await compileWithCli(writeConfig(join(tmp.dir, 'new'), pki.dir, echo.url, ['partner-a']), newBundle, sign);
  });

  test('serve new with --state-dir, stop, put old in its place: start-up refuses it (exit 2); new starts again', async () => {
    copyFileSync(newBundle, served);
    const gw = launch(served, pki, withKey(['--state-dir', state]));
    const newDigest = loadBundle(readFileSync(newBundle)).digest;
    assert.equal((await health(gw)).bundle.digest, newDigest);
    const signedAt = (await health(gw)).bundle.signed_at;
    await stop(gw);
    const file = join(state, 'state.json');
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    assert.deepEqual(saved.bundle, { signed_at: signedAt, digest: newDigest, key_id: saved.bundle.key_id });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(state), ['state.json'], 'written through a temporary file renamed over it: none left');

    copyFileSync(oldBundle, served);
    const refused = await refusedAtStart(demoServeArgs(served, pki, withKey(['--state-dir', state])));
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /bundle .* refused: bundle sha256:[0-9a-f]{12}… was signed at .*, before the last bundle taken before this start \(--state-dir .*\): an older bundle is refused/,
    );
    // Without the state the restart takes it: this is what --state-dir closes.
    const forgetful = launch(served, pki, withKey());
    assert.equal((await health(forgetful)).bundle.digest, loadBundle(readFileSync(oldBundle)).digest);
    await stop(forgetful);

    copyFileSync(newBundle, served);
    const again = launch(served, pki, withKey(['--state-dir', state]));
    const port = listenPort(await again.serving());
    assert.equal((await curl(`https://127.0.0.1:${port}/static/x`, pki, 'bob')).status, 403, 'bob stays removed');
    await stop(again);
  });

  test('--bundle-not-before: an older bundle is refused at start; the flag needs --bundle-public-key and a time with a zone', async () => {
    const signedAt = JSON.parse(readFileSync(join(state, 'state.json'), 'utf8')).bundle.signed_at as string;
    const refused = await refusedAtStart(demoServeArgs(oldBundle, pki, withKey(['--bundle-not-before', signedAt])));
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, new RegExp(`was signed at .*, before --bundle-not-before ${signedAt.replace(/\./g, '\\.')}`));
    const base = ['--bundle', 'b.json', '--tls-cert', 'c', '--tls-key', 'k'];
    assert.throws(() => serveConfig([...base, '--bundle-not-before', signedAt], {}), /orders signed bundles: it needs --bundle-public-key/);
    assert.throws(
      () => serveConfig([...base, '--bundle-public-key', `${key}.pub`, '--bundle-not-before', '2026-12-04 10:00'], {}),
      /ISO-8601 time with a zone/,
    );
    const env = { MTLSGATE_BUNDLE_NOT_BEFORE: '2026-12-04T10:00:00+01:00', MTLSGATE_STATE_DIR: state };
    const { config } = serveConfig([...base, '--bundle-public-key', `${key}.pub`], env);
    assert.equal(config.bundleNotBefore, Date.parse('2026-12-04T09:00:00Z'));
    assert.equal(config.stateDir, state);
  });

  test('a corrupt or unreadable state file stops start-up with a message that says what it held', async () => {
    const bad = join(tmp.dir, 'bad-state');
    mkdirSync(bad);
    writeFileSync(join(bad, 'state.json'), '{"format":"mtlsgate.state/v1","bundle":{"signed_at":"yesterday"');
    let r = await refusedAtStart(demoServeArgs(newBundle, pki, withKey(['--state-dir', bad])));
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /--state-dir: .*state\.json is not a state file mtlsgate wrote \(.*\); it holds what keeps an older bundle or CRL from being taken after a restart/,
    );
    writeFileSync(join(bad, 'state.json'), '{"format":"mtlsgate.state/v1","bundle":{"signed_at":"yesterday","digest":"x","key_id":"k"},"crls":{}}');
    r = await refusedAtStart(demoServeArgs(newBundle, pki, withKey(['--state-dir', bad])));
    assert.match(r.stderr, /"bundle" needs signed_at \(ISO-8601 UTC\)/);
    const notADir = join(tmp.dir, 'a-file');
    writeFileSync(notADir, '');
    r = await refusedAtStart(demoServeArgs(newBundle, pki, withKey(['--state-dir', notADir])));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--state-dir .*a-file: cannot make the directory: EEXIST/);
  });

  test('--workers 2: the primary is the one writer; a worker that takes a newer bundle raises the saved floor', async () => {
    const shared = join(tmp.dir, 'workers-state');
    copyFileSync(oldBundle, served);
    const gw = launch(served, pki, withKey(['--state-dir', shared, '--workers', '2']));
    await gw.serving();
    const saved = () => JSON.parse(readFileSync(join(shared, 'state.json'), 'utf8')).bundle?.digest;
    const oldDigest = loadBundle(readFileSync(oldBundle)).digest;
    await waitFor('the old bundle saved', () => saved() === oldDigest);
    copyFileSync(newBundle, served);
    await waitFor('the new bundle saved', () => saved() === loadBundle(readFileSync(newBundle)).digest);
    assert.ok(!readdirSync(shared).some((f) => f.endsWith('.tmp')));
    await stop(gw);
  });
});

describe('CRLs: a restart with --state-dir refuses a crl_url CRL older than the last it took', () => {
  let ca: OpensslCa;
  let server: Server;
  let body = '';
  const crl: Record<string, string> = {};
  const leaf: Record<string, OpensslLeaf> = {};
  const state = join(tmp.dir, 'crl-state');
  let bundle: string;

  before(async () => {
    ca = createOpensslCa('Internal CA');
    for (const name of ['stolen', 'lost', 'fine']) {
      leaf[name] = ca.issue(name, `/CN=${name}`);
      copyFileSync(leaf[name].cert, join(pki.dir, `${name}.pem`));
      copyFileSync(leaf[name].key, join(pki.dir, `${name}-key.pem`));
    }
    ca.revoke(leaf.stolen);
    crl.base = ca.gencrl(); // what anyone could have kept from before `lost` was revoked
    ca.revoke(leaf.lost);
    crl.full = ca.gencrl();
    server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(body));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // A presigned URL: its query string must not reach the state file.
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/internal.crl?sig=TOPSECRET42`;
    const cfg = join(tmp.dir, 'crl-cfg');
    mkdirSync(cfg, { recursive: true });
    writeFileSync(join(cfg, 'ca.pem'), ca.caPem);
    writeFileSync(
      join(cfg, 'config.yaml'),
      `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\nkind: revocation\nid: internal\ncrl_urls: ["${url}"]\n`,
    );
    bundle = join(tmp.dir, 'crl-bundle.json');
    await compileWithCli(cfg, bundle);
  });
  after(() => {
    server?.close();
    ca?.cleanup();
  });

  const start = () => launch(bundle, pki, { admin: 'loopback', extra: ['--state-dir', state, '--crl-stale', 'closed', '--crl-refresh', '1s'] });
  const crlOf = async (gw: Gateway) => (await health(gw)).revocation!.crl_urls[0];
  const answer = async (gw: Gateway, who: string) => {
    const r = await curl(`https://127.0.0.1:${listenPort(await gw.serving())}/ca/x`, pki, who);
    return r.status === 200 ? 'admitted' : (JSON.parse(r.body) as { code: string }).code;
  };

  test('take the full CRL, stop; the older copy served at the restart is refused and lost stays refused (curl)', async () => {
    body = crl.full;
    const first = start();
    await waitFor('the CRL taken', async () => (await crlOf(first)).fetched_at !== null);
    assert.deepEqual(
      [await answer(first, 'stolen'), await answer(first, 'lost'), await answer(first, 'fine')],
      ['mtls.cert_revoked', 'mtls.cert_revoked', 'admitted'],
    );
    await waitFor('the CRL saved', () => existsSync(join(state, 'state.json')) && /crl_number/.test(readFileSync(join(state, 'state.json'), 'utf8')));
    await stop(first);
    const saved = readFileSync(join(state, 'state.json'), 'utf8');
    assert.doesNotMatch(saved, /TOPSECRET42/, 'the URL is kept as it may be shown');
    assert.match(saved, /internal\.crl\?REDACTED/);

    body = crl.base;
    const second = start();
    const refused = await waitFor('the older CRL refused', async () => (await crlOf(second)).last_error);
    assert.match(
      refused,
      /it is older than the last CRL taken from this URL before this start \(--state-dir\) \(thisUpdate .*, cRLNumber 1; taken before: .*, 2\): a replayed copy/,
    );
    // Before: the older copy was taken and lost was admitted. Now no CRL is in use yet: closed.
    assert.equal(await answer(second, 'lost'), 'mtls.revocation_unknown');
    assert.equal(await answer(second, 'stolen'), 'mtls.revocation_unknown');

    // A newer CRL of the same CA is taken as before.
    ca.revoke(leaf.fine);
    body = ca.gencrl();
    await waitFor('the newer CRL taken', async () => (await crlOf(second)).fetched_at !== null);
    assert.deepEqual([await answer(second, 'lost'), await answer(second, 'fine')], ['mtls.cert_revoked', 'mtls.cert_revoked']);
    await stop(second);
  });
});
