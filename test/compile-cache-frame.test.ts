// The compile snapshot's patch (compiler/snapshot-compile.ts) with what a real config has beside
// its keys (compiler/snapshot-frame.ts): revocation documents (a CRL from a CA an API trusts, a
// deny list, CRL URLs), access tests run on the compiled bundle (`accessTests`, access/run.ts),
// and keys whose certificates APIs pin (by `sha256:` and by PEM file). Every step compares the
// bytes and diagnostics with an uncached compile and says which path ran (`cache.patched` is set
// only when the previous bundle was patched); each case the patch does not cover shows its miss.
// 300 keys in 3 key files (test/helpers/cache-config.ts), 10 APIs plus one trusting a CA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAccessTests } from '../access/run.ts';
import { createCa, issueCert } from '../cli/pki.ts';
import type { CompileResult } from '../compiler/index.ts';
import { assertSameAsUncached, cacheStats, cacheSuite, edit } from './helpers/cache-config.ts';
import { createCrl } from './helpers/demo-crl.ts';

const suite = cacheSuite('compile-cache-frame');
const NOW = suite.now;
const withTests = { accessTests: runAccessTests };

/** The cached compile (with the access tests run) gives exactly what an uncached one gives. */
const same = (dir: string, cache: string): Promise<CompileResult> => assertSameAsUncached(dir, cache, NOW, withTests, withTests);

const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256.replaceAll(':', '').toLowerCase();

/**
 * A copy of the config with: api-crl (static mTLS trusting a CA of its own, pinning key-000120's
 * certificate by its PEM file and a certificate no key holds), a revocation document (that CA's
 * CRL, a deny list, a CRL URL) and access tests; compiled once with an empty cache.
 */
async function workspace(name: string, opts: { documents?: boolean } = {}) {
  const { dir, cache } = suite.copy(name);
  const ca = await createCa('frame test CA');
  const revoked = await issueCert(ca, 'revoked leaf');
  const lonely = await issueCert(ca, 'lonely leaf');
  mkdirSync(join(dir, 'extra'));
  writeFileSync(join(dir, 'extra/ca.pem'), ca.certPem);
  writeFileSync(join(dir, 'extra/lonely.pem'), lonely.certPem);
  writeFileSync(join(dir, 'extra/ca.crl'), await createCrl(ca, [revoked]));
  writeFileSync(
    join(dir, 'apis/api-crl.yaml'),
    [
      'kind: api',
      'id: api-crl',
      'proxy: { listen_path: /crl/, target_url: "http://127.0.0.1:9999" }',
      'use_keyless: true',
      'use_mutual_tls_auth: true',
      'client_certificates: [../extra/ca.pem, ../certs/000/key-000120.pem, ../extra/lonely.pem]',
      '',
    ].join('\n'),
  );
  if (opts.documents !== false) writeDocuments(dir);
  const cold = await same(dir, cache);
  assert.equal(cold.errorCount, 0, JSON.stringify(cold.diagnostics));
  assert.equal(cold.cache?.patched, undefined, 'no snapshot yet');
  return { dir, cache, lonely };
}

/** The revocation document and the access tests. */
function writeDocuments(dir: string): void {
  writeFileSync(
    join(dir, 'revocation.yaml'),
    'kind: revocation\nid: deny\ncrl: [extra/ca.crl]\ncrl_urls: ["https://crl.example/ca.crl"]\ncertificates: [certs/000/key-000005.pem]\n',
  );
  // key-000007 has policy-007 (api-0007); key-000005's certificate is denied.
  writeFileSync(
    join(dir, 'tests.yaml'),
    [
      'kind: test',
      'id: access',
      'cases:',
      '  - request: { url: /api-0007/x, certificate: certs/000/key-000007.pem }',
      '    expect: { status: 200, key: key-000007 }',
      '  - request: { url: /api-0005/x, certificate: certs/000/key-000005.pem }',
      '    expect: { status: 403 }',
      '',
    ].join('\n'),
  );
}

test('revocation and test documents: key edits patch the previous bundle, a changed revocation document is written into it', async () => {
  const { dir, cache } = await workspace('revocation');
  const warm = await same(dir, cache);
  assert.deepEqual(cacheStats(warm), { hits: 3, stale: 0, patched: 0 }, warm.cache?.snapshotMiss);
  assert.equal(warm.tests.cases.length, 2);
  assert.deepEqual(
    warm.tests.outcomes?.map((o) => o.pass),
    [true, true],
    'the access tests ran on the patched bundle',
  );

  edit(join(dir, 'keys/part-1.yaml'), (s) => s.replace(/apply_policies: \[policy-\d+\]/, 'apply_policies: [policy-042, policy-007]'));
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 2, stale: 0, patched: 1 });

  // The deny list grows, then the CRL is replaced: no key file changed, the revocation part is new.
  const before = (await same(dir, cache)).bundle!;
  edit(join(dir, 'revocation.yaml'), (s) =>
    s.replace('certificates: [certs/000/key-000005.pem]', 'certificates: [certs/000/key-000005.pem, certs/000/key-000006.pem]'),
  );
  const denied = await same(dir, cache);
  assert.deepEqual(cacheStats(denied), { hits: 3, stale: 0, patched: 0 }, denied.cache?.snapshotMiss);
  assert.ok(!denied.bundle!.equals(before), 'the revocation part changed');
  assert.ok(denied.wire!.revocation.denied.includes(fingerprint(join(dir, 'certs/000/key-000006.pem'))));
  const ca = await createCa('another CA');
  writeFileSync(join(dir, 'extra/ca.crl'), await createCrl(ca, []));
  const unverified = await same(dir, cache);
  assert.ok(unverified.diagnostics.some((d) => d.code === 'E_CRL_UNVERIFIED'));
  assert.equal(unverified.cache?.patched, undefined, 'an error in a revocation document: the ordinary path reports it');
  assert.equal(unverified.cache?.snapshotMiss, 'an error in a revocation or test document');
  edit(join(dir, 'revocation.yaml'), (s) => s.replace('crl: [extra/ca.crl]\n', ''));
  const noCrl = await same(dir, cache);
  assert.deepEqual(cacheStats(noCrl), { hits: 3, stale: 0, patched: 0 }, noCrl.cache?.snapshotMiss);
  assert.deepEqual(noCrl.wire!.revocation.crls, {});
  // A key change and a revocation change in one compile.
  edit(join(dir, 'revocation.yaml'), (s) => s.replace('"https://crl.example/ca.crl"', '"https://crl.example/ca.crl", "https://crl.example/b.crl"'));
  edit(join(dir, 'keys/part-2.yaml'), (s) => s.replace(/apply_policies: \[policy-\d+\]/, 'apply_policies: [policy-001]'));
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 2, stale: 0, patched: 1 });
});

test('access tests: a key change that changes a verdict fails the compile with E_ACCESS_TEST, and writes no snapshot', async () => {
  const { dir, cache } = await workspace('tests');
  await same(dir, cache);
  const state = readFileSync(join(cache, 'snapshot/state.json'));
  // key-000007 loses api-0007: the first case now fails.
  edit(join(dir, 'keys/part-0.yaml'), (s) =>
    s.replace(
      'id: key-000007\ncertificate: ../certs/000/key-000007.pem\napply_policies: [policy-007]',
      'id: key-000007\ncertificate: ../certs/000/key-000007.pem\napply_policies: [policy-001]',
    ),
  );
  const failed = await same(dir, cache);
  assert.equal(failed.cache?.patched, 1, failed.cache?.snapshotMiss);
  assert.equal(failed.bundle, null);
  assert.deepEqual(
    failed.diagnostics.filter((d) => d.severity === 'error').map((d) => [d.code, d.file]),
    [['E_ACCESS_TEST', 'tests.yaml']],
  );
  assert.deepEqual(
    failed.tests.outcomes?.map((o) => o.pass),
    [false, true],
  );
  assert.ok(readFileSync(join(cache, 'snapshot/state.json')).equals(state), 'a failed compile leaves the snapshot as it was');
  // The test follows the key: passes again, patched.
  edit(join(dir, 'tests.yaml'), (s) => s.replace('/api-0007/x', '/api-0001/x'));
  const fixed = await same(dir, cache);
  assert.equal(fixed.errorCount, 0);
  assert.equal(fixed.cache?.patched, 1, fixed.cache?.snapshotMiss);
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 3, stale: 0, patched: 0 });
  // A test document with an error: the ordinary path reports it.
  edit(join(dir, 'tests.yaml'), (s) => s.replace('certificate: certs/000/key-000005.pem', 'certificate: certs/000/no-such.pem'));
  const broken = await same(dir, cache);
  assert.ok(broken.diagnostics.some((d) => d.code === 'E_CERT_READ'));
  assert.equal(broken.cache?.snapshotMiss, 'an error in a revocation or test document');
});

test('keys whose certificates APIs pin: taken out, put back, moved, and a pin no key held given to a key', async () => {
  const { dir, cache, lonely } = await workspace('pins');
  await same(dir, cache);
  const part0 = join(dir, 'keys/part-0.yaml');
  const docs = readFileSync(part0, 'utf8').split(/^---\n/m);
  assert.match(docs[0]!, /id: key-000000\n/);
  // key-000000's certificate is pinned by api-0009 (sha256:): the key taken out, the pin stays.
  writeFileSync(part0, docs.slice(1).join('---\n'));
  const out = await same(dir, cache);
  assert.deepEqual(cacheStats(out), { hits: 2, stale: 0, patched: 1 }, out.cache?.snapshotMiss);
  writeFileSync(part0, docs.join('---\n'));
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 2, stale: 0, patched: 1 });
  // key-000001 (pinned) moved to part-2; key-000120 (pinned by its PEM file in api-crl) given another policy.
  writeFileSync(part0, [docs[0], ...docs.slice(2)].join('---\n'));
  edit(join(dir, 'keys/part-2.yaml'), (s) => `${s.replace(/\n*$/, '\n')}---\n${docs[1]}`);
  edit(join(dir, 'keys/part-1.yaml'), (s) =>
    s.replace(
      'certificate: ../certs/000/key-000120.pem\napply_policies: [policy-020]',
      'certificate: ../certs/000/key-000120.pem\napply_policies: [policy-021]',
    ),
  );
  assert.deepEqual(cacheStats(await same(dir, cache)), { hits: 0, stale: 0, patched: 3 });
  // A new key holding the certificate api-crl pins alone (by its PEM file), then taken out again.
  const part1 = join(dir, 'keys/part-1.yaml');
  const text1 = readFileSync(part1, 'utf8');
  writeFileSync(part1, `${text1.replace(/\n*$/, '\n')}---\nkind: key\nid: key-lonely\ncertificate: ../extra/lonely.pem\napply_policies: [policy-003]\n`);
  const given = await same(dir, cache);
  assert.deepEqual(cacheStats(given), { hits: 2, stale: 0, patched: 1 }, given.cache?.snapshotMiss);
  assert.equal(given.content!.index.certs[lonely.fingerprint]?.key, 'key-lonely');
  writeFileSync(part1, text1);
  const taken = await same(dir, cache);
  assert.deepEqual(cacheStats(taken), { hits: 2, stale: 0, patched: 1 }, taken.cache?.snapshotMiss);
  assert.deepEqual(taken.content!.index.certs[lonely.fingerprint], { apis: ['api-crl'], key: null });
});

test('a certificate an API names changes what the other parts hold without changing the API: the ordinary path', async () => {
  // Without revocation or test documents (which the patch did not take before this check was made).
  const { dir, cache, lonely } = await workspace('frame', { documents: false });
  await same(dir, cache);
  // The pin given as its fingerprint instead of its PEM file: the same API record, but the bundle
  // no longer knows the certificate's notAfter.
  edit(join(dir, 'apis/api-crl.yaml'), (s) => s.replace('../extra/lonely.pem', `"sha256:${lonely.fingerprint}"`));
  const changed = await same(dir, cache);
  assert.equal(changed.cache?.snapshotMiss, 'a certificate file an API names changed');
  assert.equal((await same(dir, cache)).cache?.patched, 0, 'the fallback wrote a new snapshot');

  // An API that lists key-000130's certificate without enforcing it (W_CERTS_UNUSED): without its
  // key the certificate would be one of the APIs' other certificates (not_after), which the patch
  // does not write: the ordinary path.
  writeFileSync(
    join(dir, 'apis/api-unused.yaml'),
    'kind: api\nid: api-unused\nproxy: { listen_path: /unused/, target_url: "http://127.0.0.1:9998" }\nuse_keyless: true\nclient_certificates: [../certs/000/key-000130.pem]\n',
  );
  const unused = await same(dir, cache);
  assert.ok(unused.diagnostics.some((d) => d.code === 'W_CERTS_UNUSED'));
  assert.equal((await same(dir, cache)).cache?.patched, 0);
  edit(join(dir, 'keys/part-1.yaml'), (s) =>
    s.replace('kind: key\nid: key-000130\ncertificate: ../certs/000/key-000130.pem\napply_policies: [policy-030]\n---\n', ''),
  );
  const dropped = await same(dir, cache);
  assert.match(dropped.cache?.snapshotMiss ?? '', /^the patch was refused: [0-9a-f]{64} is also named by an API$/);
  assert.equal((await same(dir, cache)).cache?.patched, 0, 'the fallback wrote a new snapshot');
});
