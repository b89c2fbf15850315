// examples/ compiles cleanly into the bundle the demo serves: three APIs (static mTLS alone,
// static mTLS + token, dynamic mTLS), three keys (certificate, token, both), deterministic bytes,
// no private key and no demo token in them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { CompileResult } from '../compiler/index.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { loadBundle } from '../bundle/read.ts';
import type { BundleContent } from '../bundle/types.ts';
import { writeDemoPki, type DemoPki } from '../cli/pki.ts';

const EXAMPLES = join(import.meta.dirname, '..', 'examples');

/** The demo tokens examples/README.md lists (key -> plaintext): they must never reach a bundle. */
function demoTokens(): Record<string, string> {
  const readme = readFileSync(join(EXAMPLES, 'README.md'), 'utf8');
  const rows = [...readme.matchAll(/^\| (\w+) \| `([A-Za-z0-9_-]{43})` \| `([0-9a-f]{64})` \|$/gm)];
  assert.ok(rows.length >= 2, 'examples/README.md lists the demo tokens');
  for (const [, key, token, hash] of rows) assert.equal(createHash('sha256').update(token, 'utf8').digest('hex'), hash, `README hash of ${key}'s token`);
  return Object.fromEntries(rows.map(([, key, token]) => [key, token]));
}

let dir: string;
let pki: DemoPki;
let result: CompileResult;
let content: BundleContent;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mtlsgate-examples-'));
  // A copy without generated files (a developer's examples/certs or portal keys).
  cpSync(EXAMPLES, dir, { recursive: true, filter: (src) => !/^(certs|keys[/\\]portal)([/\\]|$)/.test(relative(EXAMPLES, src)) });
  pki = await writeDemoPki(join(dir, 'certs'));
  result = await compileDir(dir);
  assert.equal(result.errorCount, 0, JSON.stringify(result.diagnostics, null, 2));
  content = loadBundle(result.bundle!).content;
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('every example YAML file carries the schema modeline of its kind', () => {
  const files = ['apis', 'policies', 'keys'].flatMap((d) =>
    readdirSync(join(EXAMPLES, d))
      .filter((f) => statSync(join(EXAMPLES, d, f)).isFile())
      .map((f) => join(d, f)),
  );
  assert.ok(files.length >= 8);
  for (const file of files) {
    const text = readFileSync(join(EXAMPLES, file), 'utf8');
    const kind = /^kind: (api|policy|key)$/m.exec(text)?.[1];
    assert.ok(kind, `${file} has a kind`);
    assert.ok(text.startsWith(`# yaml-language-server: $schema=../../schema/${kind}.schema.json\n`), `${file} starts with the ${kind} modeline`);
  }
});

test('examples compile with no error and no warning', () => {
  assert.equal(result.warningCount, 0, JSON.stringify(result.diagnostics, null, 2));
});

test('three APIs, one per mTLS mode, on loopback upstreams, any host', () => {
  const { apis } = content;
  assert.deepEqual(Object.keys(apis).sort(), ['logistics', 'partner-reports', 'profile']);
  const mode = (id: string) => [apis[id].use_mutual_tls_auth, apis[id].use_keyless, apis[id].use_certificate];
  assert.deepEqual(mode('partner-reports'), [true, true, false], 'static mTLS alone');
  assert.deepEqual(mode('logistics'), [true, false, false], 'static mTLS + token');
  assert.deepEqual(mode('profile'), [false, false, true], 'dynamic mTLS');
  const fp = pki.clients;
  assert.deepEqual(apis['partner-reports'].client_certificates, [fp['partner-a'].fingerprint]);
  assert.deepEqual(apis.logistics.client_certificates, [fp['partner-a'].fingerprint, fp.bob.fingerprint].sort());
  assert.deepEqual(apis.profile.client_certificates, []);
  for (const api of Object.values(apis)) {
    assert.equal(api.domain, null);
    assert.match(api.target_url, /^http:\/\/127\.0\.0\.1:91\d\d$/);
  }
});

test('three keys: certificate only, token only, both; policies merged', () => {
  const { keys } = content;
  const tokens = demoTokens();
  const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
  assert.deepEqual(Object.keys(keys).sort(), ['alice', 'bob', 'carol', 'other-team']);
  assert.deepEqual(keys.alice.certificates, [pki.clients.alice.fingerprint]);
  assert.equal(keys.alice.token_sha256, null);
  assert.deepEqual(keys.carol.certificates, []);
  assert.equal(keys.carol.token_sha256, sha(tokens.carol));
  assert.deepEqual(keys.bob.certificates, [pki.clients.bob.fingerprint]);
  assert.equal(keys.bob.token_sha256, sha(tokens.bob));

  assert.deepEqual(Object.keys(keys.alice.access_rights), ['profile']);
  assert.deepEqual(Object.keys(keys.carol.access_rights), ['logistics']);
  assert.deepEqual(Object.keys(keys.bob.access_rights).sort(), ['logistics', 'profile']);
  assert.equal(keys.carol.access_rights.logistics.allowed_urls?.length, 2);
  assert.deepEqual(keys.carol.rate, { rate: 10, per: 1 });
  assert.deepEqual(keys.carol.quota, { max: 10000, renewal: 3600 });
  assert.deepEqual(keys.bob.rate, { rate: 50, per: 1 }, 'the most generous rate wins');
  assert.deepEqual(keys.alice.quota, null);
  for (const k of Object.values(keys)) assert.equal(k.is_inactive, false);
});

test('the bundle holds no private key and no demo token', () => {
  const text = result.bundle!.toString('utf8');
  assert.ok(!text.includes('PRIVATE KEY'));
  for (const token of Object.values(demoTokens())) assert.ok(!text.includes(token));
});

test('compiling twice gives the same bytes', async () => {
  const again = await compileDir(dir);
  assert.ok(again.bundle!.equals(result.bundle!));
});
