// Issue 12, upstream TLS: "The bundle carries the key file's path, never the key; the runtime
// reads it at start and on SIGHUP; an unreadable key refuses start-up or the reload with a clear
// message." Through the built CLI: `serve` presents the gateway's client certificate to an HTTPS
// upstream that demands one and says which it got. The pair is renewed in place (same paths, the
// bundle unchanged) and SIGHUP makes the gateway present the new one; then the key file is made
// unreadable and SIGHUP is refused with the path named while the old pair serves on; at start an
// unreadable key is exit 2 with the same message.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { createServerCert, issueCert, type DemoPki } from '../cli/pki.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { CLI, curl, demoPki, run } from './helpers/serve-fixtures.ts';

const tmp = tempDir('upstream-tls-sighup');
let pki: DemoPki;
let upstream: Server;
let config: string;
let clientCert: string;
let clientKey: string;

before(async () => {
  pki = await demoPki(tmp.dir);
  const serverCert = await createServerCert(pki.ca, { dns: ['backend.internal'] });
  // The upstream asks for a client certificate of the demo CA and answers with its subject.
  upstream = createServer({ cert: serverCert.certPem, key: serverCert.keyPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerX509Certificate();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ clientSubject: peer?.subject ?? null }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  const keysDir = join(tmp.dir, 'gateway-keys');
  mkdirSync(keysDir);
  clientCert = join(keysDir, 'upstream-client.pem');
  clientKey = join(keysDir, 'upstream-client-key.pem');
  const first = await issueCert(pki.ca, 'gateway-one');
  writeFileSync(clientCert, first.certPem);
  writeFileSync(clientKey, first.keyPem, { mode: 0o600 });
  config = join(tmp.dir, 'config');
  mkdirSync(config);
  writeFileSync(join(config, 'upstream-ca.pem'), pki.ca.certPem);
  writeFileSync(
    join(config, 'api.yaml'),
    `kind: api\nid: backend\nuse_keyless: true\nproxy:\n  listen_path: /backend/\n  target_url: https://127.0.0.1:${port}\n  upstream_tls:\n    ca: upstream-ca.pem\n    server_name: backend.internal\n    client_certificate: ${clientCert}\n    client_key_file: ${clientKey}\n`,
  );
});

after(() => {
  upstream?.close();
  tmp.cleanup();
});

const subjectSeen = async (port: number) => {
  const r = await curl(`https://localhost:${port}/backend/x`, pki, null);
  assert.equal(r.status, 200, r.body);
  return String((JSON.parse(r.body) as { clientSubject: string | null }).clientSubject);
};

test('SIGHUP re-reads the upstream client pair at the same paths; an unreadable key refuses the reload, naming the path, and the old pair serves on', async () => {
  const bundle = join(tmp.dir, 'bundle.json');
  const c = await run(process.execPath, [CLI, 'compile', config, '-o', bundle, '--allow-outside', join(tmp.dir, 'gateway-keys')]);
  assert.equal(c.code, 0, c.stderr);
  const serve = spawnDemoGateway(bundle, pki);
  try {
    const port = listenPort(await serve.serving());
    assert.match(await subjectSeen(port), /CN=gateway-one/);

    const renewed = await issueCert(pki.ca, 'gateway-two');
    writeFileSync(clientCert, renewed.certPem);
    writeFileSync(clientKey, renewed.keyPem, { mode: 0o600 });
    serve.child.kill('SIGHUP');
    await waitFor('the renewed pair presented upstream', async () => /CN=gateway-two/.test(await subjectSeen(port)), 20_000, 100);

    rmSync(clientKey);
    serve.child.kill('SIGHUP');
    const refused = await waitFor(
      'the SIGHUP reload refused',
      () => serve.lines().find((l) => l.msg === 'bundle refused; the previous bundle keeps serving' && String(l.error).includes('client_key_file')),
      20_000,
    );
    assert.match(
      String(refused.error),
      new RegExp(`api backend: proxy.upstream_tls.client_key_file ${clientKey.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be read: no such file`),
    );
    assert.match(await subjectSeen(port), /CN=gateway-two/, 'the pair loaded before serves on');
  } finally {
    serve.kill();
    await serve.exited;
  }

  // At start, the same unreadable key: exit 2 with the message.
  const start = spawnDemoGateway(bundle, pki);
  const { code } = await start.exited;
  assert.equal(code, 2);
  assert.match(start.output().stderr, /client_key_file .* cannot be read: no such file/);
});
