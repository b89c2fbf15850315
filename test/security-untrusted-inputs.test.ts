// Inputs an attacker writes, attacked (session 16, docs/security.md section 55): a certificate
// with a negative serial revoked by its CA's CRL (curl against a gateway compiled from the config),
// YAML files built to exhaust the compiler's memory through its diagnostics or the full YAML
// parser, and bytes YAML forbids.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certificateSerial, parseCrl } from '../bundle/crl.ts';
import { compileDir } from '../compiler/index.ts';
import { closeGatewayTest, gatewayOnConfig, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa, type OpensslLeaf, opensslIssue } from './helpers/openssl-pki.ts';

const LEAF = 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth';

describe('a certificate with a negative serial is revoked by the CRL that lists it', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let ca: OpensslCa;
  let gw: TestGateway;
  let dir: string;
  const leaf: Record<string, OpensslLeaf> = {};

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    ca = createOpensslCa('Negative Serial CA');
    // openssl x509 -set_serial -5 writes the INTEGER 0xFB; node:crypto reads it back as "-05".
    leaf.neg = opensslIssue(ca.dir, 'neg', 'ca', '/CN=neg', LEAF, -5);
    leaf.big = opensslIssue(ca.dir, 'big', 'ca', '/CN=big', LEAF, -70000);
    leaf.sibling = opensslIssue(ca.dir, 'sibling', 'ca', '/CN=sibling', LEAF, 7);
    ca.revoke(leaf.neg);
    ca.revoke(leaf.big);
    const crl = ca.gencrl();
    dir = mkdtempSync(join(tmpdir(), 'mtlsgate-neg-serial-'));
    writeFileSync(join(dir, 'ca.pem'), ca.caPem);
    writeFileSync(join(dir, 'internal.crl'), crl);
    const key = (id: string) => `kind: key\nid: ${id}\ncertificate_match:\n  issuer: ca.pem\n  subject_cn: ${id}\naccess_rights:\n  dyn: {}\n---\n`;
    writeFileSync(
      join(dir, 'config.yaml'),
      [
        `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${echo.url}\nauth:\n  use_certificate: true\n---\n`,
        `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\n`,
        key('neg'),
        key('big'),
        key('sibling'),
        'kind: revocation\nid: internal\ncrl: [internal.crl]\n',
      ].join(''),
    );
    gw = await gatewayOnConfig(pki, dir);
  });
  after(async () => {
    await closeGatewayTest({ gw, echo, cleanup, dirs: [dir] });
    ca?.cleanup();
  });

  it('refused with 403 mtls.cert_revoked on a key and on a CA entry; the sibling passes', async () => {
    for (const name of ['neg', 'big']) {
      for (const path of ['/dyn/x', '/ca/x']) {
        const r = await curl(pki, gw.port, path, { client: { cert: leaf[name].cert, key: leaf[name].key } });
        assert.deepEqual([r.status, r.json.code], [403, 'mtls.cert_revoked'], `${name} ${path}`);
      }
    }
    for (const path of ['/dyn/x', '/ca/x']) {
      const r = await curl(pki, gw.port, path, { client: { cert: leaf.sibling.cert, key: leaf.sibling.key } });
      assert.equal(r.status, 200, path);
    }
  });

  it('the serial a certificate is looked up by is its CRL entry, byte for byte (two’s complement)', () => {
    const crl = parseCrl(Buffer.from(ca.gencrl()));
    assert.deepEqual(crl.serials.sort(), [certificateSerial('-05'), certificateSerial('-011170')].sort());
    assert.deepEqual(['-05', '-80', '-81', '-FF', '-0100', '-011170', '05', '00FB', '-00'].map(certificateSerial), [
      'fb',
      '80',
      'ff7f',
      'ff01',
      'ff00',
      'feee90',
      '5',
      'fb',
      '0',
    ]);
  });
});

describe('YAML files built to exhaust the compiler', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const configDir = (files: Record<string, string>): string => {
    const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-yaml-bound-'));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    return dir;
  };
  const API = 'kind: api\nid: a\nproxy:\n  listen_path: /a/\n  target_url: http://127.0.0.1:1\nuse_keyless: true\n---\n';

  it('one key written 50,000 times: 1,000 diagnostics kept, one more counts the rest and stays an error', async () => {
    const dir = configDir({ 'api.yaml': API, 'dup.yaml': `kind: policy\nid: p\naccess_rights:\n${'  a: {}\n'.repeat(50_000)}` });
    const r = await compileDir(dir);
    const ofFile = r.diagnostics.filter((d) => d.file === 'dup.yaml');
    assert.equal(ofFile.length, 1_001);
    const rest = ofFile.find((d) => /not shown/.test(d.message));
    assert.ok(rest, 'one diagnostic counts those not shown');
    assert.equal(rest.severity, 'error');
    assert.match(
      rest.message,
      /^48999 more errors and 0 more warnings in this file are not shown \(at most 1000 a file are kept\); the first here: E_YAML_DUPLICATE_KEY duplicate key "a"/,
    );
    assert.equal(r.bundle, null);
  });

  it('a document of a million values is refused where it starts, in bounded time and memory', async () => {
    const block = `kind: policy\nid: p\naccess_rights:\n${Array.from({ length: 1_000_000 }, (_, i) => `  k${i}: {}\n`).join('')}`;
    const flowList = `kind: policy\nid: q\nv: [${'1,'.repeat(1_000_000)}]\n`;
    const started = performance.now();
    const r = await compileDir(configDir({ 'api.yaml': API, 'block.yaml': block, 'list.yaml': flowList }));
    const ms = performance.now() - started;
    const tooLarge = r.diagnostics.filter((d) => d.code === 'E_YAML_TOO_LARGE').map((d) => `${d.file}:${d.line}:${d.col}`);
    assert.deepEqual(tooLarge.sort(), ['block.yaml:1:1', 'list.yaml:3:4']);
    // Before: both were read whole (1,000,000 values each) and checked by the schema: not done in 150 s on main.
    assert.ok(ms < 15_000, `${ms} ms`);
  });

  it('a file outside the fast subset past 4 MiB is refused at 1:1 before the full YAML parser holds it', async () => {
    const flowMap = `kind: policy\nid: p\naccess_rights: {${Array.from({ length: 400_000 }, (_, i) => `k${i}: {}`).join(', ')}}\n`;
    assert.ok(flowMap.length > 4 * 1024 * 1024);
    const started = performance.now();
    const r = await compileDir(configDir({ 'api.yaml': API, 'flow.yaml': flowMap }));
    const ms = performance.now() - started;
    const d = r.diagnostics.find((x) => x.file === 'flow.yaml');
    assert.deepEqual([d?.code, d?.line, d?.col], ['E_YAML_TOO_LARGE', 1, 1]);
    assert.match(d!.message, /outside the plain subset .* at most 4194304 \(4 MiB\) a file; write it in block style or split it/);
    // Before: the yaml library read it: not done in 150 s on main (session 16, a shared 2-core machine).
    assert.ok(ms < 10_000, `${ms} ms`);
  });
  it('a NUL or another control byte, and old Mac line endings, are named where they stand', async () => {
    const r = await compileDir(
      configDir({
        'api.yaml': API,
        'nul.yaml': 'kind: policy\nid: p\n\u0000\n',
        'esc.yaml': 'kind: policy\nid: p\nname: a\u001b[31mb\n',
        'cr.yaml': 'kind: policy\rid: p\r',
      }),
    );
    const said = Object.fromEntries(r.diagnostics.map((d) => [d.file, `${d.code} ${d.line}:${d.col} ${d.message}`]));
    assert.match(said['nul.yaml'], /^E_YAML_SYNTAX 3:1 control character U\+0000 is not allowed in a YAML file/);
    assert.match(said['esc.yaml'], /^E_YAML_SYNTAX 3:8 control character U\+001B is not allowed/);
    assert.match(said['cr.yaml'], /^E_YAML_SYNTAX 1:13 a carriage return not followed by a line feed \(old Mac line endings\)/);
  });
});
