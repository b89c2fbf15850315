// /health with the limiter wired in: an unreachable Redis (--redis) makes the instance
// "degraded" while requests keep being served; /metrics carries the limiter's gauges too.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startEchoUpstream } from '../support/echo-upstream.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { compile, curl, demoPki, startInProcess, writeConfig } from './helpers/serve-fixtures.ts';

const t = tempDir('serve-health');
after(() => t.cleanup());

test('an unreachable Redis: /health is degraded with the limiter detail, requests are still served', async () => {
  const pki = await demoPki(t.dir);
  const upstream = await startEchoUpstream({ name: 'echo', port: 0 });
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const bundle = join(t.dir, 'bundle.json');
  await compile(writeConfig(join(t.dir, 'cfg'), pki.dir, `http://127.0.0.1:${upstream.address.port}`, ['partner-a']), bundle);
  const gw = await startInProcess({ bundle, redisUrl: `redis://127.0.0.1:${deadPort}`, redisTimeoutMs: 50 }, pki);
  try {
    const health = await waitFor('a degraded limiter', async () => {
      const h = (await (await fetch(`${gw.admin}/health`)).json()) as { status: string; limiter: { status: string; detail?: string } | null };
      return h.limiter?.status === 'degraded' ? h : null;
    });
    assert.equal(health.status, 'degraded');
    assert.equal(typeof health.limiter!.detail, 'string');
    assert.equal((await curl(`${gw.base}/static/x`, pki, 'partner-a')).status, 200, 'a key without limits never waits for Redis');
    assert.match(await (await fetch(`${gw.admin}/metrics`)).text(), /^mtlsgate_limiter_degraded 1$/m);
    assert.ok(gw.logs.some((l) => l.msg === 'rate-limit store not reachable yet; serving, limited keys decided by --on-limiter-error'));
  } finally {
    await gw.running.stop('test');
    await upstream.close();
  }
});
