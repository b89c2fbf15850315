// `mtlsgate compile` and `mtlsgate check`, spawned from the built dist/mtlsgate.mjs: exit codes,
// output formats, and the bundle written atomically only on success.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { loadBundle } from '../bundle/read.ts';
import { api, certFiles, removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'mtlsgate.mjs');

function run(args: string[], cwd = ROOT) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let good: string;
let bad: string;
let warnOnly: string;
before(async () => {
  // `npm test` builds first; building here too keeps `run-tests.mjs cli-compile` usable alone.
  if (!existsSync(CLI)) spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  good = writeConfig({
    ...(await certFiles()),
    'apis/profile.yaml': api('profile', 'auth:\n  use_certificate: true\n'),
    'keys/alice.yaml': 'kind: key\nid: alice\ncertificate: ../certs/alice.pem\naccess_rights:\n  profile: {}\n',
  });
  bad = writeConfig({
    'apis/payments.yaml': api('payments', 'use_keyless: true\nauth:\n  use_certificate: true\n'),
    'keys/k.yaml': 'kind: key\nid: k\n',
  });
  warnOnly = writeConfig({ 'keys/k.yaml': `kind: key\nid: k\ntoken_sha256: ${'d'.repeat(64)}\n` });
});
after(removeConfigs);

test('compile: exit 0, bundle written, one-line summary on stderr', () => {
  const out = join(good, 'bundle.json');
  const r = run(['compile', good, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /1 API, 1 key, 1 certificate, digest sha256:[0-9a-f]{64}/);
  assert.equal(loadBundle(readFileSync(out)).content.keys.alice.id, 'alice');
});

test('compile with errors: exit 1, the existing bundle untouched, no temporary file left', () => {
  const out = join(bad, 'bundle.json');
  writeFileSync(out, 'previous bundle');
  const r = run(['compile', bad, '-o', out]);
  assert.equal(r.code, 1);
  assert.equal(readFileSync(out, 'utf8'), 'previous bundle');
  assert.deepEqual(
    readdirSync(bad).filter((f) => f.includes('.tmp')),
    [],
  );
  assert.match(r.stderr, /apis\/payments\.yaml:8:20: error E_AUTH_COMBO: use_certificate needs token auth, but use_keyless is true/);
  assert.match(r.stderr, / 8 \| {3}use_certificate: true\n\s+\|\s{20}\^/);
  assert.match(r.stderr, /keys\/k\.yaml:2:5: error E_KEY_NO_CREDENTIAL/);
  assert.match(r.stderr, /2 errors, 1 warning/);
});

test('check: exit 0 with warnings only, 1 with errors, nothing written', () => {
  assert.equal(run(['check', warnOnly]).code, 0);
  assert.equal(run(['check', bad]).code, 1);
  assert.equal(existsSync(join(warnOnly, 'bundle.json')), false);
});

test('paths are shown relative to the current directory', () => {
  const r = run(['check', basename(bad)], dirname(bad));
  assert.match(r.stderr, new RegExp(`^${basename(bad)}/apis/payments\\.yaml:8:20: error E_AUTH_COMBO`, 'm'));
});

test('--format json prints parseable diagnostics and counts on stdout', () => {
  const r = run(['check', bad, '--format', 'json']);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.stdout);
  assert.equal(j.ok, false);
  assert.equal(j.counts.errors, 2);
  assert.equal(j.counts.warnings, 1);
  assert.equal(j.errors.length, 2);
  const combo = j.diagnostics.find((d: { code: string }) => d.code === 'E_AUTH_COMBO');
  assert.deepEqual({ severity: combo.severity, line: combo.line, col: combo.col }, { severity: 'error', line: 8, col: 20 });
  assert.ok(combo.file.endsWith('apis/payments.yaml'));
});

test('--format github prints one workflow command per diagnostic', () => {
  const r = run(['check', bad, '--format', 'github']);
  assert.equal(r.code, 1);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 3, r.stdout);
  for (const l of lines) assert.match(l, /^::(error|warning) file=[^,]+,line=\d+,col=\d+,title=[EW]_[A-Z_]+::\S/);
  assert.ok(lines.some((l) => /^::error file=.*apis\/payments\.yaml,line=8,col=20,title=E_AUTH_COMBO::use_certificate needs token auth/.test(l)));
});

test('usage and I/O problems exit 2', () => {
  assert.equal(run(['check', join(good, 'no-such-dir')]).code, 2);
  assert.equal(run(['check', good, '--format', 'xml']).code, 2);
  assert.equal(run(['compile', good]).code, 2, 'compile needs -o');
  assert.equal(run(['compile', good, '-o', join(good, 'missing-dir', 'b.json')]).code, 2);
  assert.equal(run(['check', good, '--expiry-warning-days', 'soon']).code, 2);
  assert.equal(run(['check']).code, 2);
});

test('--strict makes a private key next to a certificate an error', async () => {
  const dir = writeConfig({ ...(await certFiles()), 'k.yaml': 'kind: key\nid: k\ncertificate: certs/alice-with-key.pem\n' });
  assert.equal(run(['check', dir]).code, 0);
  const r = run(['check', dir, '--strict']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error W_CERT_PRIVATE_KEY/);
});

test('--timings prints the time of each stage', () => {
  const r = run(['check', good, '--timings']);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /^timings: load \d+ ms, parse \d+ ms, schema \d+ ms, .*; total \d+ ms$/m);
});
