// The drain `mtlsgate serve` does on SIGTERM (docs/request-path.md, "Shutdown"), end to end:
// YAML -> CLI compile -> serve (child process) -> keep-alive mTLS clients. An idle keep-alive
// connection is closed at once; a request in flight finishes, its answer carries
// `Connection: close` and its connection closes after it; the process exits 0.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { e2eFixture, serveBundle } from './helpers/e2e.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { demoClientAgent } from './helpers/serve-fixtures.ts';

const e2e = e2eFixture('e2e-drain', ({ pki, upstream }) => ({
  'api.yaml': `kind: api\nid: pinned\nproxy:\n  listen_path: /pinned/\n  target_url: ${upstream.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n  - ${join(pki.dir, 'alice.pem')}\n`,
}));

/** A keep-alive client over one TLS connection, presenting alice's certificate. */
function keepAlive() {
  const agent = demoClientAgent(e2e.pki, 'alice', 1);
  let socket: Socket | null = null;
  let closedAt: number | null = null;
  const get = (url: string) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
      const req = request(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('socket', (s: Socket) => {
        if (socket !== s) s.once('close', () => (closedAt = Date.now()));
        socket = s;
      });
      req.on('error', reject);
      req.end();
    });
  return { get, closed: () => closedAt !== null, destroy: () => agent.destroy() };
}

describe('drain on SIGTERM', () => {
  test('the answer in flight carries Connection: close; an idle keep-alive connection is closed at once; exit 0', async () => {
    const gw = await serveBundle(e2e.bundle, e2e.pki, ['--drain-timeout', '30s']);
    const idle = keepAlive();
    const busy = keepAlive();
    try {
      const first = await idle.get(`${gw.base}/pinned/warm`);
      assert.equal(first.status, 200);
      assert.notEqual(first.headers.connection, 'close', 'keep-alive before the drain');
      const before = e2e.upstream.requests.length;
      // Held at the upstream until released: in flight for as long as the test needs.
      const slow = busy.get(`${gw.base}/pinned/hold/slow`);
      await waitFor('the slow request at the upstream', () => e2e.upstream.requests.length > before);
      gw.proc.child.kill('SIGTERM');
      await waitFor('the drain to begin', () => gw.proc.lines().some((l) => String(l.msg).startsWith('draining')), 20_000);
      // Closed while the slow request is still in flight: the drain did not wait for it.
      await waitFor('the idle connection to be closed by the gateway', () => idle.closed(), 20_000);
      assert.equal(busy.closed(), false, 'the busy connection stays open for its request');
      e2e.upstream.release();
      const answer = await slow;
      assert.equal(answer.status, 200, answer.body);
      assert.equal(answer.headers.connection, 'close', 'the answer finished during the drain says the connection ends');
      await waitFor('the busy connection closed after its answer', () => busy.closed(), 20_000);
      assert.deepEqual(await gw.proc.exited, { code: 0, signal: null });
    } finally {
      e2e.upstream.release();
      idle.destroy();
      busy.destroy();
      gw.proc.kill();
    }
  });
});
