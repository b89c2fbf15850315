// Access tests, explain and who on the PKI rules of issue 11, with certificates made by an
// openssl-run CA: keys identified by subject under a CA (certificate_match), an API trusting a
// CA for some subjects only, a CRL made by `openssl ca -gencrl`, a deny list, and a pinned
// certificate whose extendedKeyUsage is serverAuth only. Every verdict is the runtime's (the
// real ClientIdentity built from the PEM); a running gateway gives the same answers over curl.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityCache } from '../access/identity.ts';
import { runAccessTests } from '../access/run.ts';
import type { DemoPki } from '../cli/pki.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa } from './helpers/openssl-pki.ts';
import { accessTestCase } from './helpers/ops-fixtures.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { CLI, curl, demoPki, run } from './helpers/serve-fixtures.ts';

const SPIFFE = 'spiffe://corp.example/ns';
let tmp: string;
let config: string;
let clients: string;
let bundle: string;
let ca: OpensslCa;
let pki: DemoPki;
let echo: EchoUpstream;
const LEAVES = ['pay', 'rep', 'sib1', 'sib2', 'lost', 'srv'];

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-access-pki-'));
  config = join(tmp, 'config');
  clients = join(tmp, 'clients');
  mkdirSync(config);
  mkdirSync(clients);
  pki = await demoPki(tmp); // the gateway's server certificate (and curl's --cacert)
  echo = await startEcho();
  ca = createOpensslCa();
  const leaves = {
    pay: ca.issue('pay', '/CN=pay', `URI:${SPIFFE}/payments/sa/api`),
    rep: ca.issue('rep', '/CN=rep', `URI:${SPIFFE}/reporting/daily`),
    sib1: ca.issue('sib1', '/CN=sib1', `URI:${SPIFFE}/sib/sa/one`),
    sib2: ca.issue('sib2', '/CN=sib2', `URI:${SPIFFE}/sib/sa/two`),
    lost: ca.issue('lost', '/CN=lost', `URI:${SPIFFE}/lost/sa/x`),
  };
  ca.revoke(leaves.sib1);
  writeFileSync(join(config, 'internal.crl'), ca.gencrl());
  writeFileSync(join(config, 'ca.pem'), ca.caPem);
  // A self-signed server certificate (EKU serverAuth only), pinned: not usable as a client's.
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'srv-key.pem', '-out', 'srv.pem', '-days', '30'],
      ...['-subj', '/CN=srv', '-addext', 'extendedKeyUsage=serverAuth', '-addext', 'basicConstraints=critical,CA:FALSE'],
    ],
    { cwd: ca.dir, stdio: 'ignore' },
  );
  for (const name of LEAVES) {
    // The clients' certificates: where who --certs looks, and where curl finds cert + key.
    copyFileSync(join(ca.dir, `${name}.pem`), join(clients, `${name}.pem`));
    copyFileSync(join(ca.dir, `${name}.pem`), join(pki.dir, `${name}.pem`));
    copyFileSync(join(ca.dir, `${name}-key.pem`), join(pki.dir, `${name}-key.pem`));
  }
  copyFileSync(join(clients, 'lost.pem'), join(config, 'lost.pem'));
  copyFileSync(join(clients, 'srv.pem'), join(config, 'srv.pem'));
  const matchKey = (id: string, fields: string) => `kind: key\nid: ${id}\ncertificate_match:\n  issuer: ca.pem\n${fields}access_rights:\n  dyn: {}\n---\n`;
  // The cases name the clients' certificates beside the config directory: every compile below
  // allows that directory (config reads are confined, docs/security.md item 4).
  const cert = (name: string) => `../clients/${name}.pem`;
  const kase = (name: string, url: string, client: string, expect: string) => accessTestCase(name, url, cert(client), expect);
  writeFileSync(
    join(config, 'config.yaml'),
    [
      `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${echo.url}\nauth:\n  use_certificate: true\n---\n`,
      `kind: api\nid: rep\nproxy:\n  listen_path: /rep/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n  - {issuer: ca.pem, san_uri: "${SPIFFE}/reporting/*"}\n  - {issuer: ca.pem, subject_cn: sib1}\n  - {issuer: ca.pem, subject_cn: sib2}\n  - srv.pem\n---\n`,
      matchKey('payments', `  san_uri: ${SPIFFE}/payments/sa/api\n`),
      matchKey('sib', `  san_uri: "${SPIFFE}/sib/sa/*"\n`),
      matchKey('lost', `  san_uri: ${SPIFFE}/lost/sa/x\n`),
      'kind: revocation\nid: internal\ncrl: [internal.crl]\ncertificates: [lost.pem]\n---\n',
      [
        'kind: test\nid: pki\ncases:\n',
        kase('pay is key payments by its SPIFFE URI', '/dyn/x', 'pay', 'status: 200, key: payments'),
        kase('sib2 is key sib by a wildcard URI', '/dyn/x', 'sib2', 'status: 200, key: sib'),
        kase('sib1 is on the CRL (dynamic)', '/dyn/x', 'sib1', 'status: 403, code: mtls.cert_revoked'),
        kase('sib1 is on the CRL (static entry)', '/rep/x', 'sib1', 'status: 403, code: mtls.cert_revoked'),
        kase('lost is on the deny list', '/dyn/x', 'lost', 'status: 403, code: mtls.cert_revoked'),
        kase('rep passes the reporting/* entry', '/rep/x', 'rep', 'status: 200, api: rep'),
        kase('sib2 passes the subject_cn entry', '/rep/x', 'sib2', 'status: 200'),
        kase('pay matches no entry of rep', '/rep/x', 'pay', 'status: 403, code: mtls.cert_not_allowed'),
        kase('rep identifies no key on dyn', '/dyn/x', 'rep', 'status: 401, code: auth.cert_not_found'),
        kase('a pinned server certificate is not a client certificate', '/rep/x', 'srv', 'status: 403, code: mtls.cert_not_client'),
      ].join(''),
    ].join(''),
  );
  bundle = join(tmp, 'bundle.json');
  const c = await run(process.execPath, [CLI, 'compile', config, '-o', bundle, '--allow-outside', clients]);
  assert.equal(c.code, 0, c.stderr);
});

after(async () => {
  await echo?.close();
  ca?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const cli = (...args: string[]) => run(process.execPath, [CLI, ...args]);

test('access tests decide certificate_match, subject entries, CRL, deny list and extendedKeyUsage with the real identity', async () => {
  const t = await cli('test', config, '--allow-outside', clients);
  assert.equal(t.code, 0, t.stdout + t.stderr);
  assert.match(t.stdout, /\n10 passed, 0 failed\n$/);
  const check = await cli('check', config, '--allow-outside', clients);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stderr, /10 access tests passed/);
});

test('parity: a running gateway answers every case as the stages did (real TLS, curl)', async () => {
  const result = await compileDir(config, { accessTests: runAccessTests, allowOutside: [clients] });
  assert.equal(result.errorCount, 0);
  const { cases, outcomes } = result.tests;
  const serve = spawnDemoGateway(bundle, pki);
  try {
    const port = listenPort(await serve.serving());
    for (const [i, c] of cases.entries()) {
      const client = LEAVES.find((n) => readFileSync(join(clients, `${n}.pem`), 'latin1') === c.request.certificatePem) ?? null;
      const r = await curl(`https://localhost:${port}${c.request.url}`, pki, client);
      const code = r.status === 200 ? null : (JSON.parse(r.body) as { code: string }).code;
      assert.deepEqual({ status: r.status, code }, { status: outcomes![i].actual.status, code: outcomes![i].actual.code }, c.name);
    }
  } finally {
    serve.kill();
    await serve.exited;
  }
});

test('explain names the CRL, the deny list, the subject entry, the certificate_match and the extendedKeyUsage', async () => {
  const sib1 = await cli('explain', '--bundle', bundle, '--cert', join(clients, 'sib1.pem'), '/rep/x');
  assert.equal(sib1.code, 1);
  assert.match(sib1.stdout, /revocation +refuse +mtls\.cert_revoked: .*serial [0-9a-f]+ is on the CRL of CA "CN=Test Internal CA" \(revocation internal\)/);
  assert.match(sib1.stdout, /static-mtls +not reached/);
  const lost = await cli('explain', '--bundle', bundle, '--cert', join(clients, 'lost.pem'), '/dyn/x');
  assert.match(lost.stdout, /revocation +refuse +mtls\.cert_revoked: .*certificate sha256:[0-9a-f]{64} \(CN=lost, .*\) is on the deny list/);
  const sib2 = await cli('explain', '--bundle', bundle, '--cert', join(clients, 'sib2.pem'), '/rep/x');
  assert.equal(sib2.code, 0, sib2.stdout);
  assert.match(sib2.stdout, /revocation +pass +not revoked \(its CRL revokes 1 serial \(revocation internal\); the deny list names 1 certificate\)/);
  assert.match(
    sib2.stdout,
    /static-mtls +pass +certificate .*CN=sib2.*: admitted by the API's client_certificates entry: CA "CN=Test Internal CA" issued it \(path validation\), with subject_cn sib2/,
  );
  const pay = await cli('explain', '--bundle', bundle, '--cert', join(clients, 'pay.pem'), '/dyn/x');
  assert.match(
    pay.stdout,
    /authenticate +pass +key "payments", identified by certificate sha256:[0-9a-f]{64} \(dynamic mTLS; its certificate_match: CA "CN=Test Internal CA" issued it \(path validation\), with san_uri spiffe:\/\/corp\.example\/ns\/payments\/sa\/api\)/,
  );
  const payRep = await cli('explain', '--bundle', bundle, '--cert', join(clients, 'pay.pem'), '/rep/x');
  assert.match(payRep.stdout, /static-mtls +refuse +mtls\.cert_not_allowed: .*nor do its 3 subject entries \(CA "CN=Test Internal CA" issued it/);
  const srv = await cli('explain', '--bundle', bundle, '--cert', join(clients, 'srv.pem'), '/rep/x');
  assert.match(srv.stdout, /static-mtls +refuse +mtls\.cert_not_client: .*pinned on the API, but its extendedKeyUsage does not allow client authentication/);
});

test('who: keys by certificate_match with the certificate that proves it, subject entries with revocation, refused certificates as notes', async () => {
  const dyn = await cli('who', '--bundle', bundle, 'dyn', '--certs', clients);
  assert.equal(dyn.code, 0, dyn.stderr);
  assert.match(dyn.stdout, /key +payments +a certificate its certificate_match admits \(CA "CN=Test Internal CA" issued it .*: pay\.pem\) +sha256:/);
  assert.match(dyn.stdout, /key +sib +a certificate its certificate_match admits .*sib2\.pem/);
  assert.match(dyn.stdout, /notes:\n(.*\n)* {2}key lost with its certificate sha256:[0-9a-f]{16}… \(CN=lost, lost\.pem\) is refused: mtls\.cert_revoked/);
  assert.equal(/^ {2}key {8}lost/m.test(dyn.stdout), false);
  const rep = await cli('who', '--bundle', bundle, 'rep', '--certs', clients, '--format', 'json');
  const j = JSON.parse(rep.stdout);
  assert.equal(j.command, 'who');
  const rows = j.rows.map((r: { kind: string; subject: string | null; how: string }) => `${r.kind} ${r.subject ?? ''} ${r.how}`);
  assert.ok(
    rows.some((r: string) =>
      /^match +a certificate CA "CN=Test Internal CA" issued it \(path validation\), with san_uri .*reporting\/\* \(alone\); revocation: its CRL revokes 1 serial/.test(
        r,
      ),
    ),
    rows.join('\n'),
  );
  assert.ok(
    rows.includes(
      'certificate CN=rep admitted by the API\'s client_certificates entry: CA "CN=Test Internal CA" issued it (path validation), with san_uri spiffe://corp.example/ns/reporting/* (alone)',
    ),
    rows.join('\n'),
  );
  assert.ok(
    rows.some((r: string) => r.startsWith('certificate CN=sib2 ')),
    rows.join('\n'),
  );
  assert.equal(
    rows.some((r: string) => r.includes('CN=sib1') || r.includes('CN=srv')),
    false,
    rows.join('\n'),
  );
  assert.ok(
    j.notes.some((n: string) => /CN=sib1, sib1\.pem\) is admitted by the API's client_certificates entry: .*, but refused: mtls\.cert_revoked/.test(n)),
    j.notes.join('\n'),
  );
  assert.ok(
    j.notes.some((n: string) => /pinned certificate sha256:[0-9a-f]{16}… \(CN=srv, srv\.pem\) is refused: mtls\.cert_not_client/.test(n)),
    j.notes.join('\n'),
  );
  // Without the certificates nothing about them is guessed, but every grant is listed, marked not checked.
  const bare = await cli('who', '--bundle', bundle, 'dyn');
  assert.match(
    bare.stdout,
    /key +payments +a certificate its certificate_match admits \(CA "CN=Test Internal CA" issued it .*\); not checked: no certificate given matches its certificate_match \(--certs DIR\)/,
  );
  assert.match(bare.stdout, /grants? listed from the bundle alone \(not checked\)/);
});

test('identities are parsed once per PEM and instant', () => {
  const cache = new IdentityCache();
  const pem = readFileSync(join(clients, 'pay.pem'), 'latin1');
  const a = cache.get(pem, 1_000);
  assert.equal(cache.get(pem, 1_000), a);
  assert.notEqual(cache.get(pem, 2_000), a, 'chain verdicts depend on the instant: another identity');
  assert.equal(
    a.fingerprint,
    execFileSync('openssl', ['x509', '-in', join(clients, 'pay.pem'), '-noout', '-fingerprint', '-sha256'])
      .toString()
      .split('=')[1]
      .trim()
      .replaceAll(':', '')
      .toLowerCase(),
  );
});
