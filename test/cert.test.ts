// cert/: the one certificate toolkit (fingerprint, pins, private-key detection, PEM/DER, subject
// lines), and the pin forms users paste accepted wherever a sha256 pin is: an API's
// client_certificates and a key's certificate(s). OpenSSL's own output is the reference.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprintOf, formatPin, parsePin } from '../cert/fingerprint.ts';
import { containsPrivateKey } from '../cert/private-key.ts';
import { certificateDers, derToPem } from '../cert/read.ts';
import { oneLineName, subjectLine } from '../cert/subject.ts';
import { createCa, issueCert, type Issued } from '../cli/pki.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';

let ca: Issued;
let leaf: Issued;
let dir: string;
/** `openssl x509 -noout -fingerprint -sha256` of the leaf, exactly as printed (one line, no newline). */
let opensslLine: string;
before(async () => {
  ca = await createCa('cert toolkit CA');
  leaf = await issueCert(ca, 'leaf');
  dir = mkdtempSync(join(tmpdir(), 'mtlsgate-cert-'));
  writeFileSync(join(dir, 'leaf.pem'), leaf.certPem);
  opensslLine = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', join(dir, 'leaf.pem')], { encoding: 'utf8' }).trim();
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  removeConfigs();
});

test('fingerprintOf is the SHA-256 of the DER, as node:crypto and OpenSSL compute it', () => {
  const x = new X509Certificate(leaf.certPem);
  assert.equal(fingerprintOf(x.raw), x.fingerprint256.replaceAll(':', '').toLowerCase());
  assert.equal(fingerprintOf(x.raw), leaf.fingerprint);
  assert.match(opensslLine, /^sha256 Fingerprint=|^SHA256 Fingerprint=/i);
  assert.equal(opensslLine.split('=')[1].replaceAll(':', '').toLowerCase(), leaf.fingerprint);
  assert.equal(formatPin(leaf.fingerprint), `sha256:${leaf.fingerprint}`);
});

test('parsePin accepts sha256:<hex> and every form OpenSSL prints, and nothing else', () => {
  const fp = leaf.fingerprint;
  const colons = fp.toUpperCase().match(/../g)!.join(':');
  for (const form of [
    `sha256:${fp}`,
    `sha256:${fp.toUpperCase()}`,
    opensslLine,
    colons,
    colons.toLowerCase(),
    `sha256 Fingerprint=${colons}`,
    `SHA256 Fingerprint=${colons}`,
    `  SHA256 Fingerprint=${colons}\n`,
    `sha256:${colons}`,
  ]) {
    assert.deepEqual(parsePin(form), { ok: true, fingerprint: fp }, form);
  }
  // Not pins at all: the caller reads them as paths or PEM.
  for (const other of ['certs/alice.pem', '../x.pem', leaf.certPem, 'C:/certs/a.pem', 'ab']) assert.equal(parsePin(other), null, other);
  // Pins with the wrong length or alphabet: a problem that says what is accepted.
  for (const bad of [
    `sha256:${fp.slice(2)}`,
    colons.slice(3),
    `SHA256 Fingerprint=${colons}:AB`,
    'sha256:xyz',
    `sha1 Fingerprint=${colons.slice(0, 59)}`.replace('sha1', 'sha256'),
  ]) {
    const r = parsePin(bad);
    assert.ok(r !== null && !r.ok, bad);
    assert.match(r.ok ? '' : r.problem, /is not a SHA-256 fingerprint \(32 bytes; got .*\): write sha256:<64 hex>/, bad);
  }
});

test('containsPrivateKey: every private key form, PEM or DER, and nothing that is not one', () => {
  const key = createPrivateKey(leaf.keyPem);
  const rsa = execFileSync('openssl', ['genrsa', '-traditional', '1024'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const sshDir = mkdtempSync(join(tmpdir(), 'mtlsgate-ssh-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(sshDir, 'id')]);
  const openssh = readFileSync(join(sshDir, 'id'), 'utf8');
  rmSync(sshDir, { recursive: true, force: true });
  const yes: Array<[string, string | Buffer]> = [
    ['PKCS#8 PEM', leaf.keyPem],
    ['certificate then key', leaf.certPem + leaf.keyPem],
    ['PKCS#1 RSA PEM', rsa],
    ['SEC1 EC PEM', key.export({ format: 'pem', type: 'sec1' }) as string],
    ['encrypted PKCS#8', key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'x' }) as string],
    ['OpenSSH', openssh],
    ['PuTTY', 'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n'],
    ['SSH2', '---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nabc\n---- END SSH2 ENCRYPTED PRIVATE KEY ----\n'],
    ['lower-cased armour', leaf.keyPem.toLowerCase()],
    ['a paste without its first line', leaf.keyPem.split('\n').slice(1).join('\n')],
    ['PKCS#8 DER bytes', key.export({ format: 'der', type: 'pkcs8' }) as Buffer],
    ['SEC1 DER bytes', key.export({ format: 'der', type: 'sec1' }) as Buffer],
    ['PEM as bytes', Buffer.from(leaf.keyPem)],
  ];
  for (const [what, input] of yes) assert.equal(containsPrivateKey(input), true, what);
  const no: Array<[string, string | Buffer]> = [
    ['certificate PEM', leaf.certPem],
    ['certificate DER', new X509Certificate(leaf.certPem).raw],
    ['prose', '# this file holds no private key, only the PUBLIC certificate\n' + leaf.certPem],
    ['empty', ''],
  ];
  for (const [what, input] of no) assert.equal(containsPrivateKey(input), false, what);
});

test('PEM/DER reading and writing round-trips, and subjects print on one line', () => {
  const der = new X509Certificate(leaf.certPem).raw;
  assert.deepEqual(certificateDers(leaf.certPem + leaf.keyPem + ca.certPem), [der, new X509Certificate(ca.certPem).raw]);
  assert.equal(derToPem(der), leaf.certPem);
  assert.equal(subjectLine(new X509Certificate(leaf.certPem)), 'CN=leaf, O=mtlsgate demo');
  assert.equal(oneLineName('CN=a\nO=b\n'), 'CN=a, O=b');
});

test('compile: an OpenSSL fingerprint line pins the same certificate as its file, in client_certificates and on keys', async () => {
  const colons = opensslLine.split('=')[1];
  const cfg = writeConfig({
    'leaf.pem': leaf.certPem,
    // The line exactly as OpenSSL prints it, unquoted in YAML, and the bare colon form.
    'a.yaml': `kind: api\nid: a\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n  - ${opensslLine}\nproxy:\n  listen_path: /a/\n  target_url: http://127.0.0.1:9000\n`,
    'b.yaml': `kind: api\nid: b\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [leaf.pem]\nproxy:\n  listen_path: /b/\n  target_url: http://127.0.0.1:9000\n`,
    'c.yaml': `kind: api\nid: c\nauth:\n  use_certificate: true\nproxy:\n  listen_path: /c/\n  target_url: http://127.0.0.1:9000\n`,
    'k.yaml': `kind: key\nid: k\ncertificate: ${colons}\naccess_rights:\n  c: {}\n`,
  });
  const r = await compileDir(cfg);
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
  const c = r.content!;
  assert.deepEqual(c.apis.a.client_certificates, [leaf.fingerprint]);
  assert.deepEqual(c.apis.a.client_certificates, c.apis.b.client_certificates);
  assert.deepEqual(c.keys.k.certificates, [leaf.fingerprint]);
  assert.deepEqual(c.index.certs[leaf.fingerprint], { apis: ['a', 'b'], key: 'k' });
});

test('compile: a pin of the wrong length is an error at the entry, naming the accepted forms', async () => {
  const short = opensslLine.slice(0, -3);
  const cfg = writeConfig({
    'a.yaml': `kind: api\nid: a\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n  - "${short}"\nproxy:\n  listen_path: /a/\n  target_url: http://127.0.0.1:9000\n`,
  });
  const r = await compileDir(cfg);
  const d = r.diagnostics.find((x) => x.code === 'E_FIELD_VALUE');
  assert.ok(d, JSON.stringify(r.diagnostics));
  assert.deepEqual([d.file, d.line, d.col], ['a.yaml', 6, 5]);
  assert.match(d.message, /client_certificates\[0\] ".*" (\(\d+ characters\) )?is not a SHA-256 fingerprint \(32 bytes; got 31 bytes\)/);
  assert.match(d.message, /openssl x509 -noout -fingerprint -sha256/);
});
