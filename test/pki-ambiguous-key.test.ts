// Issue 11: "At runtime exactly one key is chosen, or the request is refused." Two keys under one
// CA that match on different fields (subject_cn and san_uri) compile with a warning, since most
// certificates carry only one of the values; a certificate that carries both matches both keys
// and must be refused (401 auth.cert_ambiguous), never given to whichever key was indexed first.
// The access test decides it with the runtime's stages, and a running gateway answers the same
// over curl (an openssl-run CA, real TLS).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DemoPki } from '../cli/pki.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa } from './helpers/openssl-pki.ts';
import { accessTestCase, waitFor } from './helpers/ops-fixtures.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { CLI, curl, demoPki, run } from './helpers/serve-fixtures.ts';

const URI = 'spiffe://corp.example/ns/payments/sa/api';
let tmp: string;
let config: string;
let bundle: string;
let ca: OpensslCa;
let pki: DemoPki;
let echo: EchoUpstream;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-ambiguous-'));
  config = join(tmp, 'config');
  mkdirSync(join(config, 'clients'), { recursive: true });
  pki = await demoPki(tmp);
  echo = await startEcho();
  ca = createOpensslCa();
  // both: CN=payments AND the SPIFFE URI; uri-only: the URI alone; cn-only: the CN alone.
  const leaves = {
    both: ca.issue('both', '/CN=payments', `URI:${URI}`),
    'uri-only': ca.issue('uri-only', '/CN=other', `URI:${URI}`),
    'cn-only': ca.issue('cn-only', '/CN=payments'),
  };
  for (const name of Object.keys(leaves)) {
    copyFileSync(join(ca.dir, `${name}.pem`), join(config, 'clients', `${name}.pem`));
    copyFileSync(join(ca.dir, `${name}.pem`), join(pki.dir, `${name}.pem`));
    copyFileSync(join(ca.dir, `${name}-key.pem`), join(pki.dir, `${name}-key.pem`));
  }
  writeFileSync(join(config, 'ca.pem'), ca.caPem);
  const matchKey = (id: string, field: string) => `kind: key\nid: ${id}\ncertificate_match:\n  issuer: ca.pem\n  ${field}\naccess_rights:\n  dyn: {}\n---\n`;
  writeFileSync(
    join(config, 'config.yaml'),
    [
      `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${echo.url}\nauth:\n  use_certificate: true\n---\n`,
      matchKey('by-cn', 'subject_cn: payments'),
      matchKey('by-uri', `san_uri: ${URI}`),
      'kind: test\nid: one-key\ncases:\n',
      accessTestCase('both values match two keys and are refused', '/dyn/x', 'clients/both.pem', 'status: 401, code: auth.cert_ambiguous'),
      accessTestCase('the URI alone is key by-uri', '/dyn/x', 'clients/uri-only.pem', 'status: 200, key: by-uri'),
      accessTestCase('the CN alone is key by-cn', '/dyn/x', 'clients/cn-only.pem', 'status: 200, key: by-cn'),
    ].join(''),
  );
  bundle = join(tmp, 'bundle.json');
});

after(async () => {
  await echo?.close();
  ca?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

test('keys matching one CA on different fields compile with a warning naming the refusal; the access test refuses a certificate with both values', async () => {
  const c = await run(process.execPath, [CLI, 'check', config]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(
    c.stderr,
    /W_MATCH_FIELDS_DIFFER: keys "by-cn" \(subject_cn payments\) and "by-uri" \(san_uri spiffe:\/\/corp\.example\/ns\/payments\/sa\/api\) .*\(401 auth\.cert_ambiguous\)/,
  );
  assert.match(c.stderr, /3 access tests passed/);
});

test('a running gateway refuses the certificate that matches two keys with 401 auth.cert_ambiguous, and gives each single match its key (curl)', async () => {
  const compiled = await run(process.execPath, [CLI, 'compile', config, '-o', bundle]);
  assert.equal(compiled.code, 0, compiled.stderr);
  const serve = spawnDemoGateway(bundle, pki);
  try {
    const port = listenPort(await serve.serving());
    const both = await curl(`https://localhost:${port}/dyn/x`, pki, 'both');
    assert.equal(both.status, 401, both.body);
    assert.equal((JSON.parse(both.body) as { code: string }).code, 'auth.cert_ambiguous');
    for (const client of ['uri-only', 'cn-only']) {
      const r = await curl(`https://localhost:${port}/dyn/x`, pki, client);
      assert.equal(r.status, 200, `${client}: ${r.body}`);
    }
    // The log line names no key for the refused request (nothing was chosen).
    const refused = await waitFor('the request line of the refusal', () => serve.lines().find((l) => l.status === 401));
    assert.equal(refused.key_id ?? null, null);
  } finally {
    serve.kill();
    await serve.exited;
  }
});
