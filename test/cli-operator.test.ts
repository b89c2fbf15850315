// Issue 16 item 9 through the built CLI: the operator's view of `mtlsgate serve`. The version in
// the start-up log line, /health and the mtlsgate_build_info metric; /ready; /health 503 while
// the rate-limit store is down under --on-limiter-error deny; warnings about a --tls-cert that
// is not a server certificate for the listening name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { issueCert, type DemoPki } from '../cli/pki.ts';
import { ensureBuilt, mtlsgate, ROOT } from './helpers/cli.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { demoPki, spawnServe, writeConfig } from './helpers/serve-fixtures.ts';
import pkg from '../package.json' with { type: 'json' };

const t = tempDir('cli-operator');
let pki: DemoPki;
let bundle: string;
before(async () => {
  ensureBuilt();
  pki = await demoPki(t.dir);
  bundle = join(t.dir, 'bundle.json');
  const r = mtlsgate(['compile', writeConfig(join(t.dir, 'cfg'), pki.dir, 'http://127.0.0.1:9', ['bob']), '-o', bundle], { cwd: ROOT });
  assert.equal(r.code, 0, r.stderr);
});
after(() => t.cleanup());

const tlsFlags = (cert = 'server', key = cert) => ['--tls-cert', join(pki.dir, `${cert}.pem`), '--tls-key', join(pki.dir, `${key}-key.pem`)];

async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('the version is in the start-up log line, /health and a metric; /ready says a bundle is loaded', async () => {
  const s = spawnServe(['--bundle', bundle, ...tlsFlags(), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  try {
    const line = await s.serving();
    assert.equal(line.version, pkg.version);
    const admin = `http://${line.admin}`;
    const health = (await (await fetch(`${admin}/health`)).json()) as { version: string; status: string };
    assert.equal(health.version, pkg.version);
    assert.equal(health.status, 'ok');
    assert.match(
      await (await fetch(`${admin}/metrics`)).text(),
      new RegExp(`^mtlsgate_build_info\\{version="${pkg.version.replace(/\./g, '\\.')}",node="[0-9.]+"\\} 1$`, 'm'),
    );
    const ready = await fetch(`${admin}/ready`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { ready: boolean; bundle: string };
    assert.equal(body.ready, true);
    assert.equal(body.bundle, line.digest);
    assert.ok(!s.lines().some((l) => l.level === 'warn' && String(l.msg).includes('--tls-cert')), 'the demo server certificate draws no warning');
  } finally {
    s.kill();
  }
});

test('/health answers 503 while Redis is down under --on-limiter-error deny, 200 under allow', async () => {
  const redis = `redis://127.0.0.1:${await deadPort()}`;
  for (const choice of ['deny', 'allow']) {
    const s = spawnServe([
      '--bundle',
      bundle,
      ...tlsFlags(),
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--redis',
      redis,
      '--redis-timeout',
      '50ms',
      '--on-limiter-error',
      choice,
    ]);
    try {
      const admin = `http://${(await s.serving()).admin}`;
      const res = await waitFor(`a degraded limiter (${choice})`, async () => {
        const r = await fetch(`${admin}/health`);
        const h = (await r.json()) as { limiter: { status: string } | null };
        return h.limiter?.status === 'degraded' ? r : null;
      });
      assert.equal(res.status, choice === 'deny' ? 503 : 200, choice);
    } finally {
      s.kill();
    }
  }
});

test('serve warns when --tls-cert is a CA, a client-only certificate, has no SAN, or no SAN for the listening name', async () => {
  const ca = pki.ca;
  const noSan = await issueCert(ca, 'no-san', { usage: 'server' });
  writeFileSync(join(pki.dir, 'no-san.pem'), noSan.certPem);
  writeFileSync(join(pki.dir, 'no-san-key.pem'), noSan.keyPem);
  const cases: Array<[string, string[], RegExp]> = [
    ['a CA', [...tlsFlags('ca'), '--listen', '127.0.0.1:0'], /is a CA certificate \(basicConstraints CA:TRUE\), not a server certificate/],
    [
      'clientAuth only',
      [...tlsFlags('alice'), '--listen', '127.0.0.1:0'],
      /is not for servers: its extended key usage lacks serverAuth \(1\.3\.6\.1\.5\.5\.7\.3\.2\)/,
    ],
    ['no SAN', [...tlsFlags('no-san'), '--listen', '127.0.0.1:0'], /has no subjectAltName/],
    ['another name', [...tlsFlags(), '--listen', '127.0.0.2:0'], /does not name the listening host 127\.0\.0\.2 \(its SANs: DNS:localhost/],
  ];
  for (const [what, flags, warning] of cases) {
    const s = spawnServe(['--bundle', bundle, ...flags, '--admin', 'off']);
    try {
      await s.serving();
      const warned = s.lines().filter((l) => l.level === 'warn' || l.level === 40);
      assert.ok(
        warned.some((l) => warning.test(String(l.msg))),
        `${what}: ${JSON.stringify(warned)}`,
      );
    } finally {
      s.kill();
    }
  }
});
