// Issue 16 items 1, 4 and 6 through the built CLI: "-" for standard input and output, output
// files that never replace a device, a directory or a symlink to one, partial fingerprint
// results, the JSON envelope, diff --exit-code and diff against a config directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundle } from '../bundle/read.ts';
import { api, certFiles, removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';
import { ensureBuilt, mtlsgate } from './helpers/cli.ts';

let good: string;
let tmp: string;
before(async () => {
  ensureBuilt();
  good = writeConfig({
    ...(await certFiles()),
    'apis/profile.yaml': api('profile', 'auth:\n  use_certificate: true\n'),
    'keys/alice.yaml': 'kind: key\nid: alice\ncertificate: ../certs/alice.pem\naccess_rights:\n  profile: {}\n',
  });
  tmp = writeConfig({});
});
after(removeConfigs);

test('compile -o - writes the bundle to standard output, the summary to stderr', () => {
  const r = mtlsgate(['compile', good, '-o', '-']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(loadBundle(Buffer.from(r.stdout)).content.keys.alice.id, 'alice');
  assert.match(r.stderr, /wrote standard output: 1 API, 1 key, 1 certificate/);
  const quiet = mtlsgate(['compile', good, '-o', '-', '-q']);
  assert.equal(quiet.stderr, '', '-q keeps the summary out');
  assert.equal(quiet.stdout, r.stdout);
});

test('compile refuses to write over a device, a directory or a symlink to one, and says why', () => {
  const device = mtlsgate(['compile', good, '-o', '/dev/null']);
  assert.equal(device.code, 2);
  assert.match(device.stderr, /refusing to write \/dev\/null: it is a character device, not a regular file \(use "-o -" for standard output\)/);
  assert.ok(statSync('/dev/null').isCharacterDevice(), '/dev/null is still a device');

  const link = join(tmp, 'stdout-link.json');
  symlinkSync('/dev/null', link);
  const viaLink = mtlsgate(['compile', good, '-o', link]);
  assert.equal(viaLink.code, 2);
  assert.match(viaLink.stderr, /it is a symlink to \/dev\/null, which is a character device/);
  assert.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link');

  const dir = join(tmp, 'a-directory');
  mkdirSync(dir);
  const onDir = mtlsgate(['compile', good, '-o', dir]);
  assert.equal(onDir.code, 2);
  assert.match(onDir.stderr, /refusing to write .*a-directory: it is a directory/);
  assert.ok(statSync(dir).isDirectory());
});

test('compile through a symlink to a regular file replaces the file and keeps the link', () => {
  const real = join(tmp, 'real-bundle.json');
  writeFileSync(real, 'old');
  const link = join(tmp, 'bundle-link.json');
  symlinkSync(real, link);
  const r = mtlsgate(['compile', good, '-o', link]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.equal(readlinkSync(link), real);
  assert.equal(loadBundle(readFileSync(real)).content.apis.profile.id, 'profile');
});

test('"-" reads standard input: check -, fingerprint -, diff - NEW', async () => {
  const yaml = `${api('solo', 'use_keyless: true\n')}`;
  const ok = mtlsgate(['check', '-'], { input: yaml });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /standard input ok: 1 API, 0 keys/);
  const broken = mtlsgate(['check', '-'], { input: 'kind: apii\nid: x\n' });
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /<stdin>:1:7: error E_KIND/);

  const pem = (await certFiles())['certs/alice.pem'];
  const fp = mtlsgate(['fingerprint', '-'], { input: pem });
  assert.equal(fp.code, 0, fp.stderr);
  assert.match(fp.stdout, /^sha256:[0-9a-f]{64} {2}CN=alice/);

  const bundle = join(tmp, 'for-diff.json');
  assert.equal(mtlsgate(['compile', good, '-o', bundle]).code, 0);
  const d = mtlsgate(['diff', '-', bundle], { input: readFileSync(bundle) });
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /^standard input \(sha256:[0-9a-f]{64}\) -> .*for-diff\.json/);
  assert.match(d.stdout, /no changes/);
});

test('fingerprint prints what it can, warns about and skips a private-key file, exits 1 at the end', async () => {
  const files = await certFiles();
  const dir = writeConfig({
    'alice.pem': files['certs/alice.pem'],
    'alice-key.pem': '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
    'bob.pem': files['certs/bob.pem'],
  });
  const r = mtlsgate(['fingerprint', join(dir, 'alice.pem'), join(dir, 'alice-key.pem'), join(dir, 'bob.pem')]);
  assert.equal(r.code, 1);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 2, r.stdout);
  assert.match(lines[0], /CN=alice/);
  assert.match(lines[1], /CN=bob/);
  assert.match(r.stderr, /warning: skipped .*alice-key\.pem holds no certificate \(it holds a private key/);

  const j = JSON.parse(mtlsgate(['fingerprint', '--format', 'json', join(dir, 'alice.pem'), join(dir, 'alice-key.pem')]).stdout);
  assert.equal(j.ok, false);
  assert.equal(j.certificates.length, 1);
  assert.equal(j.warnings[0].code, 'not_a_certificate');

  const gh = mtlsgate(['fingerprint', '--format', 'github', join(dir, 'alice-key.pem'), join(dir, 'bob.pem')]);
  assert.match(gh.stdout, /^::warning file=.*alice-key\.pem,title=not_a_certificate::skipped/m);
});

test('--format json: one envelope with schema version, digest and counts on success, errors on failure', () => {
  const ok = JSON.parse(mtlsgate(['check', good, '--format', 'json']).stdout);
  assert.equal(ok.schema_version, 1);
  assert.equal(ok.command, 'check');
  assert.equal(ok.ok, true);
  assert.match(ok.digest, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(ok.counts, { apis: 1, keys: 1, certificates: 1, errors: 0, warnings: 0 });
  assert.deepEqual(ok.errors, []);

  const compiled = mtlsgate(['compile', good, '-o', join(tmp, 'env.json'), '--format', 'json']);
  const c = JSON.parse(compiled.stdout);
  assert.equal(c.ok, true);
  assert.equal(c.digest, loadBundle(readFileSync(join(tmp, 'env.json'))).digest);

  const missing = mtlsgate(['check', join(tmp, 'no-such-dir'), '--format', 'json']);
  assert.equal(missing.code, 2);
  const m = JSON.parse(missing.stdout);
  assert.equal(m.ok, false);
  assert.equal(m.errors[0].code, 'io');
  assert.match(m.errors[0].message, /no-such-dir cannot be read: ENOENT/);

  const usage = mtlsgate(['check', good, '--format', 'json', '--bogus']);
  assert.equal(usage.code, 2);
  assert.equal(JSON.parse(usage.stdout).errors[0].code, 'usage');

  for (const cmd of [['version'], ['token']]) {
    const e = JSON.parse(mtlsgate([...cmd, '--format', 'json']).stdout);
    assert.equal(e.schema_version, 1, cmd[0]);
    assert.equal(e.ok, true, cmd[0]);
  }
});

test('diff --exit-code exits 1 when access changed, 0 when the same; diff bundle vs config directory', () => {
  const before = join(tmp, 'before.json');
  assert.equal(mtlsgate(['compile', good, '-o', before]).code, 0);
  const same = mtlsgate(['diff', '--exit-code', before, good]);
  assert.equal(same.code, 0, same.stderr + same.stdout);
  assert.match(same.stdout, /no changes/);

  const changed = writeConfig({
    ...Object.fromEntries(['apis/profile.yaml'].map((f) => [f, readFileSync(join(good, f), 'utf8')])),
    'certs/alice.pem': readFileSync(join(good, 'certs/alice.pem'), 'utf8'),
    'keys/alice.yaml': 'kind: key\nid: alice\ncertificate: ../certs/alice.pem\naccess_rights: {}\n',
  });
  const plan = mtlsgate(['diff', '--exit-code', before, changed]);
  assert.equal(plan.code, 1, plan.stderr);
  assert.match(plan.stdout, /Access\n {2}profile\n {4}- lost +certificate sha256:[0-9a-f]{64} \(key alice\): identifies key alice/);
  assert.equal(mtlsgate(['diff', before, changed]).code, 0, 'without --exit-code a difference is still exit 0');

  const j = JSON.parse(mtlsgate(['diff', before, changed, '--format', 'json']).stdout);
  assert.equal(j.schema_version, 1);
  assert.equal(j.identical, false);
  assert.equal(j.access[0].lost[0].key, 'alice');

  const broken = writeConfig({ 'a.yaml': 'kind: apii\nid: x\n' });
  const bad = mtlsgate(['diff', before, broken]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /has 1 error \(mtlsgate check .*\); first: a\.yaml:1:7: E_KIND/);
  // In JSON and in a pull request, the config side's own diagnostics: code, file, line, col.
  const badJson = JSON.parse(mtlsgate(['diff', before, broken, '--format', 'json']).stdout);
  assert.equal(badJson.ok, false);
  assert.deepEqual(
    badJson.errors.map((e: { code: string; file: string; line: number; col: number }) => [e.code, e.file.endsWith('/a.yaml'), e.line, e.col]),
    [['E_KIND', true, 1, 7]],
  );
  assert.match(mtlsgate(['diff', before, broken, '--format', 'github']).stdout, /^::error file=[^,]*\/a\.yaml,line=1,col=7,title=E_KIND::unknown kind "apii"/m);
});
