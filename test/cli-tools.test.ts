// The small CLI tools, spawned from the built dist/mtlsgate.mjs: certs, fingerprint, token, diff.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const CLI = join(import.meta.dirname, '..', 'dist', 'mtlsgate.mjs');
const NAMES = ['ca', 'server', 'partner-a', 'alice', 'bob', 'mallory', 'other-ca', 'stranger'];

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let tmp: string;
let certs: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-cli-tools-'));
  certs = join(tmp, 'certs');
  const r = run('certs', certs);
  assert.equal(r.code, 0, r.stderr);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const fingerprintOf = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256.replaceAll(':', '').toLowerCase();

test('certs writes the demo set: a localhost server certificate, private keys 0600, fingerprints printed', () => {
  for (const name of NAMES) {
    assert.ok(statSync(join(certs, `${name}.pem`)).isFile(), name);
    assert.equal(statSync(join(certs, `${name}-key.pem`)).mode & 0o777, 0o600, `${name}-key.pem mode`);
  }
  const server = new X509Certificate(readFileSync(join(certs, 'server.pem')));
  const sans = server.subjectAltName?.split(', ') ?? [];
  assert.ok(sans.includes('DNS:localhost'), server.subjectAltName);
  assert.ok(sans.includes('IP Address:127.0.0.1'), server.subjectAltName);
  assert.ok(sans.includes('IP Address:0:0:0:0:0:0:0:1'), server.subjectAltName);
  const ca = new X509Certificate(readFileSync(join(certs, 'ca.pem')));
  assert.ok(ca.ca);
  assert.ok(server.checkIssued(ca));
});

test('certs refuses to overwrite without --force and replaces with it', () => {
  const dir = join(tmp, 'again');
  assert.equal(run('certs', dir).code, 0);
  const alice = readFileSync(join(dir, 'alice.pem'), 'utf8');
  const refused = run('certs', dir);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /refusing to overwrite/);
  assert.match(refused.stderr, /--force/);
  assert.equal(readFileSync(join(dir, 'alice.pem'), 'utf8'), alice, 'untouched');
  const forced = run('certs', dir, '--force', '--alg', 'rsa');
  assert.equal(forced.code, 0, forced.stderr);
  const newAlice = readFileSync(join(dir, 'alice.pem'), 'utf8');
  assert.notEqual(newAlice, alice);
  assert.equal(new X509Certificate(newAlice).publicKey.asymmetricKeyType, 'rsa');
  assert.ok(forced.stdout.includes(`sha256:${fingerprintOf(join(dir, 'alice.pem'))}`), 'prints the fingerprints');
});

test('certs --host: the server certificate names exactly those hosts (DNS and IP SANs, CN the first) and the listing says so', () => {
  const dir = join(tmp, 'hosts');
  const r = run('certs', dir, '--host', 'gateway.example.com', '--host', '10.0.0.5', '--host', '*.api.example.com');
  assert.equal(r.code, 0, r.stderr);
  const server = new X509Certificate(readFileSync(join(dir, 'server.pem')));
  assert.deepEqual(server.subjectAltName?.split(', '), ['DNS:gateway.example.com', 'DNS:*.api.example.com', 'IP Address:10.0.0.5']);
  assert.match(server.subject, /^CN=gateway\.example\.com$/m);
  assert.ok(server.checkHost('gateway.example.com'));
  assert.equal(server.checkHost('localhost'), undefined, 'no localhost once --host is given');
  assert.match(r.stdout, /server\.pem +sha256:[0-9a-f]{64} {2}server: gateway\.example\.com, 10\.0\.0\.5, \*\.api\.example\.com$/m);
});

test('certs --host: an empty value or one that is neither a DNS name nor an IP address exits 2 and writes nothing', () => {
  for (const bad of ['', 'bad name', 'a/b.example.com', 'api..example.com', '-api.example.com', 'api.example.com.', '*', 'a.*.example.com']) {
    const dir = join(tmp, 'bad-host');
    const r = run('certs', dir, '--host', 'ok.example.com', `--host=${bad}`);
    assert.equal(r.code, 2, `--host ${JSON.stringify(bad)}: ${r.stdout}${r.stderr}`);
    assert.ok(r.stderr.includes(`--host ${JSON.stringify(bad)} is not a DNS name or an IP address`), r.stderr);
    assert.equal(existsSync(dir), false, 'nothing written');
  }
});

test('certs: bad usage exits 2', () => {
  assert.equal(run('certs').code, 2);
  assert.equal(run('certs', join(tmp, 'x'), '--alg', 'dsa').code, 2);
});

test('fingerprint matches node:crypto fingerprint256, one line per certificate with its subject', () => {
  const r = run('fingerprint', join(certs, 'alice.pem'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `sha256:${fingerprintOf(join(certs, 'alice.pem'))}  CN=alice, O=mtlsgate demo`);

  const chain = join(tmp, 'chain.pem');
  writeFileSync(chain, readFileSync(join(certs, 'bob.pem'), 'utf8') + readFileSync(join(certs, 'ca.pem'), 'utf8'));
  const two = run('fingerprint', chain);
  assert.equal(two.code, 0, two.stderr);
  const lines = two.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.ok(lines[0].startsWith(`sha256:${fingerprintOf(join(certs, 'bob.pem'))}  CN=bob`));
  assert.ok(lines[1].startsWith(`sha256:${fingerprintOf(join(certs, 'ca.pem'))}  CN=mtlsgate demo CA`));
  assert.match(lines[1], /\[CA\]/);

  const json = JSON.parse(run('fingerprint', '--format', 'json', join(certs, 'alice.pem')).stdout);
  assert.equal(json.certificates[0].fingerprint, `sha256:${fingerprintOf(join(certs, 'alice.pem'))}`);
});

test('fingerprint: a file without a certificate exits 1, an unreadable one or no file 2, with a clear message', () => {
  const key = run('fingerprint', join(certs, 'alice-key.pem'));
  assert.equal(key.code, 1);
  assert.match(key.stderr, /holds no certificate \(it holds a private key/);
  assert.equal(key.stdout, '');
  const missing = run('fingerprint', join(tmp, 'nope.pem'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read .*nope\.pem: ENOENT/);
  assert.equal(run('fingerprint').code, 2);
});

test('token: 32 random bytes base64url, token_sha256 = hex SHA-256 of its UTF-8 bytes', () => {
  const r = run('token');
  assert.equal(r.code, 0, r.stderr);
  const token = /^token: (\S+)$/m.exec(r.stdout)?.[1];
  const hash = /^token_sha256: (\S+)$/m.exec(r.stdout)?.[1];
  assert.ok(token && hash, r.stdout);
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(Buffer.from(token, 'base64url').length, 32);
  assert.equal(hash, createHash('sha256').update(token, 'utf8').digest('hex'));

  const j = JSON.parse(run('token', '--format', 'json').stdout);
  assert.equal(j.token_sha256, createHash('sha256').update(j.token, 'utf8').digest('hex'));
  assert.notEqual(j.token, token, 'a new token each time');
  assert.match(run('token', '--help').stdout, /SHA-256 of the token string's UTF-8 bytes/);
});

/** Compiles a copy of examples/ (with the certificates made above) through the CLI, optionally edited. */
function compileExamples(name: string, edit?: (logistics: string) => string): string {
  const examples = join(import.meta.dirname, '..', 'examples');
  const cfg = join(tmp, name);
  cpSync(examples, cfg, { recursive: true, filter: (src) => !/^(certs|keys[/\\]portal)([/\\]|$)/.test(relative(examples, src)) });
  cpSync(certs, join(cfg, 'certs'), { recursive: true });
  if (edit) {
    const file = join(cfg, 'apis', 'logistics.yaml');
    writeFileSync(file, edit(readFileSync(file, 'utf8')));
  }
  const out = join(tmp, `${name}.json`);
  const r = run('compile', cfg, '-o', out);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return out;
}

test('diff: names the revoked certificate and its API; json parses; identical says "no changes"', () => {
  const partner = fingerprintOf(join(certs, 'partner-a.pem'));
  const oldPath = compileExamples('old');
  const newPath = compileExamples('new', (yaml) => yaml.replace('  - ../certs/partner-a.pem\n', ''));

  const text = run('diff', oldPath, newPath);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`\\n  logistics\\n    - lost +certificate sha256:${partner} \\(no key\\): pinned on the API\\n`));
  assert.ok(!text.stdout.includes('partner-reports'), 'partner-a keeps its pin on partner-reports: not listed');
  assert.match(text.stdout, /~ logistics: client_certificates \+0 -1/);

  const json = run('diff', oldPath, newPath, '--format', 'json');
  assert.equal(json.code, 0, json.stderr);
  const d = JSON.parse(json.stdout);
  assert.equal(d.identical, false);
  assert.deepEqual(d.access, [{ api: 'logistics', gained: [], lost: [{ kind: 'pinned_certificate', fingerprint: partner, key: null }] }]);

  const same = run('diff', oldPath, oldPath);
  assert.equal(same.code, 0);
  assert.match(same.stdout, /no changes/);
  assert.equal(JSON.parse(run('diff', oldPath, oldPath, '--format', 'json').stdout).identical, true);
});

test('diff: unreadable or invalid bundles exit 2 with the loader message', () => {
  const good = compileExamples('good');
  const edited = join(tmp, 'edited.json');
  writeFileSync(edited, readFileSync(good, 'utf8').replace('"Logistics"', '"L0gistics"'));
  const r = run('diff', good, edited);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /edited\.json: bundle digest mismatch/);
  const notBundle = join(tmp, 'not-bundle.json');
  writeFileSync(notBundle, '{"hello": 1}');
  assert.match(run('diff', notBundle, good).stderr, /not an mtlsgate bundle/);
  const missing = run('diff', join(tmp, 'missing.json'), good);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read .*missing\.json/);
  assert.equal(run('diff', good).code, 2);
  assert.equal(run('diff', good, good, '--format', 'yaml').code, 2);
});
