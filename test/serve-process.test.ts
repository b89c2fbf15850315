// `dist/mtlsgate.mjs serve` as users run it, a child process: the single-file build's smoke
// test, environment variables, start-up failures (exit 2), SIGHUP (server certificate and
// bundle), SIGTERM draining a slow request in flight (exit 0).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer } from 'node:net';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { BUNDLE_FORMAT } from '../bundle/types.ts';
import { createServerCert, type DemoPki } from '../cli/pki.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { compileWithCli, curl, demoPki, run, spawnServe, writeConfig, CLI } from './helpers/serve-fixtures.ts';

const t = tempDir('serve-process');
let pki: DemoPki;
let bundle: string;
/** Requests the slow upstream holds: it answers each after `delayMs`. */
const arrived: IncomingMessage[] = [];
let upstreamServer: ReturnType<typeof createServer>;
const children: Array<ReturnType<typeof spawnServe>> = [];

before(async () => {
  pki = await demoPki(t.dir);
  upstreamServer = createServer((req: IncomingMessage, res: ServerResponse) => {
    arrived.push(req);
    const delay = Number(/delay=(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url }) + '\n'), delay);
  });
  await new Promise<void>((r) => upstreamServer.listen(0, '127.0.0.1', r));
  const target = `http://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`;
  bundle = join(t.dir, 'bundle.json');
  await compileWithCli(writeConfig(join(t.dir, 'cfg'), pki.dir, target, ['partner-a']), bundle);
});
after(async () => {
  children.forEach((c) => c.kill());
  await new Promise<void>((r) => (upstreamServer.close(() => r()), upstreamServer.closeAllConnections()));
  t.cleanup();
});

function serve(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const s = spawnServe(args, env);
  children.push(s);
  return s;
}
/** `tls`: the demo server pair (a test giving its own pair leaves it out: a repeated --tls-cert is another pair). */
const baseArgs = (tls = true) => [
  '--bundle',
  bundle,
  ...(tls ? ['--tls-cert', join(pki.dir, 'server.pem'), '--tls-key', join(pki.dir, 'server-key.pem')] : []),
  '--listen',
  '127.0.0.1:0',
  '--admin',
  '127.0.0.1:0',
];
const addressOf = (line: Record<string, unknown>, field: 'listen' | 'admin') => String(line[field]);

test('dist build smoke: compile, serve, static and dynamic mTLS with curl, request log lines', async () => {
  const s = serve(baseArgs());
  const serving = await s.serving();
  const base = `https://${addressOf(serving, 'listen')}`;
  const stat = await curl(`${base}/static/report`, pki, 'partner-a');
  assert.equal(stat.status, 200, stat.body);
  assert.equal(JSON.parse(stat.body).path, '/report');
  const dyn = await curl(`${base}/dynamic/me`, pki, 'alice');
  assert.equal(dyn.status, 200, dyn.body);
  const denied = await curl(`${base}/static/report`, pki, 'mallory');
  assert.equal(denied.status, 403);
  const lines = await waitFor('three request log lines', () => {
    const l = s.lines().filter((x) => x.msg === 'request');
    return l.length >= 3 ? l : null;
  });
  const alice = lines.find((l) => l.api === 'dynamic')!;
  assert.equal(alice.key, 'alice');
  assert.equal(alice.status, 200);
  assert.equal(alice.cert_sha256, pki.clients.alice.fingerprint);
  assert.equal(typeof alice.duration_ms, 'number');
  const health = await (await fetch(`http://${addressOf(serving, 'admin')}/health`)).json();
  assert.equal((health as { status: string }).status, 'ok');
  s.child.kill('SIGTERM');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
});

test('flags come from MTLSGATE_* variables too, and a flag wins over its variable', async () => {
  const env = {
    ...process.env,
    MTLSGATE_BUNDLE: bundle,
    MTLSGATE_TLS_CERT: join(pki.dir, 'server.pem'),
    MTLSGATE_TLS_KEY: join(pki.dir, 'server-key.pem'),
    MTLSGATE_LISTEN: 'not-an-address',
    MTLSGATE_ADMIN: 'off',
    MTLSGATE_LOG_LEVEL: 'warn',
  };
  const s = serve(['--listen', '127.0.0.1:0', '--log-level', 'info'], env);
  const serving = await s.serving();
  assert.equal(serving.admin, null, 'MTLSGATE_ADMIN=off');
  assert.equal((await curl(`https://${addressOf(serving, 'listen')}/static/x`, pki, 'partner-a')).status, 200);
  s.child.kill('SIGINT');
  assert.equal((await s.exited).code, 0);
});

test('start-up failures exit 2 with a message that says what to fix', async () => {
  const blocker = createNetServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const busy = (blocker.address() as AddressInfo).port;
  const truncated = join(t.dir, 'truncated.json');
  writeFileSync(truncated, `{"format":"${BUNDLE_FORMAT}","digest":"sha256:${'0'.repeat(64)}","content":{`);
  const cases: Array<[string, string[], RegExp]> = [
    ['missing flags', ['--bundle', bundle], /missing --tls-cert \(or MTLSGATE_TLS_CERT\), --tls-key/],
    ['missing bundle', [...baseArgs(), '--bundle', join(t.dir, 'nope.json')], /cannot read --bundle .*nope\.json: ENOENT/],
    ['refused bundle', [...baseArgs(), '--bundle', truncated], /bundle .*truncated\.json refused: bundle is truncated/],
    [
      'unreadable certificate',
      [...baseArgs(false), '--tls-cert', join(t.dir, 'missing.pem'), '--tls-key', join(pki.dir, 'server-key.pem')],
      /cannot read --tls-cert .*missing\.pem: ENOENT/,
    ],
    [
      'key of another certificate',
      [...baseArgs(false), '--tls-cert', join(pki.dir, 'server.pem'), '--tls-key', join(pki.dir, 'alice-key.pem')],
      /not a usable certificate and matching private key/,
    ],
    ['busy port', [...baseArgs(), '--listen', `127.0.0.1:${busy}`], /cannot listen on 127\.0\.0\.1:\d+ \(--listen\): the address is already in use/],
    ['bad duration', [...baseArgs(), '--drain-timeout', '10 parsecs'], /--drain-timeout must be a duration like 500ms, 30s or 2m/],
  ];
  try {
    for (const [what, args, message] of cases) {
      const r = await run(process.execPath, [CLI, 'serve', ...args], { timeoutMs: 30_000 });
      assert.equal(r.code, 2, `${what}: exit status (stderr: ${r.stderr})`);
      assert.match(r.stderr, message, what);
    }
  } finally {
    blocker.close();
  }
});

test('SIGHUP reloads the server certificate; SIGTERM lets a slow request finish, refuses new connections, exits 0', async () => {
  const certDir = tempDir('hup');
  const certFile = join(certDir.dir, 'server.pem');
  const keyFile = join(certDir.dir, 'server-key.pem');
  writeFileSync(certFile, pki.server.certPem);
  writeFileSync(keyFile, pki.server.keyPem);
  const s = serve([...baseArgs(false), '--tls-cert', certFile, '--tls-key', keyFile, '--drain-timeout', '15s']);
  const serving = await s.serving();
  const [host, port] = addressOf(serving, 'listen').split(':');
  const peerFingerprint = () =>
    new Promise<string>((resolvePeer, reject) => {
      const socket = connect({ host, port: Number(port), servername: 'localhost', rejectUnauthorized: false }, () => {
        const fp = socket.getPeerX509Certificate()!.fingerprint256.replace(/:/g, '').toLowerCase();
        socket.destroy();
        resolvePeer(fp);
      });
      socket.on('error', reject);
    });
  try {
    assert.equal(await peerFingerprint(), pki.server.fingerprint);
    const renewed = await createServerCert(pki.ca);
    writeFileSync(certFile, renewed.certPem);
    writeFileSync(keyFile, renewed.keyPem);
    s.child.kill('SIGHUP');
    await waitFor('server certificate reloaded', () => s.lines().some((l) => l.msg === 'server certificate reloaded'));
    assert.equal(await peerFingerprint(), renewed.fingerprint, 'new connections get the renewed certificate');

    const before = arrived.length;
    const slow = curl(`https://localhost:${port}/static/slow?delay=1500`, pki, 'partner-a');
    await waitFor('the slow request at the upstream', () => arrived.length > before);
    s.child.kill('SIGTERM');
    await waitFor('draining', () => s.lines().some((l) => l.msg === 'draining: no new connections, finishing requests in flight'));
    await assert.rejects(curl(`https://localhost:${port}/static/x`, pki, 'partner-a'), /curl .* failed/, 'no new connections while draining');
    const answer = await slow;
    assert.equal(answer.status, 200, 'the request in flight completed');
    assert.deepEqual(await s.exited, { code: 0, signal: null });
    assert.ok(s.lines().some((l) => l.msg === 'mtlsgate stopped'));
  } finally {
    certDir.cleanup();
  }
});
