// The keys stage in worker threads (compiler/parallel-keys.ts): a compile with workers writes the
// same bundle bytes and the same diagnostics as one on a single thread, for valid configs (key
// certificates as files, inline PEM and pins, tokens, expiry, inactive keys, own rights and
// limits, a deny policy, keys beside an API, a certificate_match) and broken ones (errors inside
// key files, and the cases that send the compile back to one thread: a key id, certificate or
// token in two files, a file the routing guessed wrong). On a generated config of 600 keys in
// three files (bench/gen-config.ts), plus hand-written files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateCompileConfig } from '../bench/gen-config.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { certificateDers } from '../cert/read.ts';
import { compileDir, type CompileOptions, type CompileResult } from '../compiler/index.ts';
import { hashOrder } from '../compiler/hash-order.ts';
import { looksLikeKeysOnly, MIN_WORKER_TEXT, planWorkers } from '../compiler/parallel-keys.ts';
import { testPki } from './fixtures/compiler/helpers.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('compile-workers');
after(() => t.cleanup());
const NOW = new Date();
let pristine = '';
let n = 0;

const token = (s: string) => createHash('sha256').update(s).digest('hex');

before(async () => {
  const gen = await generateCompileConfig(join(t.dir, 'gen'), { apis: 20, keys: 600 });
  pristine = join(t.dir, 'pristine');
  cpSync(gen.dir, pristine, { recursive: true });
  const docs = readFileSync(join(pristine, 'keys/keys-000.yaml'), 'utf8').split(/^---\n/m);
  rmSync(join(pristine, 'keys/keys-000.yaml'));
  for (let f = 0; f < 3; f++) writeFileSync(join(pristine, `keys/part-${f}.yaml`), docs.slice(f * 200, f * 200 + 200).join('---\n'));
  const pki = await testPki();
  const files: Record<string, string> = {
    'certs/x/alice.pem': pki.alice.certPem,
    'certs/x/bob.pem': pki.bob.certPem,
    'certs/x/carol.pem': pki.carol.certPem,
    'certs/x/expiring.pem': pki.expiring.certPem,
    'certs/x/ca.pem': pki.ca.certPem,
    'certs/x/expired.pem': pki.expired.certPem,
    'certs/x/with-key.pem': pki.otherCa.certPem + pki.alice.keyPem,
    'policies-extra.yaml': 'kind: policy\nid: strict-limits\naccess_rights:\n  api-0000: {}\non_limiter_error: deny\n',
    // Keys of every shape, in a file the workers take.
    'keys/varied.yaml': [
      'kind: key\nid: v-files\ncertificates: [../certs/x/alice.pem, ../certs/x/bob.pem]\napply_policies: [policy-001, strict-limits]\nexpires: 2099-01-01T00:00:00Z',
      `kind: key\nid: v-token\ntoken_sha256: ${token('v-token').toUpperCase()}\napply_policies: [policy-002]\nis_inactive: true`,
      `kind: key\nid: v-pin\ncertificate: sha256:${fingerprintOf(certificateDers(pki.carol.certPem)[0])}\naccess_rights:\n  api-0001:\n    allowed_urls:\n      - url: ^/reports/\n        methods: [get]\nrate: 5\nper: 1\nquota_max: 10\nquota_renewal_rate: 60`,
      `kind: key\nid: v-inline\ncertificate: |\n${pki.expiring.certPem
        .trim()
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n')}\napply_policies: [strict-limits]`,
      'kind: key\nid: a-first-by-id\ntoken_sha256: ' + token('first') + '\napply_policies: [policy-003]',
    ].join('\n---\n'),
    // Keys beside an API, and a certificate_match: resolved on the main thread.
    'mixed.yaml': `kind: api\nid: mixed-api\nproxy:\n  listen_path: /mixed/\n  target_url: http://127.0.0.1:9000\nuse_mutual_tls_auth: true\nuse_keyless: true\nclient_certificates: [certs/x/ca.pem]\n---\nkind: key\nid: m-token\ntoken_sha256: ${token('m')}\napply_policies: [policy-004]\n`,
    'keys/match.yaml': 'kind: key\nid: m-match\ncertificate_match:\n  issuer: ../certs/x/ca.pem\n  subject_cn: alice\napply_policies: [policy-005]\n',
  };
  for (const [path, text] of Object.entries(files)) {
    const full = join(pristine, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, text);
  }
});

function workspace(extra: Record<string, string> = {}): string {
  const dir = join(t.dir, `w${n++}`);
  cpSync(pristine, dir, { recursive: true });
  for (const [path, text] of Object.entries(extra)) writeFileSync(join(dir, path), text);
  return dir;
}

/** Compiles `dir` on one thread and with two workers; both must give the same bytes and diagnostics. */
async function bothWays(dir: string, opts: CompileOptions = {}): Promise<{ one: CompileResult; workers: CompileResult }> {
  const one = await compileDir(dir, { now: NOW, keyWorkers: 0, ...opts });
  const workers = await compileDir(dir, { now: NOW, keyWorkers: 2, ...opts });
  assert.equal(one.keyWorkers.count, 0);
  assert.deepEqual(workers.diagnostics, one.diagnostics);
  assert.equal(workers.errorCount, one.errorCount);
  assert.ok(one.bundle === null ? workers.bundle === null : workers.bundle?.equals(one.bundle), 'the same bundle bytes');
  return { one, workers };
}

test('a valid config of every key shape: the same bytes with workers, and the workers did the key files', async () => {
  const { one, workers } = await bothWays(workspace());
  assert.equal(one.errorCount, 0, JSON.stringify(one.diagnostics.slice(0, 3)));
  assert.ok(one.warningCount > 0, 'the expiring certificate is warned about');
  assert.deepEqual(workers.keyWorkers, { count: 2 });
  assert.equal(workers.wire!.keys.ids.length, 600 + 7);
  assert.ok(workers.wire!.sessions.some((s) => s.on_limiter_error === 'deny'));
  assert.deepEqual(workers.content, one.content);
});

test('--strict and a short expiry window change diagnostics alike', async () => {
  const dir = workspace();
  await bothWays(dir, { strict: true });
  await bothWays(dir, { expiryWarningDays: 3650 });
});

test('errors inside key files: reported alike (file, line, col, order), with no fallback to one thread', async () => {
  const { workers } = await bothWays(
    workspace({
      'keys/broken.yaml': [
        'kind: key\nid: b-schema\ncertificate: 42\nrate: 5',
        'kind: key\nid: b-unknown\ntoken_sha256: ' + token('u') + '\napply_policies: [policy-00x]',
        'kind: key\nid: b-expired\ncertificate: ../certs/x/expired.pem\nexpires: 2001-01-01T00:00:00Z\napply_policies: [policy-001]',
        'kind: key\nid: b-with-key\ncertificate: ../certs/x/with-key.pem\napply_policies: [policy-001]',
        'kind: key\nid: b-missing\ncertificate: ../certs/x/nope.pem\napply_policies: [policy-001]',
        'kind: key\nid: b-outside\ncertificate: /etc/hostname\napply_policies: [policy-001]',
        'kind: key\nid: b-ca\ncertificate: ../certs/x/ca.pem\napply_policies: [policy-001]',
        'kind: key\nid: b-dup\ntoken_sha256: ' + token('d1') + '\napply_policies: [policy-001]',
        'kind: key\nid: b-dup\ntoken_sha256: ' + token('d2') + '\napply_policies: [policy-001]',
        'kind: key\nid: b-samecert\ncertificates: [../certs/x/expired.pem]\napply_policies: [policy-001]',
        'kind: key\nid: b-none\napply_policies: [policy-001]',
        'kind: key\nid: b-quota\ntoken_sha256: ' + token('q') + '\nquota_max: 0\nrate: 1',
        'kind: keyy\nid: b-kind',
      ].join('\n---\n'),
      'keys/syntax.yaml': 'kind: key\nid: s-1\ntoken_sha256: [unclosed\n',
    }),
  );
  assert.ok(workers.errorCount > 8, JSON.stringify(workers.diagnostics.map((d) => d.code)));
  assert.deepEqual(workers.keyWorkers, { count: 2 });
});

test('a key id, certificate or token in two files: back on one thread, which reports it as always', async () => {
  const cases: Record<string, string>[] = [
    { 'keys/zz-dup.yaml': `kind: key\nid: v-token\ntoken_sha256: ${token('other')}\napply_policies: [policy-001]\n` },
    { 'keys/zz-dup.yaml': 'kind: key\nid: zz-cert\ncertificate: ../certs/x/alice.pem\napply_policies: [policy-001]\n' },
    { 'keys/zz-dup.yaml': `kind: key\nid: zz-token\ntoken_sha256: ${token('m')}\napply_policies: [policy-001]\n` },
  ];
  for (const extra of cases) {
    const { workers } = await bothWays(workspace(extra));
    assert.ok(workers.errorCount > 0);
    assert.equal(workers.keyWorkers.count, 0);
    assert.match(workers.keyWorkers.restarted ?? '', /two files/);
  }
});

test('a file routed to the workers that holds an API after all: back on one thread, the same result', async () => {
  // "kin\x64" is "kind" once parsed: the routing's text scan sees only the kind: key line.
  const { workers } = await bothWays(
    workspace({
      'keys/zz-api.yaml':
        'kind: key\nid: zz-k\ntoken_sha256: ' +
        token('zz') +
        '\n---\n"kin\\x64": api\nid: zz-api\nproxy:\n  listen_path: /zz/\n  target_url: http://127.0.0.1:9000\n',
    }),
  );
  assert.equal(workers.errorCount, 0, JSON.stringify(workers.diagnostics.slice(0, 3)));
  assert.match(workers.keyWorkers.restarted ?? '', /other than keys/);
});

test('only key files and no API: W_NO_APIS alike', async () => {
  const dir = t.dir + '/keys-only';
  cpSync(join(pristine, 'keys'), join(dir, 'keys'), { recursive: true });
  cpSync(join(pristine, 'certs'), join(dir, 'certs'), { recursive: true });
  rmSync(join(dir, 'keys/match.yaml'));
  const { workers } = await bothWays(dir);
  assert.ok(workers.diagnostics.some((d) => d.code === 'W_NO_APIS'));
  assert.equal(workers.keyWorkers.count, 2);
});

test('the routing guess: key files only, nothing with another kind or a certificate_match', () => {
  assert.equal(looksLikeKeysOnly('kind: key\nid: a\n---\nkind: "key"  # c\nid: b\n'), true);
  assert.equal(looksLikeKeysOnly('kind: key\nid: a\n---\nkind: api\n'), false);
  assert.equal(looksLikeKeysOnly('kind: key\ncertificate_match:\n  issuer: x\n'), false);
  assert.equal(looksLikeKeysOnly('- {kind: key}\n'), false);
  assert.equal(looksLikeKeysOnly('# nothing\n'), false);
});

test('workers by default only for two key files or more holding MIN_WORKER_TEXT together', () => {
  const file = (path: string, size: number) => ({ path, absPath: `/c/${path}`, text: 'kind: key\n' + '#'.repeat(size) });
  const half = MIN_WORKER_TEXT / 2;
  assert.equal(planWorkers([file('a.yaml', 2 * MIN_WORKER_TEXT)], undefined), null, 'one file: one thread');
  assert.equal(planWorkers([file('a.yaml', half / 2), file('b.yaml', half / 2)], undefined), null, 'too little text');
  assert.equal(planWorkers([file('a.yaml', half), file('b.yaml', half)], undefined)?.keyFiles.size, 2);
  assert.equal(planWorkers([file('a.yaml', half), file('b.yaml', half)], 0), null, 'keyWorkers: 0');
  assert.equal(planWorkers([file('a.yaml', 10)], 3)?.workers, 1, 'forced: at most one worker a file');
});

test('hashOrder sorts 32-byte values as their lowercase hex strings sort, shared prefixes included', () => {
  const values: string[] = [];
  for (let i = 0; i < 3000; i++) values.push(token(String(i)));
  // Crafted: runs sharing their first six bytes (and more), and duplicates.
  for (let i = 0; i < 300; i++) values.push('00000000000000' + token(`p${i % 50}`).slice(14));
  values.push(values[5], values[3100]);
  const bytes = Buffer.from(values.join(''), 'hex');
  const order = hashOrder(bytes, values.length);
  assert.deepEqual(
    Array.from(order, (i) => values[i]),
    [...values].sort(),
  );
});
