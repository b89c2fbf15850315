// docs/security.md section 34: a CA or intermediate on a `kind: revocation` deny list revokes
// every chain through it. Before, only the leaf's fingerprint was looked up: denying a
// compromised issuing CA (or a trusted CA) refused nothing it issued, with curl, in
// `mtlsgate explain` and in `mtlsgate test` alike (they run the runtime's stages).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DemoPki } from '../cli/pki.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa, opensslIssue } from './helpers/openssl-pki.ts';
import { accessTestCase, tempDir } from './helpers/ops-fixtures.ts';
import { getResumable } from './helpers/tls-resume.ts';
import { CLI, compileWithCli, curl, demoPki, run } from './helpers/serve-fixtures.ts';

const tmp = tempDir('deny-ca');
let pki: DemoPki;
let echo: EchoUpstream;
let root: OpensslCa;
let other: OpensslCa;
let bundle: string;
let gw: ReturnType<typeof spawnDemoGateway>;
const CA_EXT = 'basicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign, cRLSign';
const LEAF_EXT = 'basicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth';

before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
  root = createOpensslCa('Root CA');
  other = createOpensslCa('Denied root CA');
  const compromised = opensslIssue(root.dir, 'compromised', 'ca', '/CN=Compromised issuing CA', CA_EXT, 0x51);
  opensslIssue(root.dir, 'sound', 'ca', '/CN=Sound issuing CA', CA_EXT, 0x52);
  // Each client: its certificate file holds the leaf and the intermediate it sends (curl sends both).
  const client = (name: string, dir: string, issuer: string, serial: number, chain: boolean) => {
    const leaf = opensslIssue(dir, name, issuer, `/CN=${name}`, LEAF_EXT, serial);
    writeFileSync(join(pki.dir, `${name}.pem`), leaf.certPem + (chain ? readFileSync(join(dir, `${issuer}.pem`), 'utf8') : ''));
    writeFileSync(join(pki.dir, `${name}-key.pem`), readFileSync(leaf.key));
    writeFileSync(join(tmp.dir, `${name}.pem`), readFileSync(join(pki.dir, `${name}.pem`)));
  };
  client('alice', root.dir, 'compromised', 0x61, true);
  client('bob', root.dir, 'sound', 0x62, true);
  client('carol', root.dir, 'ca', 0x63, false);
  client('dave', other.dir, 'ca', 0x64, false);
  const cfg = join(tmp.dir, 'config');
  mkdirSync(cfg);
  writeFileSync(join(cfg, 'root.pem'), root.caPem);
  writeFileSync(join(cfg, 'other.pem'), other.caPem);
  writeFileSync(join(cfg, 'compromised.pem'), compromised.certPem);
  const api = (id: string, ca: string) =>
    `kind: api\nid: ${id}\nproxy:\n  listen_path: /${id}/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [${ca}]\n---\n`;
  const kase = (name: string, url: string, who: string, expect: string) => accessTestCase(name, url, `../${who}.pem`, expect);
  writeFileSync(
    join(cfg, 'config.yaml'),
    [
      api('a', 'root.pem'),
      api('b', 'other.pem'),
      // The compromised intermediate, and a whole trusted CA, denied by their certificates.
      'kind: revocation\nid: compromise\ncertificates: [compromised.pem, other.pem]\n---\n',
      'kind: test\nid: deny\ncases:\n',
      kase('alice, below the denied intermediate', '/a/x', 'alice', 'status: 403, code: mtls.cert_revoked'),
      kase('bob, below its sibling', '/a/x', 'bob', 'status: 200'),
      kase('carol, signed by the root itself', '/a/x', 'carol', 'status: 200'),
      kase('dave, below the denied CA', '/b/x', 'dave', 'status: 403, code: mtls.cert_revoked'),
    ].join(''),
  );
  bundle = join(tmp.dir, 'bundle.json');
  await compileWithCli(cfg, bundle, ['--allow-outside', tmp.dir]);
  gw = spawnDemoGateway(bundle, pki);
});
after(async () => {
  gw?.kill();
  await echo?.close();
  root?.cleanup();
  other?.cleanup();
  tmp.cleanup();
});

const answer = async (who: string, path: string) => {
  const r = await curl(`https://127.0.0.1:${listenPort(await gw.serving())}${path}`, pki, who);
  return r.status === 200 ? 'admitted' : `${r.status} ${(JSON.parse(r.body) as { code: string }).code}`;
};

test('curl: a leaf below a deny-listed intermediate, or a deny-listed CA, is 403 mtls.cert_revoked; its siblings pass', async () => {
  assert.deepEqual(
    [await answer('alice', '/a/x'), await answer('bob', '/a/x'), await answer('carol', '/a/x'), await answer('dave', '/b/x')],
    ['403 mtls.cert_revoked', 'admitted', 'admitted', '403 mtls.cert_revoked'],
  );
});

test('a resumed TLS session of alice (no chain sent) is refused too', async () => {
  const options = {
    ca: readFileSync(join(pki.dir, 'ca.pem')),
    cert: readFileSync(join(pki.dir, 'alice.pem')),
    key: readFileSync(join(pki.dir, 'alice-key.pem')),
  };
  const port = listenPort(await gw.serving());
  const get = (session?: Buffer) => getResumable(options, port, '/a/x', session);
  const first = await get();
  assert.equal(first.status, 403);
  const again = await get(first.session);
  assert.deepEqual([again.resumed, again.status], [true, 403]);
});

test('explain and mtlsgate test agree, and explain names the denied CA', async () => {
  const alice = await run(process.execPath, [CLI, 'explain', '--bundle', bundle, '--cert', join(tmp.dir, 'alice.pem'), '/a/x']);
  assert.equal(alice.code, 1, alice.stdout + alice.stderr);
  assert.match(alice.stdout, /mtls\.cert_revoked/);
  assert.match(alice.stdout, /was issued under CA sha256:[0-9a-f]{64} \("CN=Compromised issuing CA"\), which is on the deny list/);
  const dave = await run(process.execPath, [CLI, 'explain', '--bundle', bundle, '--cert', join(tmp.dir, 'dave.pem'), '/b/x']);
  assert.match(dave.stdout, /was issued under CA sha256:[0-9a-f]{64} \("CN=Denied root CA"\), which is on the deny list/);
  const bob = await run(process.execPath, [CLI, 'explain', '--bundle', bundle, '--cert', join(tmp.dir, 'bob.pem'), '/a/x']);
  assert.equal(bob.code, 0, bob.stdout);
  const t = await run(process.execPath, [CLI, 'test', join(tmp.dir, 'config'), '--allow-outside', tmp.dir]);
  assert.equal(t.code, 0, t.stdout + t.stderr);
  assert.match(t.stdout, /\n4 passed, 0 failed\n$/);
});
