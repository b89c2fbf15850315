// The live compile (compiler/live-compile.ts) on a config with a `kind: test` and a
// `kind: revocation` document: such a config is never updated in place, but with nothing changed
// its last full result answers 'unchanged' (the portal's page view), byte for byte a full
// compile's. A change to a key file, the test file, the test's certificate file, the CRL or the
// revocation document compiles everything again, and so does the clock reaching the first instant
// a result may change (here the CRL's nextUpdate warning window, then each hour in it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAccessTests } from '../access/run.ts';
import { generateCompileConfig } from '../bench/gen-config.ts';
import { createCa, issueCert, type Issued } from '../cli/pki.ts';
import { compileDir, type CompileOptions } from '../compiler/index.ts';
import { LiveCompiler, type LiveMode } from '../compiler/live-compile.ts';
import { createCrl } from './helpers/demo-crl.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('live-reuse');
after(() => t.cleanup());
const HOUR = 3_600_000;
const NOW = new Date();
/** The CRL's nextUpdate (whole seconds, as a CRL holds it): its warning window (24 h before) opens at NOW + 2 days. */
const NEXT_UPDATE = new Date(Math.floor(NOW.getTime() / 1000) * 1000 + 72 * HOUR);
const WINDOW = NEXT_UPDATE.getTime() - 24 * HOUR;
let ca: Issued;
let client: Issued;
let dir = '';

const testDoc = (name: string, at: string | null = '2030-01-01T00:00:00Z', status = 401) =>
  `kind: test\nid: reuse\ncases:\n  - name: ${name}\n    request: { url: /trusted/x, certificate: ../client-certs/client.pem${at === null ? '' : `, at: ${at}`} }\n    expect: { status: ${status} }\n`;

before(async () => {
  dir = (await generateCompileConfig(join(t.dir, 'config'), { apis: 3, keys: 30 })).dir;
  ca = await createCa('live reuse CA');
  client = await issueCert(ca, 'reuse-client');
  mkdirSync(join(dir, 'trust'));
  mkdirSync(join(dir, 'client-certs'));
  writeFileSync(join(dir, 'trust', 'ca.pem'), ca.certPem);
  writeFileSync(join(dir, 'trust', 'root.crl'), await createCrl(ca, ['01'], { nextUpdate: NEXT_UPDATE }));
  writeFileSync(
    join(dir, 'trust', 'trust.yaml'),
    'kind: api\nid: trusted\nproxy:\n  listen_path: /trusted/\n  target_url: http://127.0.0.1:9000\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\nkind: revocation\nid: root\ncrl: [root.crl]\n',
  );
  writeFileSync(join(dir, 'client-certs', 'client.pem'), client.certPem);
  writeFileSync(join(dir, 'trust', 'tests.yaml'), testDoc('first'));
});

/** The live result equals a full uncached compile at the same clock: bytes, diagnostics, tests. */
async function step(live: LiveCompiler, expected: LiveMode, opts: CompileOptions) {
  const got = await live.compile();
  const full = await compileDir(dir, opts);
  assert.equal(full.errorCount, 0, JSON.stringify(full.diagnostics));
  assert.deepEqual(got.diagnostics, full.diagnostics);
  assert.ok(got.bundle?.equals(full.bundle!), `the bytes of a full compile (${got.live})`);
  assert.deepEqual(got.portalPlans, full.portalPlans);
  assert.deepEqual(got.tests.cases, full.tests.cases);
  assert.equal(got.live, expected);
  return got;
}

test('live compile with test and revocation documents: nothing changed is the last full result, any change or the clock compiles again', async () => {
  const opts: CompileOptions = { now: NOW };
  const live = new LiveCompiler(dir, opts);
  try {
    const first = await step(live, 'full', opts);
    assert.equal(first.tests.cases.length, 1);
    await step(live, 'unchanged', opts);
    await step(live, 'unchanged', opts);

    // A key file: one key removed.
    const keys = join(dir, 'keys', 'keys-000.yaml');
    const docs = readFileSync(keys, 'utf8').split(/^---\n/m);
    writeFileSync(keys, docs.slice(0, -1).join('---\n'));
    const edited = await step(live, 'full', opts);
    assert.ok(!edited.bundle!.equals(first.bundle!));
    await step(live, 'unchanged', opts);

    // The test file.
    writeFileSync(join(dir, 'trust', 'tests.yaml'), testDoc('second'));
    assert.equal((await step(live, 'full', opts)).tests.cases[0]!.name, 'second');
    await step(live, 'unchanged', opts);

    // The certificate file a test case reads.
    const other = await issueCert(ca, 'reuse-client-2');
    writeFileSync(join(dir, 'client-certs', 'client.pem'), other.certPem);
    assert.equal((await step(live, 'full', opts)).tests.cases[0]!.request.certificatePem, other.certPem);
    await step(live, 'unchanged', opts);

    // The CRL: another serial revoked.
    writeFileSync(join(dir, 'trust', 'root.crl'), await createCrl(ca, ['01', '02'], { nextUpdate: NEXT_UPDATE }));
    const revoked = await step(live, 'full', opts);
    assert.deepEqual(Object.values(revoked.wire!.revocation.crls)[0]!.serials, ['1', '2']);
    await step(live, 'unchanged', opts);

    // The revocation document: a deny list added.
    const trust = join(dir, 'trust', 'trust.yaml');
    writeFileSync(trust, `${readFileSync(trust, 'utf8')}certificates: [../client-certs/client.pem]\n`);
    assert.equal((await step(live, 'full', opts)).wire!.revocation.denied.length, 1);
    await step(live, 'unchanged', opts);

    // The clock: just before the CRL's warning window the result holds; at its start it does not.
    opts.now = new Date(WINDOW - 1);
    await step(live, 'unchanged', opts);
    opts.now = new Date(WINDOW);
    assert.ok((await step(live, 'full', opts)).diagnostics.some((d) => d.code === 'W_CRL_EXPIRING' && d.message.includes('in 24 hours')));
    // In the window the warning counts whole hours left: each drop is a full compile again.
    opts.now = new Date(WINDOW + 1);
    assert.ok((await step(live, 'full', opts)).diagnostics.some((d) => d.code === 'W_CRL_EXPIRING' && d.message.includes('in 23 hours')));
    opts.now = new Date(WINDOW + HOUR);
    await step(live, 'unchanged', opts);
    opts.now = new Date(WINDOW + HOUR + 1);
    assert.ok((await step(live, 'full', opts)).diagnostics.some((d) => d.code === 'W_CRL_EXPIRING' && d.message.includes('in 22 hours')));
    // The clock going back is not trusted either.
    opts.now = NOW;
    await step(live, 'full', opts);
    assert.deepEqual(live.counts, { full: 10, incremental: 0, unchanged: 9 });
  } finally {
    live.close();
  }
});

test('live compile with an access test runner: a case decided at the clock (no at:) is never reused, a fixed at: is', async () => {
  // The case's certificate is on the deny list by now (the test above): refused, 403.
  for (const [at, expected] of [
    [new Date(NOW.getTime() + HOUR).toISOString(), 'unchanged'],
    [null, 'full'],
  ] as const) {
    writeFileSync(join(dir, 'trust', 'tests.yaml'), testDoc(at === null ? 'clock' : 'fixed', at, 403));
    const opts: CompileOptions = { now: NOW, accessTests: runAccessTests };
    const live = new LiveCompiler(dir, opts);
    try {
      await step(live, 'full', opts);
      await step(live, expected, opts);
    } finally {
      live.close();
    }
  }
});
