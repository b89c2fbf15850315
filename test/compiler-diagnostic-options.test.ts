// Diagnostics beyond one case per code (test/compiler-diagnostics.test.ts): what --strict and
// --expiry-warning-days change, and the position and advice of two codes in detail.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { compileDir } from './helpers/compile-and-load.ts';
import { api, certFiles, removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';

after(removeConfigs);

const key = (cert: string) => `kind: key\nid: k\ncertificate: ${cert}\n`;

test('--strict turns a private key next to a certificate into an error', async () => {
  const dir = writeConfig({ ...(await certFiles()), 'k.yaml': key('certs/alice-with-key.pem') });
  const result = await compileDir(dir, { strict: true });
  const d = result.diagnostics.find((x) => x.code === 'W_CERT_PRIVATE_KEY');
  assert.equal(d?.severity, 'error');
  assert.equal(result.bundle, null);
});

test('keyless and use_standard_auth both true is E_AUTH_COMBO on use_standard_auth', async () => {
  const dir = writeConfig({ 'a.yaml': api('x', 'use_keyless: true\nuse_standard_auth: true\n') });
  const d = (await compileDir(dir)).diagnostics.find((x) => x.code === 'E_AUTH_COMBO');
  assert.deepEqual(d && [d.line, d.col], [7, 20]);
});

test('an unknown top-level field that belongs in a nested block says where it belongs', async () => {
  const dir = writeConfig({ 'a.yaml': api('x', 'use_certificate: true\n') });
  const d = (await compileDir(dir)).diagnostics.find((x) => x.code === 'E_UNKNOWN_FIELD');
  assert.match(d!.message, /belongs under auth:/);
  assert.deepEqual([d!.line, d!.col], [6, 1]);
});

test('--expiry-warning-days moves the warning threshold', async () => {
  const dir = writeConfig({ ...(await certFiles()), 'k.yaml': key('certs/expiring.pem') });
  const quiet = await compileDir(dir, { expiryWarningDays: 2 });
  assert.equal(
    quiet.diagnostics.some((d) => d.code === 'W_CERT_EXPIRING'),
    false,
  );
});
