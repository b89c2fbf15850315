// `import tyk` writes an access test per mTLS API (session 18), in process: importTyk, the files
// written as the CLI writes them, then compileDir with the access-test runner, as `check` runs.
// Real certificates (the demo PKI), matched to Tyk's certificate ids by SHA-256 through --certs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { runAccessTests } from '../access/run.ts';
import { compileDir } from '../compiler/index.ts';
import { importTyk, type ImportOptions } from '../importer/index.ts';
import { importTmpDir } from './helpers/import-tyk.ts';
import { CLI, demoPki } from './helpers/serve-fixtures.ts';

const tmp = importTmpDir();
const ORG = '5e9d9544a1dcd60001d0ed20';
const CAROL = 'c3'.repeat(32);
const BOB = 'b0'.repeat(32);

let n = 0;
/** Imports the Tyk inputs (name -> JSON), writes the output, and checks it with its access tests. */
async function importAndCheck(files: Record<string, unknown>, options: ImportOptions = {}) {
  const dir = join(tmp, `case-${n++}`);
  mkdirSync(join(dir, 'in'), { recursive: true });
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, 'in', name), JSON.stringify(value, null, 2));
  const r = importTyk([join(dir, 'in')], options);
  const out = join(dir, 'out');
  for (const f of r.files) {
    mkdirSync(dirname(join(out, f.path)), { recursive: true });
    writeFileSync(join(out, f.path), f.text);
  }
  const check = async () => compileDir(out, { accessTests: runAccessTests });
  const cases = (api: string) => parse(readFileSync(join(out, `tests/mtls-${api}.yaml`), 'utf8')).cases as { name: string; expect: object }[];
  return { r, out, check, cases };
}

test('mTLS APIs get tests/mtls-<api>.yaml: pinned and key certificates (from --certs, matched by SHA-256) get through, no certificate and an unlisted one are refused; all pass, and fail once the pin is dropped by hand (before: no test)', async () => {
  const pki = await demoPki(join(tmp, 'pki'));
  const fp = (name: string) => new X509Certificate(readFileSync(join(pki.dir, `${name}.pem`))).fingerprint256.replaceAll(':', '').toLowerCase();
  const api = (id: string, extra: object) => ({
    api_id: id,
    name: id,
    org_id: ORG,
    proxy: { listen_path: `/${id}/`, target_url: 'http://127.0.0.1:9', strip_listen_path: true },
    ...extra,
  });
  const inputs = {
    'reports.json': api('reports', { use_standard_auth: true, use_mutual_tls_auth: true, client_certificates: [ORG + fp('partner-a'), ORG + 'ab'.repeat(32)] }),
    'profile.json': api('profile', { use_standard_auth: true, auth_configs: { authToken: { use_certificate: true } } }),
    [`${CAROL}.json`]: { alias: 'carol', access_rights: { reports: { api_id: 'reports', allowed_urls: [] } }, expires: 4102444800 },
    [`${BOB}.json`]: { alias: 'bob', certificate: ORG + fp('bob'), access_rights: { profile: { api_id: 'profile' } } },
  };
  // The demo PKI directory as --certs: certificates and their private keys side by side, named by person.
  const { r, out, check, cases } = await importAndCheck(inputs, { certs: pki.dir });
  assert.equal(r.counts.tests, 2);
  const expects = (api: string) => Object.fromEntries(cases(api).map((c) => [c.name, c.expect]));
  const reports = expects('reports');
  assert.deepEqual(reports['GET /reports/ without a client certificate: refused (Tyk: client certificate required)'], {
    status: 403,
    code: 'mtls.cert_required',
  });
  assert.deepEqual(reports['GET /reports/ with a certificate no Tyk definition names: refused'], { status: 403, code: 'mtls.cert_not_allowed' });
  const pinned = Object.keys(reports).filter((k) => k.includes('with pinned'));
  assert.equal(pinned.length, 2, Object.keys(reports).join('\n'));
  assert.deepEqual(reports[pinned.find((k) => k.includes('as key carol'))!], { status: 200, key: 'carol' });
  assert.ok(Object.keys(reports).some((k) => /which the API does not admit: refused$/.test(k)));
  const profile = expects('profile');
  assert.deepEqual(profile["GET /profile/ with key bob's certificate: identifies the key, let through"], { status: 200, key: 'bob' });
  assert.deepEqual(profile['GET /profile/ with a certificate no Tyk definition names: refused'], { status: 401, code: 'auth.cert_not_found' });
  // The pin without a PEM: no case, and the report says what to supply.
  const note = r.notes.find((f) => f.message.startsWith('the mTLS access test of API "reports"'));
  assert.match(note?.message ?? '', new RegExp(`no case for pinned sha256:${'ab'.repeat(32)}: .*holds none of them.*cert-raw-<certificate id>`));
  // Certificates only were copied (the presented ones), never a private key.
  const copied = r.files.filter((f) => f.path.startsWith('certs/'));
  assert.deepEqual(
    copied.map((f) => f.path).sort(),
    ['certs/bob.pem', 'certs/partner-a.pem', ...copied.map((f) => f.path).filter((p) => !/bob|partner-a/.test(p))].sort(),
  );
  for (const f of copied) assert.doesNotMatch(f.text, /PRIVATE KEY/);

  const checked = await check();
  assert.equal(checked.errorCount, 0, JSON.stringify(checked.diagnostics));
  const outcomes = checked.tests.outcomes ?? [];
  assert.equal(outcomes.length, checked.tests.cases.length);
  assert.ok(outcomes.length >= 8 && outcomes.every((o) => o.pass));
  // The expectations are Tyk's: drop static mTLS from the API by hand and the cases say so.
  const yamlPath = join(out, 'apis/reports.yaml');
  writeFileSync(yamlPath, readFileSync(yamlPath, 'utf8').replace('use_mutual_tls_auth: true', 'use_mutual_tls_auth: false'));
  const widened = await check();
  assert.ok(widened.diagnostics.some((d) => d.code === 'E_ACCESS_TEST' && /without a client certificate/.test(d.message)));
});

test('without --certs, an mTLS API still gets its refusals tested, and the report names each Tyk certificate id to supply', async () => {
  const { r, check, cases } = await importAndCheck({
    'reports.json': {
      api_id: 'reports',
      proxy: { listen_path: '/reports/', target_url: 'http://127.0.0.1:9' },
      use_keyless: true,
      use_mutual_tls_auth: true,
      client_certificates: [ORG + 'cd'.repeat(32)],
    },
  });
  assert.deepEqual(
    cases('reports').map((c) => c.expect),
    [
      { status: 403, code: 'mtls.cert_required' },
      { status: 403, code: 'mtls.cert_not_allowed' },
    ],
  );
  assert.match(
    r.notes.map((f) => f.message).join('\n'),
    /no case for pinned sha256:(cd){32}: the import has no PEM for it\. Give the certificates with --certs DIR/,
  );
  const checked = await check();
  assert.equal(checked.errorCount, 0, JSON.stringify(checked.diagnostics));
  assert.equal(checked.tests.outcomes?.filter((o) => o.pass).length, 2);
});

test('the CLI passes --certs DIR to the import: a directory that cannot be read is fatal, named, nothing written', () => {
  const dir = join(tmp, 'cli');
  mkdirSync(join(dir, 'in'), { recursive: true });
  writeFileSync(join(dir, 'in', 'a.json'), JSON.stringify({ api_id: 'a', use_keyless: true, proxy: { listen_path: '/a/', target_url: 'http://127.0.0.1:9' } }));
  const r = spawnSync(process.execPath, [CLI, 'import', 'tyk', 'in', '-o', 'out', '--certs', 'no-such-dir'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /^no-such-dir#: fatal: --certs: cannot read: .*\nmtlsgate import: nothing written$/m);
  assert.equal(existsSync(join(dir, 'out')), false);
});
