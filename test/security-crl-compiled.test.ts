// docs/security.md section 50b: a bundle with a large compiled CRL (a `kind: revocation`
// document's `crl:` file) reloads without holding the event loop. Before, the bundle worker
// handed the main thread the CRL's serials as strings (1,000,000 of them to clone) and the
// snapshot put them in a Set there, on the thread serving every request; now the worker builds
// the SerialTable's arrays and moves them. Real `mtlsgate serve`, bundles compiled by the CLI
// from a CA-signed CRL file, /live on the same process every 50 ms while SIGHUP reloads the
// big one, and curl through the gateway with a revoked and a good client certificate after.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { HealthReport } from '../runtime/admin.ts';
import { verifyCompact } from '../runtime/compact-load.ts';
import { SerialTable } from '../runtime/serial-table.ts';
import { bigCrl } from './helpers/big-crl.ts';
import { issueInto } from './helpers/crl-workers.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa } from './helpers/openssl-pki.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { compileWithCli, curl, demoPki } from './helpers/serve-fixtures.ts';

const ENTRIES = 1_000_000;
const tmp = tempDir('crl-compiled');
let pki: Awaited<ReturnType<typeof demoPki>>;
let echo: EchoUpstream;
let ca: OpensslCa;
let gw: ReturnType<typeof spawnDemoGateway> | undefined;

before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
  ca = createOpensslCa('Compiled List CA');
  issueInto(ca, pki, ['revoked', 'good']);
});
after(async () => {
  gw?.kill();
  await echo?.close();
  ca?.cleanup();
  tmp.cleanup();
});

/** A bundle (compiled by the CLI) whose API /ca/ trusts `ca`, with a compiled CRL of `count` made-up serials plus `revoked`. */
async function bundleWith(name: string, count: number, revoked: string[]): Promise<Buffer> {
  const cfg = join(tmp.dir, name);
  mkdirSync(cfg);
  writeFileSync(join(cfg, 'ca.pem'), ca.caPem);
  writeFileSync(join(cfg, 'list.crl'), bigCrl(ca.caCert, join(ca.dir, 'ca-key.pem'), count, revoked));
  writeFileSync(
    join(cfg, 'config.yaml'),
    `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\nkind: revocation\nid: internal\ncrl: [list.crl]\n`,
  );
  return compileWithCli(cfg, join(tmp.dir, `${name}.json`));
}

async function answer(who: string): Promise<string> {
  const r = await curl(`https://127.0.0.1:${listenPort(await gw!.serving())}/ca/x`, pki, who);
  return r.status === 200 ? 'admitted' : (JSON.parse(r.body) as { code: string }).code;
}

test('the bundle worker hands the compiled CRL over as a SerialTable (no serial strings cross to the main thread)', async () => {
  const serial = new X509Certificate(readFileSync(join(pki.dir, 'revoked.pem'))).serialNumber;
  const bytes = await bundleWith('unit', 1_000, [serial]);
  const compact = verifyCompact(bytes, '');
  const [fp] = Object.keys(compact.revocation.crls);
  assert.deepEqual(compact.revocation.crls[fp].serials, [], 'the list itself is not sent');
  const table = new SerialTable(compact.crlTables[fp]);
  assert.equal(table.size, 1_001);
  assert.ok(table.has(serial.toLowerCase().replace(/^0+/, '')));
});

test(`a reload to a bundle with a compiled CRL of ${ENTRIES.toLocaleString('en')} entries keeps /live answering within 500 ms; it then revokes`, async (t) => {
  const serial = new X509Certificate(readFileSync(join(pki.dir, 'revoked.pem'))).serialNumber;
  const small = await bundleWith('small', 10, []);
  const big = await bundleWith('big', ENTRIES, [serial]);
  const served = join(tmp.dir, 'served.json');
  writeFileSync(served, small);
  gw = spawnDemoGateway(served, pki, { admin: 'loopback' });
  const admin = (await gw.serving()).admin as string;
  const digestNow = async () => ((await (await fetch(`http://${admin}/health`)).json()) as HealthReport).bundle.digest;
  const first = await digestNow();
  assert.equal(await answer('revoked'), 'admitted', 'not in the small list');

  writeFileSync(`${served}.tmp`, big);
  renameSync(`${served}.tmp`, served);
  gw.child.kill('SIGHUP');
  let slowest = 0;
  const started = Date.now();
  for (let reloaded = false; !reloaded; ) {
    assert.ok(Date.now() - started < 60_000, 'the big bundle loaded within 60 s');
    const t0 = performance.now();
    const res = await fetch(`http://${admin}/live`, { signal: AbortSignal.timeout(5_000) }).catch((err: Error) => {
      throw new Error(`/live did not answer within 5 s: the event loop is held (${err.message})`);
    });
    await res.text();
    // /health is answered on the same thread: a stall during it counts too.
    reloaded = (await digestNow()) !== first;
    slowest = Math.max(slowest, performance.now() - t0);
    await new Promise((r) => setTimeout(r, 50));
  }
  t.diagnostic(`big bundle (${big.length} bytes) loaded after ${Date.now() - started} ms; slowest /live + /health ${Math.round(slowest)} ms`);
  assert.ok(slowest < 500, `slowest /live + /health while the bundle reloaded: ${Math.round(slowest)} ms`);
  assert.equal(await answer('revoked'), 'mtls.cert_revoked');
  assert.equal(await answer('good'), 'admitted');
});
