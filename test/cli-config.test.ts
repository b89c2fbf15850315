// Issue 16 items 2, 3, 7 and 8 through the built CLI: an empty config is an error unless
// --allow-empty says it is meant (compile, and serve at start and on reload), hints that point
// the right way, every problem in one run, --strict for every warning, .mtlsgateignore/--exclude.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DemoPki } from '../cli/pki.ts';
import { api, certFiles, removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';
import { ensureBuilt, mtlsgate } from './helpers/cli.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { demoPki, spawnServe, writeConfig as writeServeConfig } from './helpers/serve-fixtures.ts';

const t = tempDir('cli-config');
let pki: DemoPki;
before(async () => {
  ensureBuilt();
  pki = await demoPki(t.dir);
});
after(() => {
  removeConfigs();
  t.cleanup();
});

test('an empty config is an error; --allow-empty compiles it on purpose; no API is a warning, an error under --strict', () => {
  const empty = writeConfig({ 'README.md': 'nothing here' });
  const r = mtlsgate(['compile', empty, '-o', join(empty, 'b.json')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error E_EMPTY_CONFIG: no kind: api, policy or key documents found .*pass --allow-empty if an empty bundle is meant/);
  const allowed = mtlsgate(['compile', empty, '-o', join(empty, 'b.json'), '--allow-empty']);
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.match(allowed.stderr, /0 APIs, 0 keys, 0 certificates/);

  const keysOnly = writeConfig({ 'k.yaml': `kind: key\nid: k\ntoken_sha256: ${'d'.repeat(64)}\n` });
  const w = mtlsgate(['check', keysOnly]);
  assert.equal(w.code, 0);
  assert.match(w.stderr, /warning W_NO_APIS: no kind: api document .*routes nothing/);
  assert.equal(mtlsgate(['check', keysOnly, '--strict']).code, 1);
});

test('serve refuses a bundle with no API at start and on reload unless --allow-empty', async () => {
  const empty = join(t.dir, 'empty.json');
  assert.equal(mtlsgate(['compile', writeConfig({}), '-o', empty, '--allow-empty']).code, 0);
  const tls = ['--tls-cert', join(pki.dir, 'server.pem'), '--tls-key', join(pki.dir, 'server-key.pem'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'];
  const start = mtlsgate(['serve', '--bundle', empty, ...tls]);
  assert.equal(start.code, 2);
  assert.match(start.stderr, /refused: the bundle has no API, so it would route nothing \(serve --allow-empty serves it anyway\)/);

  const allowed = spawnServe(['--bundle', empty, ...tls, '--allow-empty']);
  try {
    await allowed.serving();
  } finally {
    allowed.kill();
  }

  const live = join(t.dir, 'live.json');
  assert.equal(mtlsgate(['compile', writeServeConfig(join(t.dir, 'good'), pki.dir, 'http://127.0.0.1:9', ['bob']), '-o', live]).code, 0);
  const s = spawnServe(['--bundle', live, ...tls]);
  try {
    const serving = await s.serving();
    const adminPort = /:(\d+)$/.exec(String(serving.admin))?.[1];
    const digest = JSON.parse(readFileSync(live, 'utf8')).digest;
    writeFileSync(live, readFileSync(empty));
    const refused = await waitFor(
      'the empty reload refused',
      () => s.lines().find((l) => l.msg === 'bundle refused; the previous bundle keeps serving'),
      30_000,
    );
    assert.match(String(refused.error), /has no API/);
    assert.equal(refused.serving, digest);
    assert.ok(adminPort, String(serving.admin));
    const h = (await (await fetch(`http://127.0.0.1:${adminPort}/health`)).json()) as { bundle: { digest: string }; last_reload_error: { message: string } };
    assert.equal(h.bundle.digest, digest);
    assert.match(h.last_reload_error.message, /has no API/);
  } finally {
    s.kill();
  }
});

test('hints: serve --bundle DIR says compile DIR, not into it; --admin mentions off; "true" says remove the quotes; "an api"', async () => {
  const tls = ['--tls-cert', join(pki.dir, 'server.pem'), '--tls-key', join(pki.dir, 'server-key.pem'), '--listen', '127.0.0.1:0', '--admin', 'off'];
  const dir = writeConfig({ 'a.yaml': api('a', 'use_keyless: true\n') });
  const r = mtlsgate(['serve', '--bundle', dir, ...tls]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /is a directory: serve takes a compiled bundle; .*`mtlsgate compile .* -o bundle\.json` and serve --bundle bundle\.json/);
  assert.doesNotMatch(r.stderr, new RegExp(`-o ${dir}`), 'never suggests writing over the config directory');

  assert.match(mtlsgate(['serve', '--bundle', 'b', '--tls-cert', 'c', '--tls-key', 'k', '--admin', 'x']).stderr, /--admin must be HOST:PORT .* or off/);

  const quoted = writeConfig({ 'a.yaml': api('a', 'use_keyless: "true"\nuse_mutual_tls_auth: "false"\n') });
  const q = mtlsgate(['check', quoted]);
  assert.match(q.stderr, /use_keyless must be true or false, got string "true" \(remove the quotes: true\)/);
  assert.match(q.stderr, /use_mutual_tls_auth must be true or false, got string "false" \(remove the quotes: false\)/);
  assert.doesNotMatch(q.stderr, /quote strings that look like/);
  // YAML 1.1 booleans (yes/no/on/off) are strings in YAML 1.2: the hint says what to write.
  const yaml11 = writeConfig({ 'a.yaml': api('a', 'use_keyless: yes\nuse_mutual_tls_auth: off\n') });
  const y = mtlsgate(['check', yaml11]);
  assert.match(y.stderr, /use_keyless must be true or false, got string "yes" \(YAML 1\.2 reads yes as a string, not a boolean: write true\)/);
  assert.match(y.stderr, /use_mutual_tls_auth must be true or false, got string "off" \(YAML 1\.2 reads off as a string, not a boolean: write false\)/);
  const numeric = writeConfig({ 'a.yaml': 'kind: api\nid: 42\nproxy:\n  listen_path: /a/\n  target_url: http://127.0.0.1:9\n' });
  assert.match(mtlsgate(['check', numeric]).stderr, /id must be a string, got number 42 \(quote it: "42"\)/);

  const typo = writeConfig({ 'a.yaml': `${api('a')}use_keyles: true\n` });
  const u = mtlsgate(['check', typo]);
  assert.match(u.stderr, /unknown field "use_keyles" in an api \(did you mean "use_keyless"\?\)/);
  assert.doesNotMatch(u.stderr, /in a api/);
});

test('every problem in one run: a policy with rate but no per also reports its quota_max problem', () => {
  const dir = writeConfig({
    'a.yaml': api('a', 'use_keyless: true\n'),
    'p.yaml': 'kind: policy\nid: p\nrate: 10\nquota_max: 0\naccess_rights:\n  a: {}\n',
    'q.yaml': 'kind: policy\nid: q\nper: 60\nquota_max: 100\naccess_rights:\n  a: {}\n',
  });
  const r = mtlsgate(['check', dir, '--format', 'json']);
  assert.equal(r.code, 1);
  const codes = JSON.parse(r.stdout).diagnostics.map(
    (d: { file: string; code: string; message: string }) => `${d.file.replace(/.*\//, '')} ${d.code} ${d.message}`,
  );
  assert.ok(
    codes.some((c: string) => /^p\.yaml E_MISSING_FIELD rate needs "per" too/.test(c)),
    codes.join('\n'),
  );
  assert.ok(
    codes.some((c: string) => /^p\.yaml E_FIELD_VALUE quota_max 0 would refuse every request/.test(c)),
    codes.join('\n'),
  );
  assert.ok(
    codes.some((c: string) => /^q\.yaml E_MISSING_FIELD quota_max needs quota_renewal_rate/.test(c)),
    codes.join('\n'),
  );
});

test('--strict turns every warning into an error and says so in its help', async () => {
  const dir = writeConfig({ ...(await certFiles()), 'a.yaml': api('a', 'use_mutual_tls_auth: true\nclient_certificates:\n  - certs/expiring.pem\n') });
  const plain = mtlsgate(['check', dir]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stderr, /warning W_CERT_EXPIRING/);
  const strict = mtlsgate(['check', dir, '--strict']);
  assert.equal(strict.code, 1);
  assert.match(strict.stderr, /error W_CERT_EXPIRING/);
  assert.equal(mtlsgate(['compile', dir, '--strict', '-o', join(dir, 'b.json')]).code, 1);
  for (const cmd of ['check', 'compile']) assert.match(mtlsgate(['help', cmd]).stdout, /--strict +every warning is an error/, cmd);
});

test('.mtlsgateignore (gitignore syntax) and --exclude keep other YAML out of the config', () => {
  const files = {
    'apis/a.yaml': api('a', 'use_keyless: true\n'),
    'docker-compose.yml': 'services:\n  gw:\n    image: mtlsgate\n',
    'k8s/deployment.yaml': 'apiVersion: apps/v1\nkind: Deployment\n',
    'k8s/keep.yaml': api('kept', 'use_keyless: true\n'),
    'ci/workflow.yaml': 'on: push\n',
  };
  const dir = writeConfig(files);
  const before = mtlsgate(['check', dir]);
  assert.equal(before.code, 1);
  assert.match(before.stderr, /E_KIND/);
  // The fix names the way out for a file that is not gateway config, not only the kinds.
  assert.match(before.stderr, /help: .*not gateway config .*\.mtlsgateignore .*--exclude/);

  writeFileSync(join(dir, '.mtlsgateignore'), '# not gateway config\ndocker-compose.yml\n/k8s/*\n!/k8s/keep.yaml\n');
  const withFile = mtlsgate(['check', dir, '--exclude', 'ci/']);
  assert.equal(withFile.code, 0, withFile.stderr);
  assert.match(withFile.stderr, /ok: 2 APIs/);

  const noFile = writeConfig(files);
  const excluded = mtlsgate(['check', noFile, '--exclude', '*.yml', '--exclude', 'k8s/deployment.yaml', '--exclude', 'ci']);
  assert.equal(excluded.code, 0, excluded.stderr);
  assert.match(excluded.stderr, /ok: 2 APIs/);
});
