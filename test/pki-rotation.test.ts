// Several certificates per key, end to end: a key's YAML lists the old and the renewed
// certificate (files and a sha256 pin), both identify it through the real gateway with curl
// as the client; after the old one is removed from the YAML and the bundle swapped, it is
// refused on its next request.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueCert } from '../cli/pki.ts';
import { loadBundle } from '../bundle/read.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { closeGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

describe('key rotation with certificates: [...]', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  let dir: string;

  const compile = async (certificates: string[]) => {
    writeFileSync(join(dir, 'api.yaml'), `kind: api\nid: app\nproxy:\n  listen_path: /app/\n  target_url: ${echo.url}\nauth:\n  use_certificate: true\n`);
    writeFileSync(join(dir, 'key.yaml'), `kind: key\nid: svc\ncertificates:\n${certificates.map((c) => `  - ${c}\n`).join('')}access_rights:\n  app: {}\n`);
    const r = await compileDir(dir);
    assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
    return loadBundle(r.bundle!);
  };

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    dir = mkdtempSync(join(tmpdir(), 'mtlsgate-rotation-'));
    const renewed = await issueCert(pki.ca, 'alice');
    pki.file('alice-renewed.pem', renewed.certPem);
    pki.file('alice-renewed-key.pem', renewed.keyPem);
    writeFileSync(join(dir, 'old.pem'), pki.clients.alice.certPem);
    writeFileSync(join(dir, 'new.pem'), renewed.certPem);
    gw = await startTestGateway(pki, await compile(['old.pem', 'new.pem', `sha256:${pki.clients.bob.fingerprint}`]));
  });

  after(() => closeGatewayTest({ gw, echo, cleanup, dirs: [dir] }));

  it('the old and the renewed certificate both identify the key, and so does a sha256 pin', async () => {
    for (const client of ['alice', 'alice-renewed', 'bob']) {
      const r = await curl(pki, gw.port, '/app/x', { client });
      assert.equal(r.status, 200, `${client}: ${r.body}`);
      assert.equal(gw.records.at(-1)?.key, 'svc');
    }
  });

  it('after the old certificate is removed from the YAML, it is refused; the renewed one still passes', async () => {
    gw.use(await compile(['new.pem']));
    const old = await curl(pki, gw.port, '/app/x', { client: 'alice' });
    assert.equal(old.status, 401, old.body);
    assert.equal(old.json.code, 'auth.cert_not_found');
    assert.equal((await curl(pki, gw.port, '/app/x', { client: 'alice-renewed' })).status, 200);
  });
});
