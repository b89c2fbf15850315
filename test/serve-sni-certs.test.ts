// One server certificate per host through the built CLI: `serve --tls-cert A --tls-key A-key
// --tls-cert B --tls-key B-key ...`. Real `openssl s_client -servername` shows which certificate
// each SNI gets (exact SAN, a wildcard covering one label, the first pair otherwise, no SNI);
// real curl verifies each host's certificate against the CA; the CertificateRequest names no CA;
// SIGHUP re-reads every pair, and a bad pair on SIGHUP leaves the old ones serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCert } from '../cli/pki.ts';
import { mtlsgate } from './helpers/cli.ts';
import { demoBundleFixture } from './helpers/demo-bundle.ts';
import { curlWith } from './helpers/portal-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { spawnServe } from './helpers/serve-fixtures.ts';

const demo = demoBundleFixture('serve-sni', ['partner-a']);

/** Writes NAME.pem / NAME-key.pem: a server certificate with subject CN=NAME for `dns`. */
async function serverPair(name: string, dns: string[]): Promise<{ cert: string; key: string }> {
  const issued = await issueCert(demo.pki.ca, name, { dns, usage: 'server' });
  const cert = join(demo.dir, `${name}.pem`);
  const key = join(demo.dir, `${name}-key.pem`);
  writeFileSync(cert, issued.certPem);
  writeFileSync(key, issued.keyPem);
  return { cert, key };
}

/** The handshake as openssl s_client sees it: the served certificate's subject and SANs, and the whole transcript. */
function handshake(port: number, servername: string | null): Promise<{ subject: string; transcript: string }> {
  const sni = servername === null ? '-noservername' : `-servername ${servername}`;
  const sh = `openssl s_client -connect 127.0.0.1:${port} ${sni} </dev/null 2>&1`;
  return new Promise((resolve, reject) =>
    execFile('sh', ['-c', sh], { timeout: 30_000 }, (err, transcript) => {
      if (err && !transcript) return reject(err);
      const subject = /^subject=(.*)$/m.exec(transcript)?.[1] ?? '';
      resolve({ subject, transcript });
    }),
  );
}

test('serve with several --tls-cert/--tls-key pairs: the SNI picks the certificate, SIGHUP re-reads them all', async () => {
  const dflt = await serverPair('default', ['localhost']);
  const one = await serverPair('one', ['api.one.test']);
  const wild = await serverPair('wild', ['*.two.test']);
  const s = spawnServe([
    '--bundle',
    demo.bundle,
    '--tls-cert',
    dflt.cert,
    '--tls-key',
    dflt.key,
    '--tls-cert',
    one.cert,
    '--tls-key',
    one.key,
    '--tls-cert',
    wild.cert,
    '--tls-key',
    wild.key,
    '--listen',
    '127.0.0.1:0',
    '--admin',
    'off',
  ]);
  try {
    const line = await s.serving();
    const port = Number(String(line.listen).split(':').pop());

    assert.match((await handshake(port, 'api.one.test')).subject, /CN\s*=\s*one/);
    assert.match((await handshake(port, 'API.ONE.test')).subject, /CN\s*=\s*one/, 'SNI is matched without regard to case');
    assert.match((await handshake(port, 'a.two.test')).subject, /CN\s*=\s*wild/);
    assert.match((await handshake(port, 'a.b.two.test')).subject, /CN\s*=\s*default/, 'a wildcard covers one label, as TLS clients match it');
    assert.match((await handshake(port, 'two.test')).subject, /CN\s*=\s*default/, '*.two.test does not cover two.test');
    assert.match((await handshake(port, 'unknown.test')).subject, /CN\s*=\s*default/, 'no match: the first pair');
    const noSni = await handshake(port, null);
    assert.match(noSni.subject, /CN\s*=\s*default/, 'no SNI: the first pair');

    // The APIs here use client certificates, so the server sends a CertificateRequest: with no
    // CA names in it (a long list breaks some clients, and the gateway decides per API anyway).
    assert.match(noSni.transcript, /No client certificate CA names sent/);
    assert.doesNotMatch(noSni.transcript, /Acceptable client certificate CA names/);

    // curl verifies each host's certificate against the CA (a wrong one fails the handshake).
    const curlHost = async (host: string) =>
      (
        await curlWith(`https://${host}:${port}/static/hello`, demo.pki, join(demo.pki.dir, 'partner-a.pem'), join(demo.pki.dir, 'partner-a-key.pem'), [
          '--resolve',
          `${host}:${port}:127.0.0.1`,
        ])
      ).status;
    assert.equal(await curlHost('api.one.test'), 200);
    assert.equal(await curlHost('x.two.test'), 200);
    assert.equal(await curlHost('localhost'), 200);

    // SIGHUP: a new certificate for *.two.test (another subject) is served once reloaded.
    const wild2 = await serverPair('wild2', ['*.two.test']);
    copyFileSync(wild2.cert, wild.cert);
    copyFileSync(wild2.key, wild.key);
    s.child.kill('SIGHUP');
    await waitFor('the reloaded wildcard certificate', async () => /CN\s*=\s*wild2/.test((await handshake(port, 'a.two.test')).subject), 30_000, 100);
    // The files are watched too (test/serve-tls-watch.test.ts): the SIGHUP's own reload is the one asked for here.
    await waitFor('the SIGHUP reload line', () => s.lines().some((l) => l.msg === 'server certificate reloaded' && l.trigger === 'SIGHUP'), 30_000, 50);
    assert.match((await handshake(port, 'api.one.test')).subject, /CN\s*=\s*one/, 'the other pairs are served on');

    // A bad pair on SIGHUP (the second certificate with the default's key): nothing changes.
    const other = await serverPair('one-new', ['api.one.test']);
    copyFileSync(other.cert, one.cert); // key file left as it was: it does not match
    s.child.kill('SIGHUP');
    const refused = await waitFor(
      'the refusal log line',
      () => s.lines().find((l) => l.msg === 'server certificates refused; the previous ones keep serving' && l.trigger === 'SIGHUP'),
      30_000,
      50,
    );
    assert.match(String(refused.error), /--tls-cert #2 .* and --tls-key #2 .* are not a usable certificate and matching private key/);
    assert.match((await handshake(port, 'api.one.test')).subject, /CN\s*=\s*one\b/, 'the old certificate for api.one.test keeps serving');
    assert.match((await handshake(port, 'a.two.test')).subject, /CN\s*=\s*wild2/, 'and so do the others');
    assert.equal(await curlHost('api.one.test'), 200);
  } finally {
    s.kill();
  }
});

test('serve refuses --tls-cert and --tls-key given an unequal number of times', () => {
  const r = mtlsgate(['serve', '--bundle', demo.bundle, '--tls-cert', 'a.pem', '--tls-key', 'a-key.pem', '--tls-cert', 'b.pem']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--tls-cert is given 2 times and --tls-key once: give them in pairs/);
});
