// Session 10 red team, docs/security.md item 27. First: a crl_url is plain HTTP, and every CRL its CA
// ever signed verifies. Whoever answers the URL served, before, (1) an older copy from before a
// revocation that is not past its nextUpdate yet, (2) the delta CRL (`openssl crl -gendelta`),
// (3) another trusted CA's CRL: each replaced the CRL in use, and the revoked certificate was
// admitted again, with curl, on the next request. Now each is refused and the list in use stays.
// Second: a CRL was only looked up for the leaf's serial, so a CA revoking a compromised
// intermediate changed nothing for the leaves it issued (on a full handshake or a resumed one).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileDir } from './helpers/compile-and-load.ts';
import { type CrlFetcher, startCrlFetcher } from '../runtime/crl-fetcher.ts';
import { crlStore } from '../runtime/revocation.ts';
import { curl, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { closeGatewayTest, gatewayOnConfig, startPkiAndEcho } from './helpers/config-gateway.ts';
import { createOpensslCa, type OpensslCa, type OpensslLeaf, opensslIssue } from './helpers/openssl-pki.ts';
import { getResumable } from './helpers/tls-resume.ts';

describe('a crl_url cannot be rolled back', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  let ca: OpensslCa;
  let other: OpensslCa;
  let dir: string;
  let server: Server;
  let url: string;
  let fetcher: CrlFetcher;
  let served = '';
  const crl: Record<string, string> = {};
  const leaf: Record<string, OpensslLeaf> = {};
  const client = (name: string) => ({ cert: leaf[name].cert, key: leaf[name].key });
  const status = async (name: string) => {
    const r = await curl(pki, gw.port, '/ca/x', { client: client(name) });
    return r.status === 200 ? 'admitted' : r.json.code;
  };
  /** Serves `body` at the URL, has the fetcher fetch it, and returns the URL's last error. */
  const serve = async (body: string) => {
    served = body;
    await fetcher.refreshAll();
    return [...crlStore.byUrl.values()][0].lastError;
  };

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    ca = createOpensslCa('Internal CA');
    other = createOpensslCa('Other trusted CA');
    for (const name of ['stolen', 'lost', 'fine']) {
      leaf[name] = ca.issue(name, `/CN=${name}`);
      for (const f of [leaf[name].cert, leaf[name].key]) writeFileSync(join(pki.dir, f.split('/').at(-1)!), readFileSync(f));
    }
    crl.empty = ca.gencrl(); // what anyone could have kept from before the revocations
    ca.revoke(leaf.stolen);
    crl.base = ca.gencrl();
    ca.revoke(leaf.lost);
    crl.full = ca.gencrl();
    // The delta from base to full lists only `lost`: read as a complete CRL it un-revokes `stolen`.
    // (-sha256: openssl signs a delta with SHA-1 otherwise, which the gateway does not verify.)
    writeFileSync(join(ca.dir, 'base.crl'), crl.base);
    writeFileSync(join(ca.dir, 'full.crl'), crl.full);
    execFileSync('openssl', ['crl', '-in', 'base.crl', '-gendelta', 'full.crl', '-key', 'ca-key.pem', '-sha256', '-out', 'delta.crl'], {
      cwd: ca.dir,
      stdio: 'ignore',
    });
    crl.delta = readFileSync(join(ca.dir, 'delta.crl'), 'utf8');
    crl.other = other.gencrl();

    server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(served));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/internal.crl`;
    dir = mkdtempSync(join(tmpdir(), 'mtlsgate-crl-replay-'));
    writeFileSync(join(dir, 'ca.pem'), ca.caPem);
    writeFileSync(join(dir, 'other.pem'), other.caPem);
    writeFileSync(
      join(dir, 'config.yaml'),
      `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem, other.pem]\n---\nkind: revocation\nid: internal\ncrl_urls:\n  - {url: "${url}", issuer: ca.pem}\n`,
    );
    gw = await gatewayOnConfig(pki, dir);
    fetcher = startCrlFetcher({ snapshot: () => gw.snapshot(), intervalMs: 600_000, retryMs: 600_000 });
    served = crl.full;
    await fetcher.refreshAll();
  });

  after(async () => {
    fetcher?.stop();
    server?.close();
    ca?.cleanup();
    other?.cleanup();
    await closeGatewayTest({ gw, echo, cleanup, dirs: [dir] });
  });

  it('the CRL in use revokes stolen and lost; fine passes', async () => {
    assert.deepEqual([await status('stolen'), await status('lost'), await status('fine')], ['mtls.cert_revoked', 'mtls.cert_revoked', 'admitted']);
  });

  it('an older copy of the same CA (lower cRLNumber, from before the revocations) is refused', async () => {
    assert.match((await serve(crl.empty)) ?? '', /older than the CRL in use/);
    assert.deepEqual([await status('stolen'), await status('lost')], ['mtls.cert_revoked', 'mtls.cert_revoked']);
    assert.match((await serve(crl.base)) ?? '', /older than the CRL in use/);
    assert.equal(await status('lost'), 'mtls.cert_revoked');
  });

  it('a delta CRL is not a complete CRL', async () => {
    assert.match((await serve(crl.delta)) ?? '', /delta CRL/);
    assert.equal(await status('stolen'), 'mtls.cert_revoked');
  });

  it("another trusted CA's CRL does not replace this URL's", async () => {
    assert.match((await serve(crl.other)) ?? '', /signed by another CA/);
    assert.equal(await status('stolen'), 'mtls.cert_revoked');
  });

  it('a newer CRL of the same CA is taken as before', async () => {
    ca.revoke(leaf.fine);
    assert.equal(await serve(ca.gencrl()), null);
    assert.deepEqual([await status('stolen'), await status('fine')], ['mtls.cert_revoked', 'mtls.cert_revoked']);
  });

  it("a CRL from the CA's future is not yet valid: refused, and the CA's next correct CRL is still taken", async () => {
    // Before: taken, its thisUpdate became the one to beat, and the CA's next CRL on a correct
    // clock (a higher cRLNumber revoking one more) was refused as older: revocations stopped.
    leaf.late = ca.issue('late', '/CN=late');
    const ahead = ca.gencrl(undefined, new Date(Date.now() + 86_400_000));
    assert.match((await serve(ahead)) ?? '', /thisUpdate \(\S+\) is ahead of this gateway's clock .*not yet valid/);
    assert.equal(await status('late'), 'admitted');
    ca.revoke(leaf.late);
    assert.equal(await serve(ca.gencrl()), null);
    assert.equal(await status('late'), 'mtls.cert_revoked');
  });

  it('compile: a delta CRL file is refused with E_CRL_READ', async () => {
    writeFileSync(join(dir, 'delta.crl'), crl.delta);
    writeFileSync(join(dir, 'files.yaml'), 'kind: revocation\nid: files\ncrl: [delta.crl]\n');
    try {
      const r = await compileDir(dir);
      const d = r.diagnostics.find((x) => x.code === 'E_CRL_READ');
      assert.match(d?.message ?? JSON.stringify(r.diagnostics), /delta CRL/);
    } finally {
      rmSync(join(dir, 'files.yaml'));
    }
  });
});

describe('a CA that revokes an intermediate revokes what it issued', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  let ca: OpensslCa;
  let dir: string;
  const chains: Record<string, { cert: string; key: string }> = {};

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    ca = createOpensslCa('Root CA');
    const caExt = 'basicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign, cRLSign';
    const leafExt = 'basicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth';
    const compromised = opensslIssue(ca.dir, 'compromised', 'ca', '/CN=Compromised issuing CA', caExt, 0x51);
    opensslIssue(ca.dir, 'sound', 'ca', '/CN=Sound issuing CA', caExt, 0x52);
    for (const [name, issuer] of [
      ['under-compromised', 'compromised'],
      ['under-sound', 'sound'],
    ]) {
      const leaf = opensslIssue(ca.dir, name, issuer, `/CN=${name}`, leafExt, name.length + 0x60);
      chains[name] = { cert: join(ca.dir, `${name}-chain.pem`), key: leaf.key };
      writeFileSync(chains[name].cert, leaf.certPem + readFileSync(join(ca.dir, `${issuer}.pem`), 'utf8'));
    }
    ca.revoke(compromised);
    dir = mkdtempSync(join(tmpdir(), 'mtlsgate-crl-intermediate-'));
    writeFileSync(join(dir, 'ca.pem'), ca.caPem);
    writeFileSync(join(dir, 'root.crl'), ca.gencrl());
    writeFileSync(
      join(dir, 'config.yaml'),
      `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\nkind: revocation\nid: root\ncrl: [root.crl]\n`,
    );
    gw = await gatewayOnConfig(pki, dir);
  });

  after(async () => {
    ca?.cleanup();
    await closeGatewayTest({ gw, echo, cleanup, dirs: [dir] });
  });

  it('a leaf below the revoked intermediate is refused; below its sibling it passes', async () => {
    const refused = await curl(pki, gw.port, '/ca/x', { client: chains['under-compromised'] });
    assert.deepEqual([refused.status, refused.json.code], [403, 'mtls.cert_revoked']);
    assert.equal((await curl(pki, gw.port, '/ca/x', { client: chains['under-sound'] })).status, 200);
  });

  it('a resumed TLS session (no chain sent) of that leaf is refused too', async () => {
    const leaf = chains['under-compromised'];
    const options = { ca: pki.ca.certPem, cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) };
    const get = (session?: Buffer) => getResumable(options, gw.port, '/ca/x', session);
    const first = await get();
    assert.equal(first.status, 403);
    const again = await get(first.session);
    assert.deepEqual([again.resumed, again.status], [true, 403]);
  });
});
