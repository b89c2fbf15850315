// proxy.upstream_tls end to end: YAML -> compile -> gateway -> a real HTTPS upstream that
// demands a client certificate; curl as the client.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { loadBundle } from '../bundle/read.ts';
import { issueCert, createServerCert } from '../cli/pki.ts';
import { buildSnapshot } from '../runtime/snapshot.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { curl, makePki, startTestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';

describe('proxy.upstream_tls', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let upstream: Server;
  let upstreamPort: number;
  let upstreamFingerprint: string;
  let gatewayClientCert: string;
  let gatewayClientKey: string;

  before(async () => {
    ({ pki, cleanup } = await makePki());
    const serverCert = await createServerCert(pki.ca, { dns: ['backend.internal'] });
    upstreamFingerprint = serverCert.fingerprint;
    const gatewayIdentity = await issueCert(pki.ca, 'mtlsgate-gateway');
    gatewayClientCert = pki.file('gateway-client.pem', gatewayIdentity.certPem);
    gatewayClientKey = pki.file('gateway-client-key.pem', gatewayIdentity.keyPem);
    // The upstream asks for and verifies a client certificate, and tells who presented it.
    upstream = createServer(
      { cert: serverCert.certPem, key: serverCert.keyPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerX509Certificate();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ path: req.url, clientSubject: peer?.subject ?? null }));
      },
    );
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamPort = (upstream.address() as AddressInfo).port;
  });
  after(() => {
    upstream.close();
    removeConfigs();
    cleanup();
  });

  function config(tls: string): string {
    return writeConfig({
      'certs/upstream-ca.pem': pki.ca.certPem,
      'api.yaml': `kind: api
id: backend
use_keyless: true
proxy:
  listen_path: /backend/
  target_url: https://127.0.0.1:${upstreamPort}
  upstream_tls:
${tls
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
`,
    });
  }

  async function compiled(tls: string) {
    const result = await compileDir(config(tls));
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    return loadBundle(result.bundle!);
  }

  it('verifies the upstream against the CA, checks server_name, presents the client certificate', async () => {
    const bundle = await compiled(
      `ca: certs/upstream-ca.pem\nserver_name: backend.internal\nclient_certificate: ${gatewayClientCert}\nclient_key_file: ${gatewayClientKey}`,
    );
    const tls = bundle.content.apis.backend.upstream_tls!;
    assert.match(tls.ca_pem!, /BEGIN CERTIFICATE/);
    assert.equal(tls.client_key_file, gatewayClientKey, 'the path, never the key');
    assert.ok(!JSON.stringify(bundle.content).includes('PRIVATE KEY'));
    const gw = await startTestGateway(pki, bundle);
    try {
      const r = await curl(pki, gw.port, '/backend/hello');
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json.path, '/hello');
      assert.match(JSON.parse(r.body).clientSubject, /CN=mtlsgate-gateway/);
    } finally {
      await gw.close();
    }
  });

  it('a wrong server_name, an untrusted upstream, or one not on the pin list, is a 502; the record says which', async () => {
    const client = `client_certificate: ${gatewayClientCert}\nclient_key_file: ${gatewayClientKey}`;
    const cases = [
      { tls: `ca: certs/upstream-ca.pem\nserver_name: other.internal\n${client}`, cause: 'ERR_TLS_CERT_ALTNAME_INVALID' },
      // No ca: the system roots, which do not know the test CA the upstream sends with its leaf.
      { tls: `server_name: backend.internal\n${client}`, cause: 'SELF_SIGNED_CERT_IN_CHAIN' },
      { tls: `ca: certs/upstream-ca.pem\nserver_name: backend.internal\npinned_sha256: ["sha256:${'0'.repeat(64)}"]\n${client}`, cause: 'CERT_NOT_PINNED' },
    ];
    await Promise.all(
      cases.map(async ({ tls, cause }) => {
        const gw = await startTestGateway(pki, await compiled(tls));
        try {
          const r = await curl(pki, gw.port, '/backend/x');
          assert.equal(r.status, 502, r.body);
          // The client is told the code only, never the cause.
          assert.deepEqual(r.json, { error: 'There was a problem proxying the request', code: 'proxy.upstream_error' });
          assert.equal(gw.records.at(-1)?.upstreamError, cause);
        } finally {
          await gw.close();
        }
      }),
    );
  });

  it('a pin alone authenticates a self-signed upstream', async () => {
    const bundle = await compiled(
      `pinned_sha256: ["sha256:${upstreamFingerprint}"]\nclient_certificate: ${gatewayClientCert}\nclient_key_file: ${gatewayClientKey}`,
    );
    const gw = await startTestGateway(pki, bundle);
    try {
      const r = await curl(pki, gw.port, '/backend/pinned');
      assert.equal(r.status, 200, r.body);
    } finally {
      await gw.close();
    }
  });

  it('without the client certificate the upstream refuses the handshake: 502', async () => {
    const gw = await startTestGateway(pki, await compiled('ca: certs/upstream-ca.pem\nserver_name: backend.internal'));
    try {
      assert.equal((await curl(pki, gw.port, '/backend/x')).status, 502);
    } finally {
      await gw.close();
    }
  });

  it('an unreadable key file refuses the snapshot (start-up or reload), naming the path', async () => {
    const missing = join(pki.dir, 'no-such-key.pem');
    const result = await import('../compiler/index.ts').then((m) =>
      m.compileDir(config(`ca: certs/upstream-ca.pem\nclient_certificate: ${gatewayClientCert}\nclient_key_file: ${missing}`)),
    );
    assert.throws(
      () => buildSnapshot(loadBundle(result.bundle!)),
      new RegExp(`api backend: proxy.upstream_tls.client_key_file ${missing} cannot be read: no such file`),
    );
    writeFileSync(missing, 'not a key');
    assert.throws(() => buildSnapshot(loadBundle(result.bundle!)), /not a usable pair/);
    // A relative path (as the config's own paths are) is the gateway's: the message says from where it was read.
    const relative = await import('../compiler/index.ts').then((m) =>
      m.compileDir(config(`ca: certs/upstream-ca.pem\nclient_certificate: ../certs/gateway.pem\nclient_key_file: ${missing}`)),
    );
    assert.throws(
      () => buildSnapshot(loadBundle(relative.bundle!)),
      /client_certificate \.\.\/certs\/gateway\.pem cannot be read: no such file \(a relative path is read from serve's working directory, .*: give an absolute path\)/,
    );
  });

  it('upstream_tls on a plain http:// target is a config error', async () => {
    const dir = writeConfig({
      'api.yaml': 'kind: api\nid: plain\nuse_keyless: true\nproxy:\n  listen_path: /p/\n  target_url: http://127.0.0.1:1\n  upstream_tls: {server_name: x}\n',
    });
    const result = await import('../compiler/index.ts').then((m) => m.compileDir(dir));
    const e = result.diagnostics.find((d) => d.code === 'E_FIELD_VALUE');
    assert.match(e?.message ?? '', /upstream_tls applies to an https:\/\/ target_url/);
  });
});
