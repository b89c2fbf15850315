// docs/security.md section 38: what the CLI reads besides requests. A YAML `__proto__` key is a
// field like any other; a certificate is exactly one DER, the one the gateway fingerprints; a
// path named by input is read only when it names a regular file of bounded size; ignore
// patterns match in linear time. Each test failed before its fix (see the section).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { compileDir } from './helpers/compile-and-load.ts';
import { IgnoreRules } from '../compiler/ignore.ts';
import { validateCertificate } from '../portal/validate-cert.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { api, removeConfigs, testPki, writeConfig } from './fixtures/compiler/helpers.ts';
import { CLI, ensureBuilt } from './helpers/cli.ts';

after(removeConfigs);

const DYNAMIC_API = api('dyn', 'auth: {use_certificate: true}\n');

function pem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64.replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** The built CLI, killed after `ms` (a reader stuck on a pipe shows as status null). */
function cli(args: string[], cwd: string, ms = 15_000) {
  const r = spawnSync(CLI, args, { cwd, encoding: 'utf8', timeout: ms });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('a __proto__ key is a field like any other: unknown where fields are fixed, never a hidden way to set one', async () => {
  const dir = writeConfig({
    // Before: the mapping under __proto__ became the prototype, so use_keyless was read as set
    // (E_AUTH_COMBO) while Object.keys, the schema's unknown-field check and duplicate keys missed it.
    'apis/hidden.yaml': `${api('hidden', 'auth: {use_certificate: true}\n')}__proto__:\n  use_keyless: true\n`,
    'apis/admin.yaml': api('admin', 'auth: {use_certificate: true}\n'),
    // Before: check said ok and the bundle silently left the grant of "admin" out.
    'keys/k1.yaml': `kind: key\nid: k1\ntoken_sha256: "${'1'.repeat(64)}"\naccess_rights:\n  hidden: {}\n  __proto__:\n    admin: {}\n`,
  });
  const r = await compileDir(dir);
  const found = r.diagnostics.map((d) => `${d.file}:${d.line} ${d.code} ${d.message}`);
  assert.ok(
    found.some((d) => d.startsWith('apis/hidden.yaml:7 E_UNKNOWN_FIELD') && d.includes('"__proto__"')),
    found.join('\n'),
  );
  assert.ok(!found.some((d) => d.includes('E_AUTH_COMBO')), found.join('\n'));
  assert.ok(
    found.some((d) => d.startsWith('keys/k1.yaml:6 E_UNKNOWN_API') && d.includes('"__proto__"')),
    found.join('\n'),
  );
  assert.equal(r.bundle, null);
});

test('a CERTIFICATE block is exactly one certificate in DER: bytes after it (a private key) or a longer length form are refused with the fingerprint the gateway sees', async () => {
  const p = await testPki();
  const der = new X509Certificate(p.alice.certPem).raw;
  const keyDer = createPrivateKey(p.alice.keyPem).export({ format: 'der', type: 'pkcs8' });
  // The outer length in three bytes instead of two: OpenSSL reads it and writes it back shorter.
  const longForm = Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), der.subarray(2)]);
  assert.equal(der[1], 0x82);
  const dir = writeConfig({
    'apis/dyn.yaml': DYNAMIC_API,
    'certs/with-key.pem': pem(Buffer.concat([der, keyDer])),
    'certs/long-form.pem': pem(longForm),
    'certs/trailing.pem': pem(Buffer.concat([der, Buffer.from('0000', 'hex')])),
    'keys/a.yaml': 'kind: key\nid: a\ncertificate: ../certs/with-key.pem\naccess_rights: {dyn: {}}\n',
    'keys/b.yaml': 'kind: key\nid: b\ncertificate: ../certs/long-form.pem\naccess_rights: {dyn: {}}\n',
    'keys/c.yaml': 'kind: key\nid: c\ncertificate: ../certs/trailing.pem\naccess_rights: {dyn: {}}\n',
  });
  const r = await compileDir(dir);
  const parse = (file: string) => r.diagnostics.find((d) => d.file === file && d.code === 'E_CERT_PARSE')?.message ?? '';
  const seen = `sha256:${fingerprintOf(der)}`;
  // Before: no diagnostic, and the key was indexed under the SHA-256 of the bytes as written,
  // which no TLS client presents (`mtlsgate fingerprint` and the gateway say `seen`).
  assert.match(parse('keys/a.yaml'), /has \d+ bytes after the certificate: a private key/);
  assert.ok(parse('keys/a.yaml').includes(seen), parse('keys/a.yaml'));
  assert.match(parse('keys/b.yaml'), /is not in DER form/);
  assert.match(parse('keys/c.yaml'), /has 2 bytes after the certificate;/);
  assert.equal(r.bundle, null);

  // The portal: an uploaded DER with the private key appended is a private key submission,
  // refused as such (before: accepted, the key bytes dropped without a word).
  const none = () => undefined;
  const upload = validateCertificate(Buffer.concat([der, keyDer]), none);
  assert.equal(upload.ok ? 'accepted' : upload.problem, 'private_key');
  const pasted = validateCertificate(Buffer.from(pem(Buffer.concat([der, Buffer.from('0000', 'hex')]))), none);
  assert.equal(pasted.ok ? 'accepted' : pasted.problem, 'unparseable');
  assert.equal(validateCertificate(Buffer.from(p.alice.certPem), none).ok, true);
});

test('a certificate, CRL or test certificate path naming a named pipe or a device is refused at once, not waited on or read forever', (t) => {
  ensureBuilt();
  if (process.platform === 'win32') return t.skip('named pipes are POSIX');
  const dir = writeConfig({
    'apis/dyn.yaml': DYNAMIC_API,
    'keys/a.yaml': 'kind: key\nid: a\ncertificate: ../certs/pipe.pem\naccess_rights: {dyn: {}}\n',
  });
  mkdirSync(join(dir, 'certs'), { recursive: true });
  assert.equal(spawnSync('mkfifo', [join(dir, 'certs', 'pipe.pem')]).status, 0);
  // Before: `check` opened the pipe and waited for a writer forever (killed here: status null).
  const checked = cli(['check', dir], dir);
  assert.equal(checked.code, 1, checked.out);
  assert.match(checked.out, /E_CERT_READ: certificate "\.\.\/certs\/pipe\.pem" cannot be read .*: it is a named pipe, not a regular file/);

  // A .mtlsgateignore that is a pipe is not read as empty, nor waited on.
  const ignored = writeConfig({ 'apis/dyn.yaml': DYNAMIC_API });
  assert.equal(spawnSync('mkfifo', [join(ignored, '.mtlsgateignore')]).status, 0);
  const withPipe = cli(['check', ignored], ignored);
  assert.equal(withPipe.code, 2, withPipe.out);
  assert.match(withPipe.out, /\.mtlsgateignore cannot be read: it is a named pipe, not a regular file/);

  // `import tyk`: a Tyk definition names its certificates by absolute path, and the importer
  // copies them. Before: /dev/zero was read until memory ran out (the process died).
  const tyk = writeConfig({
    'partner.json': JSON.stringify({
      api_id: 'partner',
      name: 'Partner',
      use_keyless: true,
      use_mutual_tls_auth: true,
      client_certificates: ['/dev/zero'],
      proxy: { listen_path: '/partner/', target_url: 'http://127.0.0.1:9000' },
      active: true,
    }),
  });
  // Outside the input directory it is read only with --allow-outside (section 41); allowed, the
  // read is still bounded.
  const imported = cli(['import', 'tyk', 'partner.json', '-o', 'out', '--allow-outside', '/dev/zero'], tyk);
  assert.notEqual(imported.code, null, 'the import ended');
  assert.match(imported.out, /certificate file "\/dev\/zero" not copied \(it is a character device, not a regular file/);
});

test('.mtlsgateignore patterns match in time linear in the path, and a range written backwards matches nothing', () => {
  // Ten "**" between literals: a backtracking RegExp took seconds on one 37-character path
  // (and minutes at 80 characters), and a .mtlsgateignore comes in a pull request like any file.
  const stars = IgnoreRules.from(['a**a**a**a**a**a**a**a**a**a**a**b']);
  const started = performance.now();
  assert.equal(stars.ignores(`${'a'.repeat(30)}/x.yaml`, false), false);
  const ms = performance.now() - started;
  assert.ok(ms < 1_000, `${ms.toFixed(0)} ms for one path of 37 characters`);
  // Before: "[z-a]" threw "Range out of order in character class" (check: "config directory
  // cannot be listed"). Git matches nothing with it; "[!x]" never matches "/".
  const rules = IgnoreRules.from(['[z-a].yaml', 'keep/[!x]y.yaml']);
  assert.equal(rules.ignores('a.yaml', false), false);
  assert.equal(rules.ignores('keep/ay.yaml', false), true);
  assert.equal(rules.ignores('keep/xy.yaml', false), false);
});

test('a tag outside the YAML core schema, or collections nested past 100 levels, get a message saying so', async () => {
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
  const dir = writeConfig({
    // Before: !!binary made bytes, reported as "id must be a string, got a mapping"; !include
    // was dropped without a word (the value read as the string after it).
    'apis/binary.yaml': 'kind: api\nid: !!binary YWJj\nproxy: {listen_path: /b/, target_url: "http://127.0.0.1:9000"}\n',
    'apis/include.yaml': 'kind: api\nid: inc\nproxy: {listen_path: !include paths.yaml, target_url: "http://127.0.0.1:9000"}\n',
    'apis/core-tags.yaml': 'kind: api\nid: !!str core\nproxy: !!map {listen_path: /c/, target_url: "http://127.0.0.1:9000"}\n',
    // Before: "mapping keys must be plain strings" at 150 levels, "Maximum call stack size exceeded" at 5,000.
    'policies/deep.yaml': `kind: policy\nid: deep\ntags: ${deep(150)}\n`,
    'policies/deeper.yaml': `kind: policy\nid: deeper\ntags: ${deep(5_000)}\n`,
  });
  const r = await compileDir(dir);
  const syntax = (file: string) => r.diagnostics.filter((d) => d.file === file && d.code === 'E_YAML_SYNTAX').map((d) => d.message);
  assert.deepEqual(syntax('apis/binary.yaml'), [
    'tag "!!binary" is not supported: config values are plain strings, numbers, true/false, null, lists and mappings',
  ]);
  assert.deepEqual(syntax('apis/include.yaml'), [
    'tag "!include" is not supported: config values are plain strings, numbers, true/false, null, lists and mappings',
  ]);
  assert.deepEqual(syntax('apis/core-tags.yaml'), []);
  assert.deepEqual(syntax('policies/deep.yaml'), ['collections nested more than 100 levels deep']);
  assert.deepEqual(syntax('policies/deeper.yaml'), ['collections nested more than 100 levels deep']);
});

test('import tyk: an expiry or a limit it cannot convert is reported; such a key is written commented out, not left to never expire', () => {
  ensureBuilt();
  const fixtures = join(import.meta.dirname, 'fixtures', 'tyk');
  const policies = JSON.parse(readFileSync(join(fixtures, 'policies', 'policies.json'), 'utf8'));
  const keyFile = '2c0e06727a739dd6b161bf0369e6cc136384bcf913c533a1e2de17dc256ae5ae.json';
  const key = readFileSync(join(fixtures, 'keys', keyFile), 'utf8');
  assert.match(key, /"expires": 0,/);
  const tyk = writeConfig({
    'apps/logistics.json': readFileSync(join(fixtures, 'apps', 'logistics.json')),
    'apps/profile.json': readFileSync(join(fixtures, 'apps', 'profile.json')),
    // JSON.parse reads 1e400 as Infinity; 1e300 seconds is past the last date JavaScript holds.
    'policies/policies.json': JSON.stringify({
      ...policies,
      'partner-standard': { ...policies['partner-standard'], rate: '10' },
      'profile-self': { ...policies['profile-self'], rate: 'INFINITE' },
    }).replace('"INFINITE"', '1e400'),
    [`keys/${keyFile}`]: key.replace('"expires": 0,', '"expires": 1e400,'),
    'keys/later.json': key.replace('"expires": 0,', '"expires": 1e300,').replace('"alias": "carol"', '"alias": "carol-later"'),
  });
  const r = cli(['import', 'tyk', 'apps', 'policies', 'keys', '-o', 'out', '--format', 'json'], tyk);
  // Before: the key was written active with no expires at all (1e400), or the import stopped
  // with "Invalid time value" (1e300); the two rates were dropped without a word.
  assert.notEqual(r.code, 2, r.out);
  const body = JSON.parse(r.out.slice(0, r.out.lastIndexOf('}') + 1));
  const dropped = body.not_converted.map((f: { file: string; pointer: string; message: string }) => `${f.file.replace(/.*\//, '')}#${f.pointer}: ${f.message}`);
  const line = (start: string) => dropped.find((d: string) => d.startsWith(start)) ?? `none of ${dropped.join('\n')}`;
  assert.match(line(`${keyFile}#/expires`), /key not activated: its expires Infinity is not a Unix time .* Written commented out/);
  assert.match(line('later.json#/expires'), /its expires 1e\+300 is not a Unix time/);
  assert.match(line('policies.json#/partner-standard/rate'), /rate "10" per 1 not converted/);
  assert.match(line('policies.json#/profile-self/rate'), /rate Infinity per 1 not converted/);
  const written = readdirSync(join(tyk, 'out', 'keys')).map((f) => readFileSync(join(tyk, 'out', 'keys', f), 'utf8'));
  assert.equal(written.length, 2);
  assert.ok(
    written.some((text) => /^# NOT ACTIVE: its expires Infinity/m.test(text)),
    written.join('\n'),
  );
  for (const text of written) assert.doesNotMatch(text, /^kind: key/m, 'every key document is commented out');
});

test('mtlsgate certs (and the demo) never write a certificate or a key through a symbolic link at its name', () => {
  ensureBuilt();
  // A checkout may carry examples/certs/ca-key.pem -> a file of the user's; `npm start` then
  // writes the demo certificates there. Before: the dangling link's target was created holding
  // the demo CA's private key, and with --force an existing target was overwritten.
  const dir = writeConfig({ 'victim.txt': "the user's file\n" });
  mkdirSync(join(dir, 'certs'));
  symlinkSync(join(dir, 'planted-key.pem'), join(dir, 'certs', 'ca-key.pem'));
  const fresh = cli(['certs', 'certs'], dir);
  assert.equal(fresh.code, 2, fresh.out);
  assert.match(fresh.out, /certs\/ca-key\.pem is a symbolic link: demo certificates and keys are never written through one/);
  assert.equal(existsSync(join(dir, 'planted-key.pem')), false, 'nothing was created through the link');

  const forced = writeConfig({ 'victim.txt': "the user's file\n" });
  assert.equal(cli(['certs', 'certs'], forced).code, 0);
  const link = join(forced, 'certs', 'server.pem');
  rmSync(link);
  symlinkSync(join(forced, 'victim.txt'), link);
  const again = cli(['certs', 'certs', '--force'], forced);
  assert.equal(again.code, 2, again.out);
  assert.equal(readFileSync(join(forced, 'victim.txt'), 'utf8'), "the user's file\n");
});

test('a certificate subject in a diagnostic shows bidi overrides, zero-width and control characters as \\uXXXX', async () => {
  const dir = writeConfig({
    'apis/pinned.yaml': `${api('pinned', 'use_mutual_tls_auth: true\nuse_keyless: true\nclient_certificates: [../certs/odd.pem]\n')}`,
  });
  mkdirSync(join(dir, 'certs'));
  // U+202E (right-to-left override) shows "evil\u202egpj.exe" as "evilexe.jpg" in a terminal or
  // a pull request; U+200B is invisible. Before: both reached the message as they are.
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'certs', 'odd-key.pem')]
      .concat(['-out', join(dir, 'certs', 'odd.pem'), '-days', '10', '-utf8', '-subj', '/CN=evil\u202egpj.exe\u200b'])
      .concat(['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign']),
    { encoding: 'utf8' },
  );
  assert.equal(made.status, 0, made.stderr);
  const r = await compileDir(dir);
  const expiring = r.diagnostics.find((d) => d.code === 'W_CERT_EXPIRING');
  assert.ok(expiring, JSON.stringify(r.diagnostics));
  assert.ok(expiring.message.includes('(CN=evil\\u202egpj.exe\\u200b)'), expiring.message);
  assert.doesNotMatch(expiring.message, /[\u202e\u200b]/);
});
