// `mtlsgate serve --client-cert-header ... --trusted-proxies ... --listen-plain ...` through the
// built CLI: the start-up line names the listeners, curl from loopback (a trusted proxy) with
// the header is admitted by a pinned certificate, and the header never reaches the upstream.
// The behaviour in detail is tested in-process: test/gateway-cert-header.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { demoBundleFixture } from './helpers/demo-bundle.ts';
import { spawnDemoGateway } from './helpers/demo-gateway.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { run } from './helpers/serve-fixtures.ts';

const demo = demoBundleFixture('serve-behind-proxy', ['partner-a']);

async function curlStatus(url: string, headers: string[]): Promise<{ status: number; body: string }> {
  const r = await run('curl', ['-sS', '--max-time', '20', '-w', '\n%{http_code}', ...headers.flatMap((h) => ['-H', h]), url]);
  assert.equal(r.code, 0, r.stderr);
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, nl) };
}

test('serve behind a load balancer: Client-Cert on --listen-plain from a trusted address', async () => {
  const s = spawnDemoGateway(demo.bundle, demo.pki, {
    extra: ['--listen-plain', '127.0.0.1:0', '--client-cert-header', 'client-cert', '--trusted-proxies', '127.0.0.1/32,::1'],
  });
  try {
    const line = await s.serving();
    assert.equal(line.client_cert_header, 'client-cert');
    assert.deepEqual(line.trusted_proxies, ['127.0.0.1/32', '::1']);
    const plain = `http://${String(line.listen_plain)}`;
    const cert = (name: string) => `:${new X509Certificate(demo.pki.clients[name as 'bob'].certPem).raw.toString('base64')}:`;
    const ok = await curlStatus(`${plain}/static/hello`, [`Client-Cert: ${cert('partner-a')}`]);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(JSON.parse(ok.body).headers['client-cert'], undefined, 'the header never reaches the upstream');
    const bob = await curlStatus(`${plain}/static/hello`, [`Client-Cert: ${cert('bob')}`]);
    assert.equal(JSON.parse(bob.body).code, 'mtls.cert_not_allowed');
    const log = await waitFor('the request log line', () => s.lines().find((l) => l.path === '/static/hello' && l.status === 200), 30_000, 50);
    assert.equal(log.cert_sha256, demo.pki.clients['partner-a'].fingerprint, 'logged as a handshake certificate would be');
  } finally {
    s.kill();
  }
});
