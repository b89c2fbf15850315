// Issue 10 item 4: config reads stay inside the config directory after symlinks are resolved
// (--allow-outside names exceptions), and a diagnostic quotes at most a short, escaped excerpt
// of a value. Before: a *.yaml symlink to a .env file was read, and its secret came back in a
// GitHub annotation.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileDir } from './helpers/compile-and-load.ts';
import { excerpt } from '../compiler/excerpt.ts';
import { api, certFiles, removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'mtlsgate.mjs');
const SECRET = 'hunter2-very-secret-value-0123456789';
const outside = mkdtempSync(join(tmpdir(), 'mtlsgate-outside-'));
after(() => {
  removeConfigs();
  rmSync(outside, { recursive: true, force: true });
});
writeFileSync(join(outside, 'prod.env'), `DATABASE_PASSWORD=${SECRET}\nOTHER=1\n`);

test('a *.yaml symlink to a file outside the directory is not read; the github annotation holds no secret', () => {
  const dir = writeConfig({ 'apis/x.yaml': api('x', 'use_keyless: true\n') });
  symlinkSync(join(outside, 'prod.env'), join(dir, 'apis', 'leak.yaml'));
  if (!existsSync(CLI)) spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  const r = spawnSync(process.execPath, [CLI, 'check', dir, '--format', 'github'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /file=.*apis\/leak\.yaml,line=1,col=1,title=E_PATH_OUTSIDE::apis\/leak\.yaml resolves to ".*prod\.env", outside the config directory/);
  assert.doesNotMatch(r.stdout + r.stderr, /hunter2|DATABASE_PASSWORD/);
});

test('the text format shows no code frame of a file outside the directory (the symlink target is never quoted)', () => {
  const dir = writeConfig({ 'apis/x.yaml': api('x', 'use_keyless: true\n') });
  symlinkSync(join(outside, 'prod.env'), join(dir, 'apis', 'leak.yaml'));
  const r = spawnSync(process.execPath, [CLI, 'check', dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /apis\/leak\.yaml:1:1: error E_PATH_OUTSIDE/);
  assert.doesNotMatch(r.stdout + r.stderr, /hunter2|DATABASE_PASSWORD/);
});

test('CRL paths of a kind: revocation document stay inside too', async () => {
  const certs = await certFiles();
  writeFileSync(join(outside, 'shared.crl'), certs['crl/fresh.crl']);
  const crlPath = join(outside, 'shared.crl');
  const dir = writeConfig({
    ...certs,
    'apis/a.yaml': api('a', 'use_mutual_tls_auth: true\nuse_keyless: true\nclient_certificates: [../certs/ca.pem]\n'),
    'r.yaml': `kind: revocation\nid: r\ncrl: [${crlPath}]\n`,
  });
  const r = await compileDir(dir);
  assert.deepEqual(
    r.diagnostics.map((d) => [d.code, d.file, d.line]),
    [['E_PATH_OUTSIDE', 'r.yaml', 3]],
  );
  assert.match(r.diagnostics[0].message, /^CRL ".*shared\.crl" resolves to .*, outside the config directory/);
  const allowed = await compileDir(dir, { allowOutside: [outside] });
  assert.equal(allowed.errorCount, 0, JSON.stringify(allowed.diagnostics));
});

test('certificate paths: ../ and absolute paths and symlinks out are refused; --allow-outside admits one path', async () => {
  const certs = await certFiles();
  writeFileSync(join(outside, 'shared-ca.pem'), certs['certs/ca.pem']);
  const dir = writeConfig({
    ...certs,
    'apis/a.yaml': api(
      'a',
      `use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [${join(outside, 'prod.env')}, ../../${outside.split('/').pop()}/shared-ca.pem, ../certs/ca.pem]\n`,
    ),
  });
  symlinkSync(join(outside, 'prod.env'), join(dir, 'certs', 'linked.pem'));
  writeFileSync(join(dir, 'apis', 'b.yaml'), api('b', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [../certs/linked.pem]\n'));
  // The relative path in a.yaml climbs from <dir>/apis to tmpdir: make it point at `outside`.
  const r = await compileDir(dir);
  const outsideDiags = r.diagnostics.filter((d) => d.code === 'E_PATH_OUTSIDE').map((d) => `${d.file}:${d.line}:${d.col}`);
  assert.deepEqual(outsideDiags.sort(), ['apis/a.yaml:8:23', `apis/a.yaml:8:${25 + join(outside, 'prod.env').length}`, 'apis/b.yaml:8:23'].sort());
  assert.ok(!r.diagnostics.some((d) => d.message.includes('hunter2') || d.message.includes('DATABASE')));
  assert.ok(!r.diagnostics.some((d) => d.code === 'E_CERT_NOT_PEM'), 'nothing outside was read');

  const allowed = await compileDir(dir, { allowOutside: [join(outside, 'shared-ca.pem')] });
  assert.deepEqual(
    allowed.diagnostics
      .filter((d) => d.code === 'E_PATH_OUTSIDE')
      .map((d) => `${d.file}:${d.line}:${d.col}`)
      .sort(),
    ['apis/a.yaml:8:23', 'apis/b.yaml:8:23'],
    'only the allowed file is read',
  );
});

test('a symlinked directory pointing outside is not walked; links that stay inside are fine', async () => {
  mkdirSync(join(outside, 'more'), { recursive: true });
  writeFileSync(join(outside, 'more', 'y.yaml'), api('y', 'use_keyless: true\n'));
  const dir = writeConfig({ 'apis/x.yaml': api('x', 'use_keyless: true\n'), 'real/z.yaml': api('z', 'use_keyless: true\n') });
  symlinkSync(join(outside, 'more'), join(dir, 'linked-out'));
  symlinkSync(join(dir, 'real'), join(dir, 'linked-in'));
  const r = await compileDir(dir);
  assert.deepEqual(
    r.diagnostics.map((d) => [d.code, d.file]),
    [['E_PATH_OUTSIDE', 'linked-out']],
  );
  const ok = await compileDir(dir, { allowOutside: [join(outside, 'more')] });
  assert.equal(ok.errorCount, 0, JSON.stringify(ok.diagnostics));
  assert.deepEqual(Object.keys(ok.content!.apis).sort(), ['x', 'y', 'z']);
});

test('values quoted in diagnostics are escaped and cut', async () => {
  assert.equal(excerpt('short'), '"short"');
  assert.equal(excerpt('a\nb"\u0007é'), '"a\\nb\\"\\u0007\\u00e9"');
  const long = 'x'.repeat(100);
  // A literal: docs/security.md section 4 promises 32 characters (the constant could drift).
  assert.equal(excerpt(long), `"${'x'.repeat(32)}…" (100 characters)`);
  const dir = writeConfig({ 'a.yaml': `kind: "${'k'.repeat(50)}\\n::error::forged"\nid: x\n` });
  const r = await compileDir(dir);
  const d = r.diagnostics.find((x) => x.code === 'E_KIND')!;
  assert.ok(d, JSON.stringify(r.diagnostics));
  assert.ok(!d.message.includes('\n') && !d.message.includes('forged'), d.message);
  assert.match(d.message, /\(66 characters\)/);
});

test('a kind: test case names its client certificate inside the directory too', async () => {
  const certs = await certFiles();
  writeFileSync(join(outside, 'client.pem'), certs['certs/alice.pem']);
  const dir = writeConfig({
    'apis/x.yaml': api('x', 'use_keyless: true\n'),
    't.yaml': `kind: test\nid: t\ncases:\n  - request: { url: /x/a, certificate: ${join(outside, 'client.pem')} }\n    expect: { status: 200 }\n`,
  });
  const r = await compileDir(dir);
  assert.deepEqual(
    r.diagnostics.map((d) => [d.code, d.file, d.line]),
    [['E_PATH_OUTSIDE', 't.yaml', 4]],
  );
  const allowed = await compileDir(dir, { allowOutside: [outside] });
  assert.equal(allowed.errorCount, 0, JSON.stringify(allowed.diagnostics));
});
