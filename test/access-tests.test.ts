// Access tests (kind: test): `check` and `test` decide each case with the gateway's own stages
// (access/run.ts -> runtime/stages decide) on the compiled bundle; a failing case is an error
// at the case with expected and actual; `test` prints N passed, N failed; and the answers are
// the ones a running gateway gives the same requests over real TLS with curl.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAccessTests } from '../access/run.ts';
import type { DemoPki } from '../cli/pki.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { CLI, curl, demoPki, run } from './helpers/serve-fixtures.ts';

const EXAMPLES = join(import.meta.dirname, '..', 'examples');
let tmp: string;
let config: string;
let pki: DemoPki;
before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-access-tests-'));
  config = join(tmp, 'examples');
  cpSync(EXAMPLES, config, { recursive: true, filter: (src) => !src.includes(`${join('examples', 'certs')}`) });
  // The examples name ../certs/*.pem: the demo PKI, generated (never committed).
  pki = await demoPki(config);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const cli = (...args: string[]) => run(process.execPath, [CLI, ...args]);

test('check runs the examples access tests and says how many passed', async () => {
  const r = await cli('check', config);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /, 13 access tests passed/);
  const t = await cli('test', config);
  assert.equal(t.code, 0, t.stdout + t.stderr);
  assert.match(t.stdout, /^ok {4}partner-access: partner-a reads the daily report \(static mTLS alone\)$/m);
  assert.match(t.stdout, /\n13 passed, 0 failed\n$/);
});

test('a failing case is an error at the case with expected and actual (check, test, --format github and json); exit 1', async () => {
  const dir = join(tmp, 'failing');
  cpSync(config, dir, { recursive: true });
  const file = join(dir, 'tests', 'access.yaml');
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replace('      status: 403\n      code: mtls.cert_not_allowed', '      status: 200\n      key: mallory'));
  const line = text.split('\n').findIndex((l) => l.includes("mallory's certificate is not on the list")) + 1;
  const check = await cli('check', dir);
  assert.equal(check.code, 1);
  assert.match(
    check.stderr,
    new RegExp(
      `tests/access\\.yaml:${line}:5: error E_ACCESS_TEST: test "partner-access" case "mallory's certificate is not on the list": expected status 200, key mallory; got status 403, code mtls\\.cert_not_allowed, key none, api partner-reports`,
    ),
  );
  const t = await cli('test', dir);
  assert.equal(t.code, 1);
  assert.match(t.stdout, new RegExp(`FAIL {2}partner-access: mallory's certificate is not on the list \\(.*tests/access\\.yaml:${line}:5\\)`));
  assert.match(t.stdout, /\n12 passed, 1 failed\n$/);
  const gh = await cli('test', dir, '--format', 'github');
  assert.equal(gh.code, 1);
  assert.match(gh.stdout, new RegExp(`^::error file=.*tests/access\\.yaml,line=${line},col=5,title=E_ACCESS_TEST::test "partner-access" case "mallory's`, 'm'));
  assert.equal(gh.stdout.split('\n').filter((l) => l.startsWith('::error')).length, 1);
  const json = JSON.parse((await cli('test', dir, '--format', 'json')).stdout);
  assert.equal(json.passed, 12);
  assert.equal(json.failed, 1);
  const failed = json.cases.find((c: { pass: boolean }) => !c.pass);
  assert.deepEqual(failed.actual, { status: 403, code: 'mtls.cert_not_allowed', key: null, api: 'partner-reports' });
  // compile builds the artefact; the tests are check's (CI's) job, so a revocation is never held up.
  const out = join(tmp, 'failing.json');
  const c = await cli('compile', dir, '-o', out);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stderr.includes('access tests'), false);
});

test('at: decides key and certificate expiry at that moment; as_key without a token and as_key with token are reported', async () => {
  const dir = join(tmp, 'at');
  cpSync(config, dir, { recursive: true });
  // carol expires tomorrow; partner-a's certificate expires at its notAfter.
  const day = 86_400_000;
  const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const expires = Date.now() + day;
  const certEnd = Date.parse(new X509Certificate(readFileSync(join(pki.dir, 'partner-a.pem'))).validTo);
  const carol = join(dir, 'keys', 'carol.yaml');
  writeFileSync(carol, `${readFileSync(carol, 'utf8')}expires: ${iso(expires)}\n`);
  writeFileSync(
    join(dir, 'tests', 'time.yaml'),
    [
      'kind: test',
      'id: time',
      'cases:',
      `  - request: { url: /logistics/shipments, certificate: ../certs/partner-a.pem, as_key: carol, at: ${iso(expires - 3_600_000)} }`,
      '    expect: { status: 200, key: carol }',
      `  - request: { url: /logistics/shipments, certificate: ../certs/partner-a.pem, as_key: carol, at: ${iso(expires + 3_600_000)} }`,
      '    expect: { status: 401, code: key.expired }',
      `  - request: { url: /reports/daily, certificate: ../certs/partner-a.pem, at: ${iso(certEnd + day)} }`,
      '    expect: { status: 403, code: mtls.cert_expired }',
      '  - name: alice has no token',
      '    request: { url: /profile/me, as_key: alice }',
      '    expect: { status: 200 }',
      '',
    ].join('\n'),
  );
  const t = await cli('test', dir);
  assert.match(t.stdout, /ok {4}time: GET \/logistics\/shipments\n/);
  assert.match(t.stdout, /FAIL {2}time: alice has no token .*\n {6}as_key "alice": that key has no token \(give its certificate instead\)/);
  assert.match(t.stdout, /\n16 passed, 1 failed\n$/);
  writeFileSync(
    join(dir, 'tests', 'time.yaml'),
    'kind: test\nid: time\ncases:\n  - request: { url: /x, as_key: carol, token: t }\n    expect: { status: 200 }\n',
  );
  const both = await cli('check', dir);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /time\.yaml:4:\d+: error E_FIELD_VALUE: give as_key or token, not both/);
  writeFileSync(join(dir, 'tests', 'time.yaml'), 'kind: test\nid: time\ncases:\n  - request: { url: /x }\n    expect: { status: 200, colour: red }\n');
  const unknown = await cli('check', dir);
  assert.match(unknown.stderr, /time\.yaml:5:\d+: error E_UNKNOWN_FIELD: unknown field "colour"/);
});

test('tests never reach the bundle', async () => {
  const withTests = await compileDir(config, { accessTests: runAccessTests });
  assert.equal(withTests.errorCount, 0);
  const dir = join(tmp, 'no-tests');
  cpSync(config, dir, { recursive: true });
  rmSync(join(dir, 'tests'), { recursive: true });
  const without = await compileDir(dir);
  assert.ok(withTests.bundle && without.bundle);
  assert.equal(withTests.bundle.equals(without.bundle), true, 'byte-identical bundles');
  // `mtlsgate test` on a config without tests does not pass silently: "0 passed, 0 failed" and a warning.
  const t = await cli('test', dir);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^0 passed, 0 failed\n$/);
  assert.match(t.stderr, /mtlsgate test: warning: no access tests \(kind: test documents\) in .*no-tests: nothing was tested/);
  const j = JSON.parse((await cli('test', dir, '--format', 'json')).stdout);
  assert.deepEqual(
    j.warnings.map((w: { code: string }) => w.code),
    ['no_tests'],
  );
});

// Demo tokens from examples/README.md: the only place plaintext tokens exist (as_key needs none).
const DEMO_TOKENS: Record<string, string> = {
  carol: 'LifYye_0PRvOhI16krnb9_neHTCCUGq_5fn4qIMpboE',
  bob: 'Gu9XYCKB107MQd8vYRFVLVKXaYhSxuTFjYW1pbsmZjU',
};

test('parity: a running gateway answers every examples case as the stages did (real TLS, curl)', async () => {
  const upstreams: EchoUpstream[] = [];
  const dir = join(tmp, 'parity');
  cpSync(config, dir, { recursive: true });
  // Point the APIs at an echo upstream (the examples' 127.0.0.1:91xx ports may be taken).
  const echo = await startEcho();
  upstreams.push(echo);
  for (const f of ['logistics', 'partner-reports', 'profile']) {
    const p = join(dir, 'apis', `${f}.yaml`);
    writeFileSync(p, readFileSync(p, 'utf8').replace(/target_url: .*/, `target_url: ${echo.url}`));
  }
  const result = await compileDir(dir, { accessTests: runAccessTests });
  assert.equal(result.errorCount, 0);
  const { cases, outcomes } = result.tests;
  assert.ok(cases.length >= 13);
  const bundle = join(tmp, 'parity.json');
  writeFileSync(bundle, result.bundle!);
  const keys = result.content!.keys;
  const serve = spawnDemoGateway(bundle, pki, { admin: 'loopback' });
  try {
    const port = listenPort(await serve.serving());
    const clientOf = (pem: string | null) => {
      if (pem === null) return null;
      for (const name of ['partner-a', 'alice', 'bob', 'mallory', 'stranger']) if (readFileSync(join(pki.dir, `${name}.pem`), 'latin1') === pem) return name;
      throw new Error('unknown certificate');
    };
    for (const [i, c] of cases.entries()) {
      const extra = ['-X', c.request.method];
      let token = c.request.token;
      if (c.request.asKey !== null) {
        token = DEMO_TOKENS[c.request.asKey];
        assert.equal(createHash('sha256').update(token).digest('hex'), keys[c.request.asKey].token_sha256, `demo token of ${c.request.asKey}`);
      }
      if (token !== null) extra.push('-H', `Authorization: Bearer ${token}`);
      const r = await curl(`https://localhost:${port}${c.request.url}`, pki, clientOf(c.request.certificatePem), extra);
      const code = r.status === 200 ? null : (JSON.parse(r.body) as { code: string }).code;
      assert.deepEqual({ status: r.status, code }, { status: outcomes![i].actual.status, code: outcomes![i].actual.code }, c.name);
      assert.ok(outcomes![i].pass, c.name);
    }
    // The log line names the key the stages named.
    const logged = serve.lines().filter((l) => l.key === 'carol');
    assert.ok(logged.length >= 2);
  } finally {
    serve.kill();
    await serve.exited;
    for (const u of upstreams) await u.close();
  }
});
