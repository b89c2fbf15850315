// docs/security.md section 34: a crl_url is bound to the CA allowed to sign its CRL. Before, on
// the first fetch after a start ANY trusted CA's CRL verified and was taken, and from then on the
// real CA's CRL was refused as "signed by another CA": served another CA's empty CRL first, the
// URL un-revoked alice for good (curl: 200), and /health said ok / fresh. /health also answered
// 200 with revocation stale under --crl-stale closed (issue #16 item 9: 503 when the operator
// chose deny and a dependency is degraded). Real `mtlsgate serve`, openssl CRLs, curl.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HealthReport } from '../runtime/admin.ts';
import { loadBundle } from '../bundle/read.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa, type OpensslLeaf, opensslIssue } from './helpers/openssl-pki.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { compileWithCli, curl, demoPki } from './helpers/serve-fixtures.ts';

const tmp = tempDir('crl-binding');
let pki: Awaited<ReturnType<typeof demoPki>>;
let echo: EchoUpstream;
let ca: OpensslCa;
let other: OpensslCa;
let server: Server;
let base: string;
/** What the CRL server answers at each path (absent: 404). */
const served = new Map<string, string>();
const leaf: Record<string, OpensslLeaf> = {};
type Gateway = ReturnType<typeof spawnDemoGateway>;
const started: Gateway[] = [];

before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
  ca = createOpensslCa('Internal CA');
  other = createOpensslCa('Other trusted CA');
  leaf.alice = ca.issue('alice', '/CN=alice');
  leaf.bob = other.issue('bob', '/CN=bob');
  for (const name of ['alice', 'bob']) {
    writeFileSync(join(pki.dir, `${name}.pem`), readFileSync(leaf[name].cert));
    writeFileSync(join(pki.dir, `${name}-key.pem`), readFileSync(leaf[name].key));
  }
  server = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  for (const gw of started) gw.kill();
  server?.close();
  await echo?.close();
  ca?.cleanup();
  other?.cleanup();
  tmp.cleanup();
});

/** A config trusting both CAs, with `revocation` as its revocation document's body. */
function writeCfg(name: string, revocation: string): string {
  const cfg = join(tmp.dir, name);
  mkdirSync(cfg, { recursive: true });
  writeFileSync(join(cfg, 'ca.pem'), ca.caPem);
  writeFileSync(join(cfg, 'other.pem'), other.caPem);
  writeFileSync(
    join(cfg, 'config.yaml'),
    `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem, other.pem]\n---\nkind: revocation\nid: internal\n${revocation}`,
  );
  return cfg;
}

async function launch(cfg: string, stale: 'open' | 'closed'): Promise<Gateway> {
  const bundle = join(tmp.dir, `${cfg.split('/').at(-1)}.json`);
  await compileWithCli(cfg, bundle);
  const gw = spawnDemoGateway(bundle, pki, { admin: 'loopback', extra: ['--crl-stale', stale, '--crl-refresh', '1s'] });
  started.push(gw);
  return gw;
}
async function health(gw: Gateway): Promise<{ code: number; report: HealthReport }> {
  const res = await fetch(`http://${(await gw.serving()).admin}/health`);
  return { code: res.status, report: (await res.json()) as HealthReport };
}
async function answer(gw: Gateway, who: string): Promise<string> {
  const r = await curl(`https://127.0.0.1:${listenPort(await gw.serving())}/ca/x`, pki, who);
  return r.status === 200 ? 'admitted' : (JSON.parse(r.body) as { code: string }).code;
}

describe("a crl_url takes only its own CA's CRL, from the first fetch on (curl, --crl-stale closed)", () => {
  test("another trusted CA's empty CRL first: refused, /health 503 'refused'; the real CRL is then taken and revokes alice", async () => {
    const path = '/internal.crl';
    served.set(path, other.gencrl());
    const gw = await launch(writeCfg('bound', `crl_urls:\n  - {url: "${base}${path}", issuer: ca.pem}\n`), 'closed');
    const refused = await waitFor('the first CRL refused', async () => (await health(gw)).report.revocation?.crl_urls[0].last_error);
    assert.match(refused, /it is signed by another CA \(sha256:\S+\) than the one this URL is bound to/);
    let h = await health(gw);
    // Before: the other CA's list was taken: 200, "ok", "fresh".
    assert.deepEqual([h.code, h.report.status, h.report.revocation?.status, h.report.revocation?.crl_urls[0].state], [503, 'degraded', 'stale', 'refused']);
    // No valid list for the internal CA: its certificates wait; the other CA's do not.
    assert.deepEqual([await answer(gw, 'alice'), await answer(gw, 'bob')], ['mtls.revocation_unknown', 'admitted']);

    ca.revoke(leaf.alice);
    served.set(path, ca.gencrl());
    await waitFor('the real CRL taken', async () => (await health(gw)).report.revocation?.crl_urls[0].fetched_at);
    // Before: refused as "signed by another CA" than the empty list taken first; alice got 200 for good.
    assert.deepEqual([await answer(gw, 'alice'), await answer(gw, 'bob')], ['mtls.cert_revoked', 'admitted']);
    h = await health(gw);
    assert.deepEqual([h.code, h.report.status, h.report.revocation?.crl_urls[0].state], [200, 'ok', 'fresh']);

    // Served the other CA's list again: refused; the list in use stays, and is still valid.
    served.set(path, other.gencrl());
    await waitFor('the other CA refused again', async () => /another CA/.test((await health(gw)).report.revocation?.crl_urls[0].last_error ?? ''));
    assert.equal(await answer(gw, 'alice'), 'mtls.cert_revoked');
    h = await health(gw);
    assert.deepEqual([h.code, h.report.revocation?.crl_urls[0].state], [200, 'fresh']);
  });
});

describe('/health is 503 exactly when revocation is stale under --crl-stale closed', () => {
  test('an unreachable crl_url: 503 under closed, 200 (degraded) under open; 200 once the CRL comes', async () => {
    const path = '/later.crl';
    served.delete(path);
    const cfg = writeCfg('stale', `crl_urls:\n  - {url: "${base}${path}", issuer: ca.pem}\n`);
    const closed = await launch(cfg, 'closed');
    const open = await launch(cfg, 'open');
    for (const gw of [closed, open]) await waitFor('a failed fetch', async () => (await health(gw)).report.revocation?.crl_urls[0].last_error);
    const [c, o] = [await health(closed), await health(open)];
    // Before: 200 for both.
    assert.deepEqual([c.code, c.report.status, c.report.revocation?.status, c.report.revocation?.crl_urls[0].state], [503, 'degraded', 'stale', 'stale']);
    assert.deepEqual([o.code, o.report.status, o.report.revocation?.status], [200, 'degraded', 'stale']);
    served.set(path, ca.gencrl());
    await waitFor('the CRL taken', async () => (await health(closed)).report.revocation?.status === 'ok');
    assert.equal((await health(closed)).code, 200);
  });
});

describe('compile: each crl_urls entry is bound to one CA', () => {
  test('a bare URL with two CRL signers and no distribution point naming it is E_CRL_URL_ISSUER at the entry', async () => {
    const cfg = writeCfg('ambiguous', `crl_urls:\n  - "${base}/which.crl"\n`);
    const r = await compileDir(cfg);
    const d = r.diagnostics.find((x) => x.code === 'E_CRL_URL_ISSUER');
    assert.ok(d, JSON.stringify(r.diagnostics));
    assert.deepEqual([d.file, d.line, d.col], ['config.yaml', 13, 5]);
    assert.match(d.message, /2 CAs that may sign its CRL \("CN=Internal CA", "CN=Other trusted CA"\).*write it as \{url: \S+, issuer: /);
  });

  test('an issuer that is not a CRL signer of the config, and one URL bound to two CAs, are E_CRL_URL_ISSUER', async () => {
    const stranger = createOpensslCa('Stranger CA');
    try {
      const cfg = writeCfg(
        'stranger',
        `crl_urls:\n  - {url: "${base}/a.crl", issuer: stranger.pem}\n  - {url: "${base}/b.crl", issuer: ca.pem}\n  - {url: "${base}/b.crl", issuer: other.pem}\n`,
      );
      writeFileSync(join(cfg, 'stranger.pem'), stranger.caPem);
      const r = await compileDir(cfg);
      const found = r.diagnostics.filter((x) => x.code === 'E_CRL_URL_ISSUER').map((x) => [x.line, x.message]);
      assert.equal(found.length, 2, JSON.stringify(r.diagnostics));
      assert.match(String(found[0][1]), /issuer "stranger\.pem" of \S+\/a\.crl is neither a CA the config trusts nor a crl_issuers entry/);
      assert.match(String(found[1][1]), /b\.crl is bound to "CN=Other trusted CA" here and to "CN=Internal CA" by another entry/);
    } finally {
      stranger.cleanup();
    }
  });

  test("a bare URL named by a config certificate's CRL distribution points is bound to that certificate's issuer", async () => {
    // An intermediate (crl_issuers) whose distribution point is the root's CRL: that URL is the root's.
    const ext = `basicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign, cRLSign\ncrlDistributionPoints = URI:${base}/root.crl`;
    const issuing = opensslIssue(ca.dir, 'issuing', 'ca', '/CN=Issuing CA', ext, 0x71);
    const cfg = writeCfg('cdp', `crl_issuers: [issuing.pem]\ncrl_urls: ["${base}/root.crl"]\n`);
    writeFileSync(join(cfg, 'issuing.pem'), issuing.certPem);
    const out = join(tmp.dir, 'cdp.json');
    await compileWithCli(cfg, out);
    const { content } = loadBundle(readFileSync(out));
    const [caFp] = Object.entries(content.cas).find(([, c]) => c.subject.includes('Internal CA'))!;
    assert.deepEqual(content.revocation.crl_url_issuers, { [`${base}/root.crl`]: caFp });
  });
});
