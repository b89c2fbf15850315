// `serve --redis rediss://...`: the limiter talks TLS to a real redis-server started with
// --tls-port (no plain port at all). The server's certificate comes from the demo CA, which
// `serve` trusts through NODE_EXTRA_CA_CERTS (Node's way to add a private CA); without it the
// connection is refused by certificate verification and the limiter reports degraded.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DemoPki } from '../cli/pki.ts';
import { compileYaml, curlE2E, recordingUpstream, serveBundle, type RecordingUpstream } from './helpers/e2e.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { REDIS_SERVER } from './helpers/redis.ts';
import { freePort } from '../common/listen.ts';
import { demoPki, run } from './helpers/serve-fixtures.ts';

const t = tempDir('rediss');
let pki: DemoPki;
let upstream: RecordingUpstream;
let redis: ChildProcess;
let port: number;
let bundle: string;

/** redis-cli over TLS, trusting the demo CA. */
const cli = (...args: string[]) => run('redis-cli', ['--tls', '--cacert', join(pki.dir, 'ca.pem'), '-h', '127.0.0.1', '-p', String(port), ...args]);

before(async () => {
  pki = await demoPki(t.dir);
  upstream = await recordingUpstream();
  port = await freePort();
  redis = spawn(
    REDIS_SERVER,
    [
      '--port',
      '0', // no plain-text port: only TLS
      '--tls-port',
      String(port),
      '--tls-cert-file',
      join(pki.dir, 'server.pem'),
      '--tls-key-file',
      join(pki.dir, 'server-key.pem'),
      '--tls-ca-cert-file',
      join(pki.dir, 'ca.pem'),
      '--tls-auth-clients',
      'no',
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      t.dir,
    ],
    { stdio: 'ignore' },
  );
  await waitFor('redis-server answering over TLS', async () => (await cli('PING')).stdout.trim() === 'PONG', 20_000, 100);
  bundle = await compileYaml(t.dir, {
    'api.yaml': `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${upstream.url}\nauth:\n  use_certificate: true\n`,
    'key.yaml': `kind: key\nid: alice\ncertificate: ${join(pki.dir, 'alice.pem')}\naccess_rights:\n  dyn: {}\nquota_max: 3\nquota_renewal_rate: 3600\n`,
  });
});
after(async () => {
  redis?.kill('SIGKILL');
  await upstream?.close();
  t.cleanup();
});

test('rediss://: a quota of 3 shared by two gateway processes over TLS; the counter lives in Redis', async () => {
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: join(pki.dir, 'ca.pem') };
  const args = ['--redis', `rediss://127.0.0.1:${port}`, '--redis-timeout', '1s', '--on-limiter-error', 'deny'];
  const a = await serveBundle(bundle, pki, args, undefined, env);
  const b = await serveBundle(bundle, pki, args, undefined, env);
  try {
    for (const gw of [a, b]) {
      const health = await waitFor('the limiter connected', async () => {
        const h = (await (await fetch(`${gw.admin}/health`)).json()) as { limiter: { status: string } };
        return h.limiter.status === 'ok' ? h : null;
      });
      assert.equal(health.limiter.status, 'ok');
    }
    const statuses = [];
    for (const gw of [a, b, a, b]) statuses.push((await curlE2E(`${gw.base}/dyn/x`, pki, { client: 'alice' })).status);
    assert.deepEqual(statuses, [200, 200, 200, 403], 'three of the shared quota, then limit.quota on either gateway');
    const keys = (await cli('--scan', '--pattern', 'mtlsgate:*')).stdout.trim();
    assert.match(keys, /alice/, `the counter is in the TLS Redis: ${keys}`);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('rediss:// verifies the server: without the CA trusted, the limiter is degraded and --on-limiter-error decides', async () => {
  const gw = await serveBundle(bundle, pki, ['--redis', `rediss://127.0.0.1:${port}`, '--redis-timeout', '500ms', '--on-limiter-error', 'deny']);
  try {
    const health = await waitFor('a degraded limiter', async () => {
      const h = (await (await fetch(`${gw.admin}/health`)).json()) as { limiter: { status: string; detail?: string } };
      return h.limiter.status === 'degraded' ? h : null;
    });
    assert.equal(health.limiter.status, 'degraded');
    const r = await curlE2E(`${gw.base}/dyn/x`, pki, { client: 'alice' });
    assert.deepEqual([r.status, r.json().code], [429, 'limit.rate']);
    const warned = gw.proc.lines().find((l) => /Redis unavailable/.test(String(l.msg)));
    assert.match(JSON.stringify(warned ?? gw.proc.lines()), /certificate/i, 'the log says why: the certificate');
  } finally {
    await gw.stop();
  }
});
