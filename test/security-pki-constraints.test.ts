// Session 10 red team, docs/security.md item 26: what RFC 5280 path validation refuses beyond
// validity, cA, keyCertSign and pathLen (item 6). A PKI made with the openssl CLI, as an operator
// makes one: a root the config trusts, a tenant's intermediate under name constraints
// (permitted .b.example.com for DNS, URI hosts and email, excluded secret.b.example.com), an
// intermediate for server certificates only (extendedKeyUsage serverAuth), a leaf with a
// critical extension nobody processes. Every refusal below was an admission before: the tenant's
// intermediate minted the other tenant's names (by SAN and by CN) and curl was that tenant's key.
// Each verdict is also `openssl verify -purpose sslclient`'s, so the gateway and OpenSSL agree.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createCa, signingAlgorithm } from '../cli/pki.ts';
import { ClientIdentity } from '../runtime/identity.ts';
import { curl, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { closeGatewayTest, gatewayOnConfig, startPkiAndEcho } from './helpers/config-gateway.ts';
import { type OpensslClient, opensslClient, opensslIssue, opensslRootCa } from './helpers/openssl-pki.ts';

const CA_EXTENSIONS = 'basicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign, cRLSign';
const TENANT_B = `${CA_EXTENSIONS}
nameConstraints = critical, permitted;DNS:.b.example.com, permitted;URI:.b.example.com, permitted;email:.b.example.com, excluded;DNS:secret.b.example.com`;
const SERVER_ONLY = `${CA_EXTENSIONS}\nextendedKeyUsage = serverAuth`;
const LEAF = 'basicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth';
const UNKNOWN_CRITICAL = `${LEAF}\n1.3.6.1.4.1.55555.1 = critical, ASN1:UTF8String:must be understood`;

describe('path validation: name constraints, critical extensions, the purpose of every CA', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  let dir: string;
  const clients: Record<string, OpensslClient> = {};

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    dir = mkdtempSync(join(tmpdir(), 'mtlsgate-pki-nc-'));
    opensslRootCa(dir, 'Root', 30);
    let serial = 4096;
    const issue = (name: string, issuer: string, extensions: string, subject: string, san?: string) =>
      opensslIssue(dir, name, issuer, subject, san === undefined ? extensions : `${extensions}\nsubjectAltName = ${san}`, ++serial);
    const client = (name: string, ...above: string[]) => {
      clients[name] = opensslClient(dir, name, ...above);
    };
    issue('tenant-b', 'ca', TENANT_B, '/CN=Tenant B issuing CA');
    issue('server-only', 'ca', SERVER_ONLY, '/CN=Servers only CA');
    // The tenant's own names: admitted.
    issue('b-ok', 'tenant-b', LEAF, '/CN=svc.b.example.com', 'DNS:svc.b.example.com, URI:spiffe://svc.b.example.com/api, email:ops@svc.b.example.com');
    // Another tenant's names, minted under the tenant's constrained CA.
    issue('b-as-a-dns', 'tenant-b', LEAF, '/CN=b-as-a-dns', 'DNS:api.a.example.com');
    issue('b-as-a-cn', 'tenant-b', LEAF, '/CN=api.a.example.com');
    issue('b-as-a-uri', 'tenant-b', LEAF, '/CN=b-as-a-uri', 'URI:spiffe://a.example.com/payments');
    issue('b-as-a-email', 'tenant-b', LEAF, '/CN=b-as-a-email', 'email:ops@a.example.com');
    issue('b-excluded', 'tenant-b', LEAF, '/CN=b-excluded', 'DNS:secret.b.example.com');
    // A client certificate under a CA restricted to server certificates.
    issue('under-server-only', 'server-only', LEAF, '/CN=under-server-only', 'DNS:tools.example.com');
    // A leaf whose critical extension no verifier here processes.
    issue('unknown-critical', 'ca', UNKNOWN_CRITICAL, '/CN=unknown-critical', 'DNS:tools.example.com');
    for (const name of ['b-ok', 'b-as-a-dns', 'b-as-a-cn', 'b-as-a-uri', 'b-as-a-email', 'b-excluded']) client(name, 'tenant-b');
    client('under-server-only', 'server-only');
    client('unknown-critical');
    // The tenant's issuing CA presented as a client certificate (keyUsage keyCertSign only).
    client('tenant-b');

    const matchKey = (id: string, field: string) => `kind: key\nid: ${id}\ncertificate_match:\n  issuer: ca.pem\n  ${field}\naccess_rights:\n  dyn: {}\n---\n`;
    writeFileSync(
      join(dir, 'config.yaml'),
      [
        `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${echo.url}\nauth:\n  use_certificate: true\n---\n`,
        `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\n`,
        matchKey('b', 'san_dns: svc.b.example.com'),
        matchKey('a-dns', 'san_dns: api.a.example.com'),
        matchKey('a-cn', 'subject_cn: api.a.example.com'),
        matchKey('a-uri', 'san_uri: spiffe://a.example.com/payments'),
        matchKey('a-email', 'san_email: ops@a.example.com'),
        matchKey('b-secret', 'san_dns: secret.b.example.com'),
      ].join(''),
    );
    gw = await gatewayOnConfig(pki, dir);
  });

  after(async () => {
    await closeGatewayTest({ gw, echo, cleanup, dirs: [dir] });
  });

  it("a tenant's name-constrained CA cannot mint another tenant's DNS name, CN, URI or email; its own names pass", async () => {
    const ok = await curl(pki, gw.port, '/dyn/x', { client: clients['b-ok'] });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(gw.records.at(-1)?.key, 'b');
    assert.equal(clients['b-ok'].opensslOk, true);
    for (const name of ['b-as-a-dns', 'b-as-a-cn', 'b-as-a-uri', 'b-as-a-email', 'b-excluded']) {
      const r = await curl(pki, gw.port, '/dyn/x', { client: clients[name] });
      assert.deepEqual([r.status, r.json.code, gw.records.at(-1)?.key ?? null], [401, 'auth.cert_not_found', null], `${name}: ${r.body}`);
      assert.equal(clients[name].opensslOk, false, `openssl verify agrees on ${name}`);
      const any = await curl(pki, gw.port, '/ca/x', { client: clients[name] });
      assert.deepEqual([any.status, any.json.code], [403, 'mtls.cert_not_allowed'], `${name} on a CA entry`);
    }
  });

  it('a CA whose extendedKeyUsage is serverAuth only issues no client certificate', async () => {
    const r = await curl(pki, gw.port, '/ca/x', { client: clients['under-server-only'] });
    assert.deepEqual([r.status, r.json.code], [403, 'mtls.cert_not_allowed']);
    assert.equal(clients['under-server-only'].opensslOk, false);
  });

  it('a critical extension nobody processes fails the path', async () => {
    const r = await curl(pki, gw.port, '/ca/x', { client: clients['unknown-critical'] });
    assert.deepEqual([r.status, r.json.code], [403, 'mtls.cert_not_allowed']);
    assert.equal(clients['unknown-critical'].opensslOk, false);
  });

  it('a CA certificate (keyUsage keyCertSign only) is not a client certificate', async () => {
    const r = await curl(pki, gw.port, '/ca/x', { client: clients['tenant-b'] });
    assert.deepEqual([r.status, r.json.code], [403, 'mtls.cert_not_client']);
    assert.equal(clients['tenant-b'].opensslOk, false);
  });

  it('a certificate that carries an extension twice fails the path (judged by the runtime identity: curl will not send it)', async () => {
    const root = await createCa('duplicates');
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    /** A leaf under `root` with these subjectAltName extensions, PEM. */
    const leafWith = async (serialNumber: string, sans: x509.SubjectAlternativeNameExtension[]) => {
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber,
        subject: `CN=leaf ${serialNumber}`,
        issuer: root.cert.subject,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 86_400_000),
        signingAlgorithm: signingAlgorithm('ec'),
        publicKey: keys.publicKey,
        signingKey: root.keys.privateKey,
        extensions: [new x509.BasicConstraintsExtension(false, undefined, true), ...sans],
      });
      return `${cert.toString('pem')}\n`;
    };
    const dns = (value: string) => ({ type: 'dns' as const, value });
    const twice = await leafWith('0123', [
      new x509.SubjectAlternativeNameExtension([dns('svc.b.example.com')]),
      new x509.SubjectAlternativeNameExtension([dns('api.a.example.com')]),
    ]);
    // curl (OpenSSL 3) refuses to load such a certificate as its own, so no ordinary client can
    // send it: the runtime's identity, as the gateway builds it from a TLS connection, judges it.
    const verify = spawnSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', pki.file('dup-root.pem', root.certPem), pki.file('twice.pem', twice)]);
    assert.notEqual(verify.status, 0, 'openssl verify refuses it too');
    const trusted = { fingerprint: root.fingerprint, cert: new X509Certificate(root.certPem) };
    assert.equal(new ClientIdentity(new X509Certificate(twice), []).issuedBy(trusted, Date.now()), false);
    // The same names in one extension chain.
    const once = await leafWith('0124', [new x509.SubjectAlternativeNameExtension([dns('svc.b.example.com'), dns('api.a.example.com')])]);
    assert.equal(new ClientIdentity(new X509Certificate(once), []).issuedBy(trusted, Date.now()), true);
  });
});
