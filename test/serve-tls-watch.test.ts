// A server certificate renewed on disk is served without a SIGHUP (runtime/tls-follow.ts),
// through the built CLI: a Kubernetes Secret volume's update (new timestamped directory, the
// "..data" link renamed over, tls.crt/tls.key links unchanged) and an in-place renewal written
// one file at a time, where the certificate written before its key is refused (the old pair
// serves on) and the key's write completes the pair. curl verifies the served certificate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCert } from '../cli/pki.ts';
import { demoBundleFixture } from './helpers/demo-bundle.ts';
import { servedCn } from './helpers/demo-gateway.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { curlWith } from './helpers/portal-fixtures.ts';
import { spawnServe } from './helpers/serve-fixtures.ts';

const demo = demoBundleFixture('serve-tls-watch', ['partner-a']);

/** A server certificate for localhost with subject CN=NAME, as PEM texts. */
const serverPair = (name: string) => issueCert(demo.pki.ca, name, { dns: ['localhost'], usage: 'server' });

/** curl (verifying the served certificate against the demo CA) with partner-a's certificate: the status. */
async function curlStatus(port: number): Promise<number> {
  const r = await curlWith(`https://localhost:${port}/static/hello`, demo.pki, join(demo.pki.dir, 'partner-a.pem'), join(demo.pki.dir, 'partner-a-key.pem'));
  return r.status;
}

function serveOn(cert: string, key: string) {
  return spawnServe(['--bundle', demo.bundle, '--tls-cert', cert, '--tls-key', key, '--listen', '127.0.0.1:0', '--admin', 'off']);
}

test('a Kubernetes Secret volume update (the ..data link swapped) is served without a SIGHUP', async () => {
  // The layout kubelet makes: tls.crt -> ..data/tls.crt, ..data -> ..2026_12_03_a.
  const vol = join(demo.dir, 'secret');
  const version = (name: string, pair: { certPem: string; keyPem: string }) => {
    mkdirSync(join(vol, name), { recursive: true });
    writeFileSync(join(vol, name, 'tls.crt'), pair.certPem);
    writeFileSync(join(vol, name, 'tls.key'), pair.keyPem);
  };
  version('..2026_12_03_a', await serverPair('first'));
  symlinkSync('..2026_12_03_a', join(vol, '..data'));
  symlinkSync('..data/tls.crt', join(vol, 'tls.crt'));
  symlinkSync('..data/tls.key', join(vol, 'tls.key'));

  const s = serveOn(join(vol, 'tls.crt'), join(vol, 'tls.key'));
  try {
    const port = Number(
      String((await s.serving()).listen)
        .split(':')
        .pop(),
    );
    assert.equal(await servedCn(port), 'first');

    version('..2026_12_03_b', await serverPair('second'));
    symlinkSync('..2026_12_03_b', join(vol, '..data_tmp'));
    renameSync(join(vol, '..data_tmp'), join(vol, '..data'));

    await waitFor('the renewed certificate served', async () => (await servedCn(port)) === 'second', 30_000, 100);
    const reloaded = s.lines().filter((l) => l.msg === 'server certificate reloaded');
    assert.ok(reloaded.length >= 1 && reloaded.every((l) => l.trigger === 'file change'), JSON.stringify(reloaded));
    assert.equal(await curlStatus(port), 200, 'curl verifies the renewed certificate against the CA');
  } finally {
    s.kill();
  }
});

test('an in-place renewal: the certificate alone is refused (the old pair serves on), the key completes it', async () => {
  const cert = join(demo.dir, 'server.pem');
  const key = join(demo.dir, 'server-key.pem');
  const old = await serverPair('old');
  writeFileSync(cert, old.certPem);
  writeFileSync(key, old.keyPem);

  const s = serveOn(cert, key);
  try {
    const port = Number(
      String((await s.serving()).listen)
        .split(':')
        .pop(),
    );
    assert.equal(await servedCn(port), 'old');

    const renewed = await serverPair('renewed');
    writeFileSync(cert, renewed.certPem); // the key file still holds the old key
    const refused = await waitFor(
      'the refusal of the half-renewed pair',
      () => s.lines().find((l) => l.msg === 'server certificate refused; the previous one keeps serving'),
      30_000,
      50,
    );
    assert.equal(refused.trigger, 'file change');
    assert.match(String(refused.error), /are not a usable certificate and matching private key/);
    assert.equal(await servedCn(port), 'old', 'the previous pair keeps serving');
    assert.equal(await curlStatus(port), 200);

    writeFileSync(key, renewed.keyPem);
    await waitFor('the completed pair served', async () => (await servedCn(port)) === 'renewed', 30_000, 100);
    assert.equal(await curlStatus(port), 200);

    // A write that changes no byte reloads nothing (no second "reloaded" line for it).
    const before = s.lines().filter((l) => l.msg === 'server certificate reloaded').length;
    writeFileSync(key, renewed.keyPem);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(s.lines().filter((l) => l.msg === 'server certificate reloaded').length, before);
  } finally {
    s.kill();
  }
});
