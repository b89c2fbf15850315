// docs/security.md section 28: an intermediate's own CRL. A CA that issues leaves below an
// intermediate publishes the intermediate's CRL, signed by the intermediate (OpenSSL and Envoy
// use it with crl_check_all). Before, a CRL had to be signed by a CA the config trusts: the
// intermediate's CRL was E_CRL_UNVERIFIED at compile time and refused when fetched, so a leaf it
// revoked was admitted unless the intermediate itself was made a trusted CA. Now a revocation
// document names the intermediate under crl_issuers; the compiler verifies it chains to a
// trusted CA, and its CRLs (files and crl_urls) revoke what it signed, and nothing else.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCa, type Issued, issueCert } from '../cli/pki.ts';
import { type CrlFetcher, startCrlFetcher } from '../runtime/crl-fetcher.ts';
import { crlStore } from '../runtime/revocation.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { createCrl } from './helpers/demo-crl.ts';
import { createIntermediateCa, curl, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { closeGatewayTest, gatewayOnConfig, startPkiAndEcho } from './helpers/config-gateway.ts';
import { opensslIssue } from './helpers/openssl-pki.ts';

describe("an intermediate's own CRL (crl_issuers)", () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  let dir: string;
  let server: Server;
  let fetcher: CrlFetcher;
  let root: Issued;
  let issuing: Issued;
  const leaves: Record<string, Issued> = {};
  /** What curl with the leaf `name` (its chain: leaf, then its issuer) gets on the CA-trusting API. */
  const status = async (name: string) => {
    const leaf = leaves[name];
    const above = name === 'under-root' ? '' : issuing.certPem;
    const client = { cert: pki.file(`${name}-chain.pem`, leaf.certPem + above), key: pki.file(`${name}-key.pem`, leaf.keyPem) };
    const r = await curl(pki, gw.port, '/ca/x', { client });
    return r.status === 200 ? 'admitted' : r.json.code;
  };

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    root = await createCa('Client Root');
    issuing = await createIntermediateCa(root, 'Issuing CA');
    for (const name of ['revoked-by-file', 'revoked-by-url', 'fine']) leaves[name] = await issueCert(issuing, name);
    leaves['under-root'] = await issueCert(root, 'under-root');
    dir = mkdtempSync(join(tmpdir(), 'mtlsgate-crl-issuers-'));
    writeFileSync(join(dir, 'root.pem'), root.certPem);
    writeFileSync(join(dir, 'issuing.pem'), issuing.certPem);
    // The intermediate's CRL also names the serial of a leaf the root signed: it revokes only what the intermediate signed.
    writeFileSync(join(dir, 'issuing.crl'), await createCrl(issuing, [leaves['revoked-by-file'], leaves['under-root'].cert.serialNumber]));
    const served = await createCrl(issuing, [leaves['revoked-by-url']]);
    server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(served));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/issuing.crl`;
    writeFileSync(
      join(dir, 'config.yaml'),
      `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [root.pem]\n---\n` +
        `kind: revocation\nid: issuing\ncrl: [issuing.crl]\ncrl_urls: ["${url}"]\ncrl_issuers: [issuing.pem]\n`,
    );
    gw = await gatewayOnConfig(pki, dir);
    fetcher = startCrlFetcher({ snapshot: () => gw.snapshot(), intervalMs: 600_000, retryMs: 600_000 });
    await fetcher.refreshAll();
  });

  after(async () => {
    fetcher?.stop();
    server?.close();
    await closeGatewayTest({ gw, echo, cleanup, dirs: [dir] });
  });

  it('its CRL file revokes a leaf it issued; a serial of a leaf the root signed, listed on it, revokes nothing', async () => {
    assert.equal(await status('revoked-by-file'), 'mtls.cert_revoked');
    assert.equal(await status('fine'), 'admitted');
    assert.equal(await status('under-root'), 'admitted');
  });

  it('its CRL at a crl_url verifies against it and revokes too', async () => {
    const fetched = [...crlStore.byUrl.values()][0];
    assert.deepEqual([fetched.lastError, fetched.caFingerprint], [null, issuing.fingerprint]);
    assert.equal(await status('revoked-by-url'), 'mtls.cert_revoked');
    assert.equal(await status('fine'), 'admitted');
  });

  it('compile: an entry that does not chain to a trusted CA, or is no CA for client certificates, is E_CRL_ISSUER at the entry', async () => {
    const other = mkdtempSync(join(tmpdir(), 'mtlsgate-crl-issuers-bad-'));
    try {
      const stranger = await createIntermediateCa(await createCa('Unrelated Root'), 'Stranger CA');
      writeFileSync(join(other, 'root.pem'), root.certPem);
      writeFileSync(join(other, 'root-key.pem'), root.keyPem);
      writeFileSync(join(other, 'stranger.pem'), stranger.certPem);
      writeFileSync(join(other, 'stranger.crl'), await createCrl(stranger, []));
      const serverCaExt = 'basicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign, cRLSign\nextendedKeyUsage = serverAuth';
      opensslIssue(other, 'servers', 'root', '/CN=Servers only CA', serverCaExt, 0x77);
      writeFileSync(
        join(other, 'config.yaml'),
        `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [root.pem]\n---\n` +
          'kind: revocation\nid: bad\ncrl: [stranger.crl]\ncrl_issuers:\n  - stranger.pem\n  - servers.pem\n',
      );
      const r = await compileDir(other);
      const found = r.diagnostics.filter((d) => d.code === 'E_CRL_ISSUER' || d.code === 'E_CRL_UNVERIFIED').map((d) => [d.code, d.line, d.col]);
      assert.deepEqual(found, [
        ['E_CRL_UNVERIFIED', 12, 7],
        ['E_CRL_ISSUER', 14, 5],
        ['E_CRL_ISSUER', 15, 5],
      ]);
      const messages = r.diagnostics.map((d) => d.message).join('\n');
      assert.match(messages, /stranger\.pem \(CN=Stranger CA, O=mtlsgate test\) is not signed by a CA the config trusts/);
      assert.match(messages, /servers\.pem \(CN=Servers only CA\) is not a CA that may issue client certificates: its extendedKeyUsage/);
      assert.equal(r.bundle, null);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
