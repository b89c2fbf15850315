// An imported Tyk config serves what Tyk did: `mtlsgate import tyk`, compile, `mtlsgate serve`,
// real certificates and real curl.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { importTyk, importTmpDir } from './helpers/import-tyk.ts';
import { compileWithCli, curl, demoPki } from './helpers/serve-fixtures.ts';
import { startEcho } from './helpers/gateway-fixtures.ts';

const tmp = importTmpDir();

test('an imported config serves what Tyk did: certificate ids pin real certificates, a sha256 key hash is the token, an unhashed key id is its token (hash_keys: false)', async () => {
  const dir = join(tmp, 'e2e');
  const pki = await demoPki(dir);
  const upstream = await startEcho();
  after(() => upstream.close());
  const fp = (name: string) => new X509Certificate(readFileSync(join(pki.dir, `${name}.pem`))).fingerprint256.replaceAll(':', '').toLowerCase();
  const org = '5e9d9544a1dcd60001d0ed20';
  const tyk = join(dir, 'tyk');
  mkdirSync(join(tyk, 'keys'), { recursive: true });
  const api = (id: string, listen: string, extra: object) => ({
    api_id: id,
    name: id,
    org_id: org,
    proxy: { listen_path: listen, target_url: upstream.url, strip_listen_path: true },
    ...extra,
  });
  writeFileSync(
    join(tyk, 'reports.json'),
    JSON.stringify(api('reports', '/reports/', { use_keyless: true, use_mutual_tls_auth: true, client_certificates: [org + fp('partner-a')] })),
  );
  writeFileSync(
    join(tyk, 'profile.json'),
    JSON.stringify(api('profile', '/profile/', { use_standard_auth: true, auth_configs: { authToken: { auth_header_name: 'X-Key', use_certificate: true } } })),
  );
  writeFileSync(
    join(tyk, 'policies.json'),
    JSON.stringify({ p: { id: 'p', access_rights: { profile: { api_id: 'profile', allowed_urls: [{ url: '/profile/me', methods: ['GET'] }] } } } }),
  );
  // A JSON-form Tyk token, as the gateway creates them; with hash_keys: false it is the key id.
  const token = Buffer.from(JSON.stringify({ org, id: 'b0b', h: 'murmur64' })).toString('base64');
  writeFileSync(join(tyk, 'keys', `${token}.json`), JSON.stringify({ alias: 'bob', apply_policies: ['p'], certificate: org + fp('bob') }));
  const aliceToken = 'alice-demo-token';
  writeFileSync(
    join(tyk, 'keys', 'alice.json'),
    JSON.stringify({ key_hash: createHash('sha256').update(aliceToken).digest('hex'), data: { alias: 'alice', apply_policies: ['p'] } }),
  );
  writeFileSync(join(tyk, 'tyk.conf'), JSON.stringify({ listen_port: 8080, secret: 's', hash_keys: false }));
  // hash_keys false: every key id is a token; alice's key_hash is explicitly a hash.
  const o = join(dir, 'out');
  const r = importTyk(o, tyk);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /the key id is the token itself/);
  assert.equal(readFileSync(join(o, 'keys/bob.yaml'), 'utf8').includes(token), false, 'the token never reaches the YAML');
  assert.equal(r.stdout.includes(token), false, 'nor the report');
  assert.match(readFileSync(join(o, 'keys/bob.yaml'), 'utf8'), /# Source: .*keys\/<token>\.json#/);
  const bundle = join(dir, 'bundle.json');
  await compileWithCli(o, bundle);
  const serve = spawnDemoGateway(bundle, pki, { admin: 'loopback' });
  try {
    const base = `https://localhost:${listenPort(await serve.serving())}`;
    assert.equal((await curl(`${base}/reports/daily`, pki, 'partner-a')).status, 200, 'pinned by its Tyk certificate id');
    assert.equal((await curl(`${base}/reports/daily`, pki, 'mallory')).status, 403);
    assert.equal((await curl(`${base}/profile/me`, pki, 'bob')).status, 200, "bob's certificate id identifies his key");
    assert.equal((await curl(`${base}/profile/me`, pki, null, ['-H', `X-Key: ${token}`])).status, 401, "bob's token needs his certificate (bound key)");
    assert.equal((await curl(`${base}/profile/me`, pki, 'bob', ['-H', `X-Key: ${token}`])).status, 200, 'the unhashed Tyk key id is his token');
    assert.equal((await curl(`${base}/profile/me`, pki, 'alice', ['-H', `X-Key: ${aliceToken}`])).status, 200, 'the sha256 key hash is the token');
    assert.equal((await curl(`${base}/profile/other`, pki, 'bob')).status, 403, 'allowed_urls came along');
  } finally {
    serve.kill();
    await serve.exited;
  }
});
