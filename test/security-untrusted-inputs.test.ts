// Inputs an attacker writes, attacked (session 16, docs/security.md section 55): a certificate
// with a negative serial revoked by its CA's CRL (curl against a gateway compiled from the config),
// YAML files built to exhaust the compiler's memory through its diagnostics or the full YAML
// parser, and bytes YAML forbids.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certificateSerial, parseCrl } from '../bundle/crl.ts';
import { compileDir } from '../compiler/index.ts';
import { closeGatewayTest, gatewayOnConfig, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa, type OpensslLeaf, opensslIssue } from './helpers/openssl-pki.ts';

const LEAF = 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth';

describe('a certificate with a negative serial is revoked by the CRL that lists it', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let ca: OpensslCa;
  let gw: TestGateway;
  let dir: string;
  const leaf: Record<string, OpensslLeaf> = {};

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    ca = createOpensslCa('Negative Serial CA');
    // openssl x509 -set_serial -5 writes the INTEGER 0xFB; node:crypto reads it back as "-05".
    leaf.neg = opensslIssue(ca.dir, 'neg', 'ca', '/CN=neg', LEAF, -5);
    leaf.big = opensslIssue(ca.dir, 'big', 'ca', '/CN=big', LEAF, -70000);
    leaf.sibling = opensslIssue(ca.dir, 'sibling', 'ca', '/CN=sibling', LEAF, 7);
    ca.revoke(leaf.neg);
    ca.revoke(leaf.big);
    const crl = ca.gencrl();
    dir = mkdtempSync(join(tmpdir(), 'mtlsgate-neg-serial-'));
    writeFileSync(join(dir, 'ca.pem'), ca.caPem);
    writeFileSync(join(dir, 'internal.crl'), crl);
    const key = (id: string) => `kind: key\nid: ${id}\ncertificate_match:\n  issuer: ca.pem\n  subject_cn: ${id}\naccess_rights:\n  dyn: {}\n---\n`;
    writeFileSync(
      join(dir, 'config.yaml'),
      [
        `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${echo.url}\nauth:\n  use_certificate: true\n---\n`,
        `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\n`,
        key('neg'),
        key('big'),
        key('sibling'),
        'kind: revocation\nid: internal\ncrl: [internal.crl]\n',
      ].join(''),
    );
    gw = await gatewayOnConfig(pki, dir);
  });
  after(async () => {
    await closeGatewayTest({ gw, echo, cleanup, dirs: [dir] });
    ca?.cleanup();
  });

  it('refused with 403 mtls.cert_revoked on a key and on a CA entry; the sibling passes', async () => {
    for (const name of ['neg', 'big']) {
      for (const path of ['/dyn/x', '/ca/x']) {
        const r = await curl(pki, gw.port, path, { client: { cert: leaf[name].cert, key: leaf[name].key } });
        assert.deepEqual([r.status, r.json.code], [403, 'mtls.cert_revoked'], `${name} ${path}`);
      }
    }
    for (const path of ['/dyn/x', '/ca/x']) {
      const r = await curl(pki, gw.port, path, { client: { cert: leaf.sibling.cert, key: leaf.sibling.key } });
      assert.equal(r.status, 200, path);
    }
  });

  it('the serial a certificate is looked up by is its CRL entry, byte for byte (two’s complement)', () => {
    const crl = parseCrl(Buffer.from(ca.gencrl()));
    assert.deepEqual(crl.serials.sort(), [certificateSerial('-05'), certificateSerial('-011170')].sort());
    assert.deepEqual(['-05', '-80', '-81', '-FF', '-0100', '-011170', '05', '00FB', '-00'].map(certificateSerial), [
      'fb',
      '80',
      'ff7f',
      'ff01',
      'ff00',
      'feee90',
      '5',
      'fb',
      '0',
    ]);
  });
});
