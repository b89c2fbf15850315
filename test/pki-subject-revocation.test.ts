// Issue 11 end to end, with an openssl-run CA and curl (or node:https with keep-alive) as the
// client: keys identified by SPIFFE URI, DNS, email and CN (exact and wildcard), a CA trusted
// for some subjects only, a CRL made by `openssl ca -gencrl` revoking one leaf while its sibling
// passes, the deny list, a CRL served over HTTP and replaced while the gateway runs (refused
// within one refresh, on an open keep-alive connection, without a bundle reload), a stale CRL
// under both policies, and what reaches the upstream (XFCC escaping, RFC 9440, key id).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { Agent, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createCa, issueCert, type Issued } from '../cli/pki.ts';
import { createCrl } from './helpers/demo-crl.ts';
import { startCrlFetcher, type CrlFetcher } from '../runtime/crl-fetcher.ts';
import { registerPkiMetrics, revocationHealth } from '../runtime/pki-status.ts';
import { crlStore } from '../runtime/revocation.ts';
import { closeGatewayTest, gatewayOnConfig, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa, type OpensslLeaf } from './helpers/openssl-pki.ts';

const SPIFFE = 'spiffe://corp.example/ns';

/** Serves one body per path, with an ETag; `fail` answers 503 instead. `hitsOn`: requests for a path so far. */
function crlServer(): Promise<{
  url: (path: string) => string;
  set(path: string, body: string): void;
  fail: boolean;
  server: Server;
  hits: number;
  hitsOn: Map<string, number>;
}> {
  const bodies = new Map<string, { body: string; etag: string }>();
  const state = { fail: false, hits: 0, hitsOn: new Map<string, number>() } as { fail: boolean; hits: number; hitsOn: Map<string, number> };
  const server = createServer((req, res) => {
    state.hits++;
    state.hitsOn.set(req.url ?? '', (state.hitsOn.get(req.url ?? '') ?? 0) + 1);
    const entry = bodies.get(req.url ?? '');
    if (state.fail || entry === undefined) return res.writeHead(503).end();
    if (req.headers['if-none-match'] === entry.etag) return res.writeHead(304, { etag: entry.etag }).end();
    res.writeHead(200, { etag: entry.etag, 'content-type': 'application/pkix-crl' }).end(entry.body);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      let n = 0;
      resolve(
        Object.assign(state, {
          server,
          url: (path: string) => `http://127.0.0.1:${port}${path}`,
          set: (path: string, body: string) => bodies.set(path, { body, etag: `"v${++n}"` }),
        }),
      );
    }),
  );
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('subject matching and revocation with openssl certificates', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let ca: OpensslCa;
  let echo: EchoUpstream;
  let gw: TestGateway;
  let dir: string;
  let crls: Awaited<ReturnType<typeof crlServer>>;
  let fetcher: CrlFetcher;
  /** What the fetcher reported, each with the requests its CRL server had had for that path by then. */
  const fetchEvents: { path: string; result: string; hitsOnPath: number }[] = [];
  let staleCa: Issued;
  let staleLeaf: Issued;
  const leaf: Record<string, OpensslLeaf> = {};
  const client = (name: string) => ({ cert: leaf[name].cert, key: leaf[name].key });

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    crls = await crlServer();
    ca = createOpensslCa();
    leaf.pay = ca.issue('pay', '/CN=pay', `URI:${SPIFFE}/payments/sa/api`);
    leaf.web = ca.issue('web', '/CN=web', 'DNS:api.web.corp.example');
    leaf.ops = ca.issue('ops', '/CN=ops', 'email:ops@corp.example');
    leaf.rep = ca.issue('rep', '/CN=rep', `URI:${SPIFFE}/reporting/daily`);
    leaf.other = ca.issue('other', '/CN=other', `URI:${SPIFFE}/other/sa/x`);
    leaf.sib1 = ca.issue('sib1', '/CN=sib1', `URI:${SPIFFE}/sib/sa/one`);
    leaf.sib2 = ca.issue('sib2', '/CN=sib2', `URI:${SPIFFE}/sib/sa/two`);
    leaf.late = ca.issue('late', '/CN=late', `URI:${SPIFFE}/late/sa/x`);
    leaf.lost = ca.issue('lost', '/CN=lost', `URI:${SPIFFE}/lost/sa/x`);
    leaf.pawel = ca.issue('pawel', '/CN=Paweł € "q";x=y,z/O=a\\+b', `URI:${SPIFFE}/pawel/sa/x,DNS:pawel.corp.example`);
    // The compiled CRL revokes sib1; the served one (crl_urls) starts with nothing revoked but sib1.
    ca.revoke(leaf.sib1);
    const crl = ca.gencrl();
    crls.set('/internal.crl', crl);
    // A second CA whose CRL goes stale (peculiar/x509: a nextUpdate seconds away).
    staleCa = await createCa('stale CA');
    staleLeaf = await issueCert(staleCa, 'stale-leaf');
    pki.file('stale-leaf.pem', staleLeaf.certPem);
    pki.file('stale-leaf-key.pem', staleLeaf.keyPem);
    crls.set('/stale.crl', await createCrl(staleCa, [], { nextUpdate: new Date(Date.now() + 4_000) }));

    dir = mkdtempSync(join(tmpdir(), 'mtlsgate-pki-e2e-'));
    writeFileSync(join(dir, 'ca.pem'), ca.caPem);
    writeFileSync(join(dir, 'stale-ca.pem'), staleCa.certPem);
    writeFileSync(join(dir, 'internal.crl'), crl);
    writeFileSync(join(dir, 'lost.pem'), leaf.lost.certPem);
    writeFileSync(join(dir, 'pawel.pem'), leaf.pawel.certPem);
    const matchKey = (id: string, fields: string) => `kind: key\nid: ${id}\ncertificate_match:\n  issuer: ca.pem\n${fields}access_rights:\n  dyn: {}\n---\n`;
    writeFileSync(
      join(dir, 'config.yaml'),
      [
        `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${echo.url}\nauth:\n  use_certificate: true\nforward_client_cert:\n  xfcc: [Hash, Subject, URI, DNS]\n  rfc9440: true\n  key_id_header: X-Client-Key\n---\n`,
        `kind: api\nid: rep\nproxy:\n  listen_path: /rep/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n  - {issuer: ca.pem, san_uri: "${SPIFFE}/reporting/*"}\n  - {issuer: ca.pem, subject_cn: sib2}\n  - {issuer: ca.pem, subject_cn: sib1}\nforward_client_cert: true\n---\n`,
        `kind: api\nid: stale\nproxy:\n  listen_path: /stale/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [stale-ca.pem]\n---\n`,
        matchKey('payments', `  san_uri: ${SPIFFE}/payments/sa/api\n`),
        matchKey('web', '  san_dns: "*.web.corp.example"\n'),
        matchKey('ops', '  san_email: ops@corp.example\n  subject_cn: ops\n'),
        matchKey('sib', `  san_uri: "${SPIFFE}/sib/sa/*"\n`),
        matchKey('late', `  san_uri: ${SPIFFE}/late/sa/x\n`),
        matchKey('lost', `  san_uri: ${SPIFFE}/lost/sa/x\n`),
        'kind: key\nid: pawel\ncertificates: [pawel.pem]\naccess_rights:\n  dyn: {}\n---\n',
        `kind: revocation\nid: internal\ncrl: [internal.crl]\ncrl_urls:\n  - {url: "${crls.url('/internal.crl')}", issuer: ca.pem}\n  - {url: "${crls.url('/stale.crl')}", issuer: stale-ca.pem}\ncertificates: [lost.pem]\n`,
      ].join(''),
    );
    gw = await gatewayOnConfig(pki, dir);
    fetcher = startCrlFetcher({
      snapshot: () => gw.snapshot(),
      intervalMs: 1_000,
      retryMs: 500,
      onEvent: ({ url, result }) => {
        const path = new URL(url).pathname;
        fetchEvents.push({ path, result, hitsOnPath: crls.hitsOn.get(path) ?? 0 });
      },
    });
    await fetcher.refreshAll();
  });

  after(async () => {
    fetcher?.stop();
    crls?.server.close();
    ca?.cleanup();
    await closeGatewayTest({ gw, echo, cleanup, dirs: [dir] });
  });

  it('SPIFFE URI, DNS wildcard, email + CN: each certificate identifies its key; an unmatched one does not', async () => {
    for (const [name, key] of [
      ['pay', 'payments'],
      ['web', 'web'],
      ['ops', 'ops'],
      ['sib2', 'sib'],
    ]) {
      const r = await curl(pki, gw.port, '/dyn/x', { client: client(name) });
      assert.equal(r.status, 200, `${name}: ${r.body}`);
      assert.equal(gw.records.at(-1)?.key, key);
    }
    const other = await curl(pki, gw.port, '/dyn/x', { client: client('other') });
    assert.deepEqual([other.status, other.json.code], [401, 'auth.cert_not_found']);
  });

  it('a CA trusted for some subjects only: reporting/* passes, payments is refused', async () => {
    assert.equal((await curl(pki, gw.port, '/rep/x', { client: client('rep') })).status, 200);
    const pay = await curl(pki, gw.port, '/rep/x', { client: client('pay') });
    assert.deepEqual([pay.status, pay.json.code], [403, 'mtls.cert_not_allowed']);
  });

  it('openssl ca -gencrl revokes one leaf: refused on every API; its sibling passes', async () => {
    for (const path of ['/dyn/x', '/rep/x']) {
      const r = await curl(pki, gw.port, path, { client: client('sib1') });
      assert.deepEqual([r.status, r.json.code], [403, 'mtls.cert_revoked'], path);
    }
    assert.equal((await curl(pki, gw.port, '/rep/x', { client: client('sib2') })).status, 200);
  });

  it('the deny list refuses a certificate by fingerprint', async () => {
    const r = await curl(pki, gw.port, '/dyn/x', { client: client('lost') });
    assert.deepEqual([r.status, r.json.code], [403, 'mtls.cert_revoked']);
  });

  it('a served CRL replaced while the gateway runs: refused on the open keep-alive connection within one refresh, no reload', async () => {
    const agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      cert: leaf.late.certPem,
      key: await import('node:fs').then((fs) => fs.readFileSync(leaf.late.key)),
      ca: pki.ca.certPem,
    });
    const get = () =>
      new Promise<{ status: number; reused: boolean; code?: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: gw.port, servername: 'localhost', path: '/dyn/x', agent }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () =>
            resolve({ status: res.statusCode!, reused: req.reusedSocket, code: body.includes('"code"') ? JSON.parse(body).code : undefined }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    const digest = gw.snapshot().digest;
    assert.equal((await get()).status, 200);
    ca.revoke(leaf.late);
    const replaced = ca.gencrl();
    const hitsBefore = crls.hitsOn.get('/internal.crl') ?? 0;
    const eventsBefore = fetchEvents.length;
    crls.set('/internal.crl', replaced);
    // The fetcher's own timer (every 1 s here) fetches the URL again; no refreshAll.
    let taken: (typeof fetchEvents)[number] | undefined;
    await until('the fetcher to take the replaced CRL', async () => {
      taken = fetchEvents.slice(eventsBefore).find((e) => e.path === '/internal.crl' && e.result === 'updated');
      return taken !== undefined;
    });
    // Within one refresh, counted rather than timed: the first fetch after the replacement took
    // it (the fetcher never starts a URL's next fetch before it has taken the last answer).
    assert.equal(taken!.hitsOnPath, hitsBefore + 1, 'taken by the first fetch after the replacement');
    // And the very next request on the open connection is refused.
    const next = await get();
    assert.deepEqual([next.status, next.code, next.reused], [403, 'mtls.cert_revoked', true], 'refused on the same keep-alive connection');
    assert.equal(gw.snapshot().digest, digest, 'no bundle reload');
    agent.destroy();
  });

  it('a stale CRL: closed refuses its CA with mtls.revocation_unknown, open admits; /health and /metrics say so', async () => {
    const stalePath = crls.url('/stale.crl');
    crls.fail = true; // the CRL server is down from now on
    await until('the stale CRL to be marked stale', async () => crlStore.byUrl.get(stalePath)?.stale === true, 30_000);
    const registry = new Registry();
    registerPkiMetrics(registry, () => gw.snapshot(), crlStore);
    try {
      crlStore.policy = 'closed';
      crlStore.changed();
      const closed = await curl(pki, gw.port, '/stale/x', { client: 'stale-leaf' });
      assert.deepEqual([closed.status, closed.json.code], [403, 'mtls.revocation_unknown']);
      assert.equal((await curl(pki, gw.port, '/rep/x', { client: client('rep') })).status, 200, 'other CAs are unaffected');
      const health = revocationHealth(crlStore);
      assert.equal(health.status, 'stale');
      assert.equal(health.stale_policy, 'closed');
      assert.equal(health.crl_urls.find((u) => u.url === stalePath)?.state, 'stale');
      const metrics = await registry.metrics();
      assert.match(metrics, new RegExp(`mtlsgate_crl_stale\\{url="${stalePath.replace(/[.]/g, '\\.')}"\\} 1`));
      assert.match(metrics, /mtlsgate_crl_fail_closed 1/);
      crlStore.policy = 'open';
      crlStore.changed();
      assert.equal((await curl(pki, gw.port, '/stale/x', { client: 'stale-leaf' })).status, 200);
      assert.match(await registry.metrics(), /mtlsgate_crl_fail_closed 0/);
    } finally {
      crlStore.policy = 'open';
      crls.fail = false;
    }
  });

  it('upstream: XFCC escaped as Envoy does (UTF-8, quotes, commas, semicolons, equals), RFC 9440 equals the DER, key id; client copies removed', async () => {
    const r = await curl(pki, gw.port, '/dyn/x', {
      client: client('pawel'),
      headers: { 'x-forwarded-client-cert': 'Hash=evil', 'client-cert': ':AAAA:', 'client-cert-chain': ':AAAA:', 'x-client-key': 'admin' },
    });
    assert.equal(r.status, 200, r.body);
    const h = r.json.headers!;
    const fp = gw.records.at(-1)!.cert;
    assert.equal(
      h['x-forwarded-client-cert'],
      `Hash=${fp};Subject="O=a\\+b,CN=Pawe\\C5\\82 \\E2\\82\\AC \\"q\\"\\;x=y\\,z";URI=${SPIFFE}/pawel/sa/x;DNS=pawel.corp.example`,
    );
    assert.match(h['client-cert'], /^:[A-Za-z0-9+/=]+:$/);
    assert.deepEqual(Buffer.from(h['client-cert'].slice(1, -1), 'base64'), leaf.pawel.der);
    assert.equal(h['client-cert-chain'], undefined, 'the client sent no chain; its copy is gone');
    assert.equal(h['x-client-key'], 'pawel');
    // An API that forwards XFCC only: the client's Client-Cert never reaches its upstream.
    const rep = await curl(pki, gw.port, '/rep/x', { client: client('rep'), headers: { 'client-cert': ':AAAA:' } });
    assert.equal(rep.json.headers!['client-cert'], undefined);
    assert.match(rep.json.headers!['x-forwarded-client-cert'], /^Hash=[0-9a-f]{64};Subject="CN=rep"$/);
  });
});
