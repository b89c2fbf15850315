// `mtlsgate explain` (each stage's verdict for one request) and `mtlsgate who` (who gets
// through to an API), on the examples compiled with the CLI and the demo certificates.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DemoPki } from '../cli/pki.ts';
import { compileExamples } from './helpers/demo-bundle.ts';
import { compileWithCli } from './helpers/serve-fixtures.ts';
import { CLI, run } from './helpers/serve-fixtures.ts';

let tmp: string;
let pki: DemoPki;
let bundle: string;
before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-explain-'));
  ({ pki, bundle } = await compileExamples(tmp));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const cli = (...args: string[]) => run(process.execPath, [CLI, ...args]);
const cert = (name: string) => join(pki.dir, `${name}.pem`);

test('explain: a request let through, with the pin, the key, the allowed_urls entry and the limits', async () => {
  const r = await cli('explain', '--bundle', bundle, '--cert', cert('partner-a'), '--as-key', 'carol', 'POST', '/logistics/shipments');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^POST \/logistics\/shipments -> 200: every stage let it through; the gateway proxies it to http:\/\/127\.0\.0\.1:9102$/);
  assert.deepEqual(
    lines.slice(1).map((l) => l.trim().split(/\s+/).slice(0, 2)),
    [
      ['route', 'pass'],
      ['revocation', 'pass'],
      ['static-mtls', 'pass'],
      ['authenticate', 'pass'],
      ['key-state', 'pass'],
      ['access', 'pass'],
      ['limits', 'pass'],
    ],
  );
  assert.match(r.stdout, /static-mtls +pass +certificate sha256:[0-9a-f]{64} \(CN=partner-a, O=mtlsgate demo, expires .*\): pinned on the API/);
  assert.match(r.stdout, /authenticate +pass +key "carol", identified by the token of key "carol"/);
  assert.match(
    r.stdout,
    /access +pass +allowed_urls entry \^\/shipments\(\/\|\$\) \[GET,POST\] matches POST \/shipments \(rights merged from policies partner-standard/,
  );
  assert.match(r.stdout, /limits +pass +rate 10 per 1 s, quota 10000 per 3600 s/);
});

test('explain: the refusing stage with its code and why; later stages not reached; exit 1; --format json', async () => {
  const r = await cli('explain', '--bundle', bundle, '--cert', cert('mallory'), '/reports/daily');
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^GET \/reports\/daily -> 403 mtls\.cert_not_allowed: "Certificate with SHA256 [0-9a-f]{64} not allowed"/);
  assert.match(
    r.stdout,
    /static-mtls +refuse +mtls\.cert_not_allowed: .*CN=mallory.*not among the API's 1 pinned certificates, and none of its CAs \(none\) issued it/,
  );
  assert.match(r.stdout, /authenticate +not reached/);
  const j = await cli('explain', '--bundle', bundle, '--cert', cert('partner-a'), '--as-key', 'carol', '--format', 'json', 'DELETE', '/logistics/shipments');
  assert.equal(j.code, 1);
  const e = JSON.parse(j.stdout);
  assert.equal(e.status, 403);
  assert.equal(e.code, 'access.url_denied');
  assert.equal(e.key, 'carol');
  assert.deepEqual(
    e.stages.map((s: { stage: string; outcome: string }) => [s.stage, s.outcome]),
    [
      ['route', 'pass'],
      ['revocation', 'pass'],
      ['static-mtls', 'pass'],
      ['authenticate', 'pass'],
      ['key-state', 'pass'],
      ['access', 'refuse'],
      ['limits', 'not reached'],
    ],
  );
  assert.match(
    e.stages[5].detail,
    /DELETE \/shipments matches none of the 2 allowed_urls entries: \^\/shipments\(\/\|\$\) \[GET,POST\]; \^\/tracking\/ \[GET\]/,
  );
  // Dynamic mTLS: the certificate alone; a literal token; a keyless skip.
  const dyn = await cli('explain', '--bundle', bundle, '--cert', cert('alice'), '/profile/me');
  assert.match(dyn.stdout, /static-mtls +skip +the API does not use static mTLS/);
  assert.match(dyn.stdout, /authenticate +pass +key "alice", identified by certificate sha256:[0-9a-f]{64} \(dynamic mTLS\)/);
  const tok = await cli('explain', '--bundle', bundle, '--cert', cert('partner-a'), '--token', 'wrong', '/logistics/shipments');
  assert.match(tok.stdout, /authenticate +refuse +auth\.key_not_found: "Access to this API has been disallowed"; credential: the token in authorization/);
  const at = await cli('explain', '--bundle', bundle, '--cert', cert('partner-a'), '--at', '2099-01-01T00:00:00Z', '/reports/daily');
  assert.match(at.stdout, /-> 403 mtls\.cert_expired/);
  const usage = await cli('explain', '--bundle', bundle, '--as-key', 'carol', '--token', 'x', '/x');
  assert.equal(usage.code, 2);
  // A mistake with a file names the flag and the file: the private key given for the certificate, a missing bundle.
  const key = await cli('explain', '--bundle', bundle, '--cert', join(pki.dir, 'alice-key.pem'), '/profile/me');
  assert.equal(key.code, 2);
  assert.match(key.stderr, /^mtlsgate explain: --cert .*alice-key\.pem: it holds a private key, not a certificate/);
  const missing = await cli('explain', '--bundle', join(tmp, 'nope.json'), '--format', 'json', '/x');
  assert.equal(missing.code, 2);
  assert.match(JSON.parse(missing.stdout).errors[0].message, /^--bundle .*nope\.json: ENOENT$/);
});

test('who: pinned certificates with subject and expiry, keys with how they get through and their policies; --path narrows; csv and json', async () => {
  const r = await cli('who', '--bundle', bundle, 'logistics', '--certs', pki.dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^who can reach API "logistics" \(GET \/logistics\/\):/);
  assert.match(
    r.stdout,
    /certificate +- +pinned certificate, with a key that gets through \(below\) +sha256:[0-9a-f]{16}… +subject "CN=partner-a, O=mtlsgate demo" +expires /,
  );
  assert.match(
    r.stdout,
    /key +bob +token \+ its certificate; only \^\/shipments\(\/\|\$\) \[GET,POST\], \^\/tracking\/ \[GET\] .*policies partner-standard, profile-self-serve/,
  );
  assert.match(r.stdout, /key +carol +token \+ a pinned certificate; only /);
  assert.equal(r.stdout.includes('alice'), false, 'alice has no right on logistics');
  const admin = await cli('who', '--bundle', bundle, 'logistics', '--path', '/admin', '--certs', pki.dir);
  assert.equal(/^ {2}key {8}/m.test(admin.stdout), false, 'nobody reaches /logistics/admin with a key');
  assert.match(admin.stdout, /key bob with its certificate .* and its token is refused: access\.url_denied/);
  const tracking = await cli('who', '--bundle', bundle, 'logistics', '--path', '/tracking/42', '--format', 'json', '--certs', pki.dir);
  const j = JSON.parse(tracking.stdout);
  assert.equal(j.path, '/logistics/tracking/42');
  assert.deepEqual(
    j.rows.filter((x: { kind: string }) => x.kind === 'key').map((x: { id: string; how: string }) => [x.id, x.how]),
    [
      ['bob', 'token + its certificate'],
      ['carol', 'token + a pinned certificate'],
    ],
  );
  const csv = await cli('who', '--bundle', bundle, 'profile', '--format', 'csv', '--certs', pki.dir);
  const rows = csv.stdout.trimEnd().split('\n');
  assert.equal(rows[0], 'kind,id,fingerprints,subject,expires,how,policies,checked');
  assert.match(rows[1], /^key,alice,sha256:[0-9a-f]{64},"CN=alice, O=mtlsgate demo",,its certificate,profile-self-serve,yes$/);
  assert.match(rows[2], /^key,bob,/);
  assert.match(
    rows[3],
    /^key,other-team,sha256:[0-9a-f]{64},"CN=stranger, O=mtlsgate demo",,"a certificate its certificate_match admits \(CA ""CN=untrusted CA, O=mtlsgate demo"" issued it \(path validation\), with subject_cn stranger: stranger\.pem\)",profile-self-serve,yes$/,
  );
  const keyless = await cli('who', '--bundle', bundle, 'partner-reports', '--certs', pki.dir);
  assert.match(keyless.stdout, /certificate +- +pinned certificate \(alone\)/);
  const unknown = await cli('who', '--bundle', bundle, 'nope');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no API "nope" in the bundle/);
});

test('explain --format github: the text, and a refused request as an error annotation with its code and the refusing stage; a missing bundle an io annotation', async () => {
  const args = ['explain', '--bundle', bundle, '--cert', cert('mallory'), '/reports/daily'];
  const text = await cli(...args);
  const github = await cli(...args, '--format', 'github');
  assert.equal(github.code, 1);
  assert.ok(github.stdout.startsWith(text.stdout), 'the text first, as --format text prints it');
  const annotations = github.stdout.slice(text.stdout.length);
  assert.match(
    annotations,
    /^::error title=mtls\.cert_not_allowed::GET \/reports\/daily -> 403 mtls\.cert_not_allowed: "Certificate with SHA256 [0-9a-f]{64} not allowed"; static-mtls: .*CN=mallory.*not among the API's 1 pinned certificates.*\n$/,
  );
  // Let through: the text alone, exit 0.
  const through = [
    'explain',
    '--bundle',
    bundle,
    '--cert',
    cert('partner-a'),
    '--as-key',
    'carol',
    '--at',
    '2027-01-01T00:00:00Z',
    'POST',
    '/logistics/shipments',
  ];
  const passed = await cli(...through, '--format', 'github');
  assert.equal(passed.code, 0, passed.stderr);
  assert.equal(passed.stdout, (await cli(...through)).stdout);
  const missing = await cli('explain', '--bundle', join(tmp, 'nope.json'), '--format', 'github', '/x');
  assert.equal(missing.code, 2);
  assert.match(missing.stdout, /^::error title=io::--bundle .*nope\.json: ENOENT\n$/);
  assert.match(missing.stderr, /^mtlsgate explain: --bundle .*nope\.json: ENOENT$/m);
});

test('who --format github: the text, and each note (a grant refused whatever its certificate, revocation) as a notice annotation', async () => {
  const args = ['who', '--bundle', bundle, 'logistics', '--path', '/admin'];
  const text = await cli(...args);
  const github = await cli(...args, '--format', 'github');
  assert.equal(github.code, 0, github.stderr);
  assert.ok(github.stdout.startsWith(text.stdout), 'the text first, as --format text prints it');
  const annotations = github.stdout.slice(text.stdout.length).trimEnd().split('\n');
  const notes = text.stdout
    .slice(text.stdout.indexOf('notes:\n') + 'notes:\n'.length)
    .trimEnd()
    .split('\n')
    .map((l) => l.trim());
  assert.ok(notes.length >= 2, text.stdout);
  assert.deepEqual(
    annotations,
    notes.map((n) => `::notice title=note::${n}`),
  );
  assert.ok(annotations.includes('::notice title=note::key bob is refused whatever its certificate: access.url_denied'), annotations.join('\n'));
  assert.ok(annotations.includes('::notice title=note::revocation (every API): the deny list names 1 certificate'), annotations.join('\n'));
});

test('who with only the deployed bundle: every grant is a row (fingerprint, key, policies, expiry), marked not checked; text, csv and json', async () => {
  // The bundle holds fingerprints: subjects stay unknown, nothing about the certificates is guessed,
  // but an auditor holding only the bundle still gets the full list of who is granted the API.
  const bare = await cli('who', '--bundle', bundle, 'logistics');
  assert.equal(bare.code, 0, bare.stderr);
  assert.doesNotMatch(bare.stdout, /nobody/);
  assert.match(
    bare.stdout,
    /certificate +- +pinned certificate, .*; not checked: not among the certificates given \(--certs DIR\) +sha256:[0-9a-f]{16}… +expires 20/,
  );
  assert.match(bare.stdout, /certificate +bob +pinned certificate, .*; not checked: /);
  assert.match(
    bare.stdout,
    /key +bob +token \+ its certificate; only \^\/shipments.*; not checked: its certificate sha256:[0-9a-f]{16}… is not among the certificates given \(--certs DIR\) +sha256:[0-9a-f]{16}… +policies partner-standard, profile-self-serve/,
  );
  assert.match(bare.stdout, /key +carol +token \+ a pinned certificate; only .*; not checked: .* +policies partner-standard/);
  assert.match(bare.stdout, /^4 grants listed from the bundle alone \(not checked\): give the client certificates with --certs DIR/m);
  assert.match(bare.stdout, /revocation \(every API\): the deny list names 1 certificate/);
  assert.equal(bare.stdout.includes('alice'), false, 'alice has no right on logistics');
  // What the bundle alone settles is settled: the access stage refuses both keys on /admin.
  const admin = await cli('who', '--bundle', bundle, 'logistics', '--path', '/admin');
  assert.equal(/^ {2}key {8}/m.test(admin.stdout), false);
  assert.match(admin.stdout, /key bob is refused whatever its certificate: access\.url_denied/);
  // csv: the same rows, with checked = no, not an empty sheet that reads as "nobody".
  const csv = await cli('who', '--bundle', bundle, 'logistics', '--format', 'csv');
  const rows = csv.stdout.trimEnd().split('\n');
  assert.equal(rows[0], 'kind,id,fingerprints,subject,expires,how,policies,checked');
  // (The pins come in fingerprint order: the certificates are made anew each run.)
  assert.deepEqual(
    rows
      .slice(1)
      .map((r) => [r.split(',')[0], r.split(',')[1], r.endsWith(',no')])
      .sort(),
    [
      ['certificate', '', true],
      ['certificate', 'bob', true],
      ['key', 'bob', true],
      ['key', 'carol', true],
    ],
  );
  assert.match(rows[3], /^key,bob,sha256:[0-9a-f]{64},,,"token \+ its certificate; .*",partner-standard profile-self-serve,no$/);
  const json = JSON.parse((await cli('who', '--bundle', bundle, 'profile', '--format', 'json')).stdout);
  assert.deepEqual(
    json.rows.map((r: { id: string; checked: boolean; subject: string | null }) => [r.id, r.checked, r.subject]),
    [
      ['alice', false, null],
      ['bob', false, null],
      ['other-team', false, null],
    ],
  );
});

test('who lists pinned certificates by key, then subject, never by fingerprint (a renewal does not reorder the listing)', async () => {
  // Two keys named so that their order is the reverse of their certificates' fingerprint order,
  // whatever fingerprints this run's certificates have: the bundle keeps pins by fingerprint.
  const [high, low] = (['alice', 'bob'] as ('alice' | 'bob')[]).sort((a, b) => (pki.clients[a].fingerprint < pki.clients[b].fingerprint ? 1 : -1));
  const config = join(tmp, 'who-order');
  mkdirSync(config);
  const pem = (name: string) => join(pki.dir, `${name}.pem`);
  writeFileSync(
    join(config, 'all.yaml'),
    `kind: api
id: orders
proxy: { listen_path: /orders/, target_url: http://127.0.0.1:9 }
use_standard_auth: true
use_mutual_tls_auth: true
client_certificates: [${pem(low)}, ${pem(high)}]
${[
  ['a-holder-of-the-higher-fingerprint', high, 'a'],
  ['b-holder-of-the-lower-fingerprint', low, 'b'],
]
  .map(([id, name, hex]) => `---\nkind: key\nid: ${id}\ncertificate: ${pem(name)}\ntoken_sha256: ${hex.repeat(64)}\naccess_rights: { orders: {} }\n`)
  .join('')}`,
  );
  const out = join(tmp, 'who-order.json');
  await compileWithCli(config, out, ['--allow-outside', pki.dir]);
  for (const certs of [['--certs', pki.dir], []]) {
    const r = await cli('who', '--bundle', out, 'orders', '--format', 'json', ...certs);
    assert.equal(r.code, 0, r.stderr);
    const pinned = JSON.parse(r.stdout).rows.filter((x: { kind: string }) => x.kind === 'certificate');
    assert.deepEqual(
      pinned.map((x: { id: string }) => x.id),
      ['a-holder-of-the-higher-fingerprint', 'b-holder-of-the-lower-fingerprint'],
      certs.length ? 'checked rows' : 'rows from the bundle alone',
    );
  }
});
