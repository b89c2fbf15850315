// docs/security.md section 48: a large CRL the CA really signed is taken without holding the
// event loop. Before, a new list from a crl_url was verified and walked entry by entry on the
// thread that serves every request (1.6 M entries: ~8 s under load, once per new list). Real
// `mtlsgate serve`, a real HTTP server answering the URL (a small list first, then 1,000,000
// entries signed by the CA), /live and /health on the same process every 50 ms while the big list is taken,
// and curl through the gateway with a revoked and a good client certificate after.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { HealthReport } from '../runtime/admin.ts';
import { bigCrl } from './helpers/big-crl.ts';
import { crlBundle, issueInto } from './helpers/crl-workers.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa } from './helpers/openssl-pki.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { curl, demoPki } from './helpers/serve-fixtures.ts';

const ENTRIES = 1_000_000;
const tmp = tempDir('crl-large');
let pki: Awaited<ReturnType<typeof demoPki>>;
let echo: EchoUpstream;
let ca: OpensslCa;
let server: Server | undefined;
let gw: ReturnType<typeof spawnDemoGateway> | undefined;

before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
  ca = createOpensslCa('Big List CA');
  issueInto(ca, pki, ['revoked', 'good']);
});
after(async () => {
  gw?.kill();
  server?.closeAllConnections();
  server?.close();
  await echo?.close();
  ca?.cleanup();
  tmp.cleanup();
});

/** The URL answers `current` with its ETag, and 304 to a request that names that ETag. */
async function serveCrl(current: () => { body: Buffer; etag: string }): Promise<string> {
  server = createServer((req, res) => {
    const { body, etag } = current();
    if (req.headers['if-none-match'] === etag) res.writeHead(304, { etag }).end();
    else res.writeHead(200, { etag, 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/big.crl`;
}

async function crlHealth(): Promise<NonNullable<HealthReport['revocation']>['crl_urls'][number]> {
  const res = await fetch(`http://${(await gw!.serving()).admin}/health`);
  return ((await res.json()) as HealthReport).revocation!.crl_urls[0];
}

async function answer(who: string): Promise<string> {
  const r = await curl(`https://127.0.0.1:${listenPort(await gw!.serving())}/ca/x`, pki, who);
  return r.status === 200 ? 'admitted' : (JSON.parse(r.body) as { code: string }).code;
}

test(`a CA-signed CRL of ${ENTRIES.toLocaleString('en')} entries is taken while /live keeps answering within 500 ms; it then revokes`, async (t) => {
  const key = join(ca.dir, 'ca-key.pem');
  const serialOf = (name: string) => new X509Certificate(readFileSync(join(pki.dir, `${name}.pem`))).serialNumber;
  const small = { body: bigCrl(ca.caCert, key, 10), etag: '"small"' };
  const big = { body: bigCrl(ca.caCert, key, ENTRIES, [serialOf('revoked')]), etag: '"big"' };
  let served = small;
  const url = await serveCrl(() => served);
  mkdirSync(join(tmp.dir, 'cfg'));
  const bundle = await crlBundle(join(tmp.dir, 'cfg'), ca, echo.url, url);
  gw = spawnDemoGateway(bundle, pki, { admin: 'loopback', extra: ['--crl-stale', 'open', '--crl-refresh', '1s'] });
  await waitFor('the small list taken', async () => (await crlHealth()).entries === 10, 20_000);
  assert.equal(await answer('revoked'), 'admitted', 'not revoked by the small list');

  // From now on the URL answers the big list (once: then 304); /live is asked every 50 ms until it is taken.
  served = big;
  const admin = (await gw.serving()).admin as string;
  let slowest = 0;
  let taken = false;
  const started = Date.now();
  while (!taken) {
    assert.ok(Date.now() - started < 20_000, 'the big list taken within 20 s');
    const t0 = performance.now();
    const res = await fetch(`http://${admin}/live`, { signal: AbortSignal.timeout(5_000) }).catch((err: Error) => {
      throw new Error(`/live did not answer within 5 s: the event loop is held (${err.message})`);
    });
    await res.text();
    // /health is answered on the same thread: a stall during it counts too.
    taken = (await crlHealth()).entries === ENTRIES + 1;
    slowest = Math.max(slowest, performance.now() - t0);
    await new Promise((r) => setTimeout(r, 50));
  }
  t.diagnostic(`big list taken after ${Date.now() - started} ms; slowest /live ${Math.round(slowest)} ms`);
  assert.ok(slowest < 500, `slowest /live while the big list was taken: ${Math.round(slowest)} ms`);
  assert.equal(await answer('revoked'), 'mtls.cert_revoked');
  assert.equal(await answer('good'), 'admitted');
});
