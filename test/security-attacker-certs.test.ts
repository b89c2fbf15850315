// Session 17 red team, docs/security.md item 59: subject identities an attacker writes into the
// certificates it gets issued, and name constraints on an intermediate for san_uri/san_dns
// identity. A PKI made with the openssl CLI, as an operator makes one: a root the config
// trusts; under it an intermediate constrained to the trust domain corp.example (permitted
// DNS:corp.example and URI:corp.example), and one constrained for DNS names only. Every client
// is curl with its own leaf; every verdict on a name constraint is also `openssl verify`'s.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BundleError } from '../bundle/bundle-error.ts';
import { certFacts } from '../cert/cert-facts.ts';
import { compileDir } from '../compiler/index.ts';
import { CONTENT_MARK } from '../bundle/header.ts';
import { loadBundle } from '../bundle/read.ts';
import { KEY_ID, MAX_KEY_ID_LENGTH } from '../bundle/shape-checks.ts';
import { buildCompactSnapshot, buildSnapshot } from '../runtime/snapshot.ts';
import { BundleStore } from '../runtime/store.ts';
import { bundleOfContentBytes, serializeBundle } from '../bundle/write.ts';
import { bundleContent } from './helpers/bundle-builder.ts';
import { curl, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { closeGatewayTest, gatewayOnConfig, startPkiAndEcho } from './helpers/config-gateway.ts';
import { type OpensslClient, opensslClient, opensslIssue, opensslRootCa } from './helpers/openssl-pki.ts';

const CA_EXTENSIONS = 'basicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign, cRLSign';
/** The trust domain corp.example: DNS names in it and below it, URIs whose host is it or below it. */
const TRUST_DOMAIN = `${CA_EXTENSIONS}\nnameConstraints = critical, permitted;DNS:corp.example, permitted;URI:corp.example, permitted;URI:.corp.example`;
/** Constrained for DNS names only: RFC 5280 leaves URIs unbounded (a constraint binds its own form). */
const DNS_ONLY = `${CA_EXTENSIONS}\nnameConstraints = critical, permitted;DNS:corp.example`;
/**
 * Made once with openssl (valid for 100 years): a P-256 root; under it an intermediate with an
 * RSA key of 16,384 bits; under that a P-256 leaf (and its key); and a self-signed RSA-16384 root.
 * Only the leaf's key is kept: generating a 16,384-bit key takes minutes.
 */
const BIG_KEYS = join(import.meta.dirname, 'fixtures', 'big-keys');
const LEAF = 'basicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth';

describe('subject identities an attacker writes; name constraints on an intermediate for san identity', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  let dir: string;
  const clients: Record<string, OpensslClient> = {};

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    dir = mkdtempSync(join(tmpdir(), 'mtlsgate-attacker-certs-'));
    opensslRootCa(dir, 'Root', 30);
    let serial = 8192;
    const issue = (name: string, issuer: string, extensions: string, san?: string) =>
      opensslIssue(dir, name, issuer, `/CN=${name}`, san === undefined ? extensions : `${extensions}\nsubjectAltName = ${san}`, ++serial);
    const client = (name: string, ...above: string[]) => {
      clients[name] = opensslClient(dir, name, ...above);
    };
    issue('domain-ca', 'ca', TRUST_DOMAIN);
    issue('dns-only-ca', 'ca', DNS_ONLY);
    const underDomain: Record<string, string> = {
      'in-domain': 'URI:spiffe://corp.example/ns/pay/sa/api',
      'other-host': 'URI:spiffe://other/ns/pay/sa/api',
      'other-dns': 'DNS:evil.other',
      'upper-host': 'URI:spiffe://OTHER/ns/pay/sa/api',
      userinfo: 'URI:spiffe://other@corp.example/ns/pay/sa/api',
      'dot-host': 'URI:spiffe://other./ns/pay/sa/api',
      'dot-dns': 'DNS:evil.other.',
      'pct-host': 'URI:spiffe://oth%65r/ns/pay/sa/api',
      'port-host': 'URI:spiffe://other:443/ns/pay/sa/api',
      // WHATWG URL (what an upstream reading XFCC's URI= may use) reads the host as evil.other.
      'backslash-host': 'URI:https://evil.other\\\\.corp.example/x',
    };
    /** Leaves by name and subjectAltName, issued by `issuer` and sent with the certificates `above`. */
    const leaves = (names: Record<string, string>, issuer: string, ...above: string[]) => {
      for (const [name, san] of Object.entries(names)) {
        issue(name, issuer, LEAF, san);
        client(name, ...above);
      }
    };
    leaves(underDomain, 'domain-ca', 'domain-ca');
    // A NUL inside a DNS name (openssl's config cannot write one: the SAN as DER). A C string ends at it.
    const nulName = Buffer.from('evil.other\0.corp.example', 'latin1');
    const nulSan = Buffer.concat([Buffer.from([0x30, nulName.length + 2, 0x82, nulName.length]), nulName]).toString('hex');
    issue('nul-dns', 'domain-ca', `${LEAF}\n2.5.29.17 = DER:${nulSan}`);
    client('nul-dns', 'domain-ca');
    leaves({ 'dns-only-uri': 'URI:spiffe://other/ns/pay/sa/api' }, 'dns-only-ca', 'dns-only-ca');
    // Straight under the root: names the root's CA issues as asked.
    const underRoot: Record<string, string> = {
      'two-uris': 'URI:spiffe://corp.example/ns/pay/sa/api, URI:https://evil.example/x',
      'two-spiffe': 'URI:spiffe://corp.example/ns/web/sa/api, URI:spiffe://corp.example/ns/ops/sa/api',
      'wildcard-dns': 'DNS:*.apps.corp.example',
      'wildcard-uri': 'URI:spiffe://corp.example/ns/*/sa/web',
      'upper-scheme': 'URI:SPIFFE://corp.example/ns/pay/sa/api',
      'pct-segment': 'URI:spiffe://corp.example/ns/pay%2Fments/sa/web',
      'root-userinfo': 'URI:spiffe://evil@corp.example/ns/pay/sa/api',
    };
    leaves(underRoot, 'ca');

    // A leaf of an RSA key of 8,200 bits (its key made once: a fixture), under the root.
    copyFileSync(join(BIG_KEYS, 'leaf-rsa8200-key.pem'), join(dir, 'huge-key-key.pem'));
    writeFileSync(join(dir, 'huge-key.ext'), `[ext]\n${LEAF}\nsubjectAltName = URI:spiffe://corp.example/ns/big/sa/api\n`);
    execFileSync('openssl', ['req', '-new', '-key', 'huge-key-key.pem', '-subj', '/CN=huge-key', '-out', 'huge-key.csr'], { cwd: dir });
    execFileSync(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        'huge-key.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca-key.pem',
        '-out',
        'huge-key.pem',
        '-days',
        '10',
        '-extfile',
        'huge-key.ext',
        '-extensions',
        'ext',
        '-set_serial',
        '7',
      ],
      { cwd: dir },
    );
    client('huge-key');
    copyFileSync(join(BIG_KEYS, 'root.pem'), join(dir, 'big-root.pem'));
    writeFileSync(join(dir, 'big-leaf-chain.pem'), ['leaf.pem', 'intermediate-rsa16384.pem'].map((f) => readFileSync(join(BIG_KEYS, f), 'utf8')).join(''));
    clients['big-intermediate'] = { cert: join(dir, 'big-leaf-chain.pem'), key: join(BIG_KEYS, 'leaf-key.pem'), opensslOk: true };

    const matchKey = (id: string, field: string) => `kind: key\nid: ${id}\ncertificate_match:\n  issuer: ca.pem\n  ${field}\naccess_rights:\n  dyn: {}\n---\n`;
    writeFileSync(
      join(dir, 'config.yaml'),
      [
        `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${echo.url}\nauth:\n  use_certificate: true\n---\n`,
        `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\n`,
        `kind: api\nid: big\nproxy:\n  listen_path: /big/\n  target_url: ${echo.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [big-root.pem]\n---\n`,
        `kind: key\nid: big-subject\ncertificate_match:\n  issuer: big-root.pem\n  subject_cn: leaf below RSA-16384\naccess_rights:\n  dyn: {}\n---\n`,
        matchKey('pay', 'san_uri: spiffe://corp.example/ns/pay/sa/api'),
        matchKey('other', 'san_uri: spiffe://other/ns/pay/sa/api'),
        matchKey('other-dns', 'san_dns: evil.other'),
        matchKey('web', 'san_uri: spiffe://corp.example/ns/*/sa/web'),
        matchKey('apps', 'san_dns: "*.apps.corp.example"'),
        matchKey('huge-key', 'san_uri: spiffe://corp.example/ns/big/sa/api'),
      ].join(''),
    );
    gw = await gatewayOnConfig(pki, dir);
  });

  after(async () => {
    await closeGatewayTest({ gw, echo, cleanup, dirs: [dir] });
  });

  /** The status and code curl with `name`'s chain gets on /ca/ (any leaf the root's path admits). */
  const onCaEntry = async (name: string) => {
    const r = await curl(pki, gw.port, '/ca/x', { client: clients[name] });
    return `${r.status} ${r.json.code ?? ''}`.trim();
  };

  /** The key curl with `name`'s chain is on /dyn/, or the refusal's code. */
  const who = async (name: string) => {
    const r = await curl(pki, gw.port, '/dyn/x', { client: clients[name] });
    return r.status === 200 ? `key ${gw.records.at(-1)?.key}` : `${r.status} ${r.json.code}`;
  };

  it('an intermediate constrained to corp.example mints no other host, by URI or DNS, however written', async () => {
    assert.equal(await who('in-domain'), 'key pay');
    assert.equal(clients['in-domain'].opensslOk, true);
    for (const name of ['other-host', 'other-dns', 'upper-host', 'userinfo', 'dot-host', 'dot-dns', 'pct-host', 'port-host']) {
      assert.equal(await who(name), '401 auth.cert_not_found', name);
      assert.equal(clients[name].opensslOk, false, `openssl verify agrees on ${name}`);
    }
  });

  it('under a constraint, a host or DNS name with a backslash or a NUL is no name it vouches for', async () => {
    assert.equal(await onCaEntry('in-domain'), '200');
    for (const name of ['backslash-host', 'nul-dns']) {
      assert.equal(await onCaEntry(name), '403 mtls.cert_not_allowed', name);
      assert.equal(await who(name), '401 auth.cert_not_found', name);
    }
  });

  it('an intermediate whose RSA key has more than 8,192 bits issues nothing: its signatures are never checked', async () => {
    const big = await curl(pki, gw.port, '/big/x', { client: clients['big-intermediate'] });
    assert.deepEqual([big.status, big.json.code], [403, 'mtls.cert_not_allowed']);
    assert.equal(await who('big-intermediate'), '401 auth.cert_not_found');
    const intermediate = new X509Certificate(readFileSync(join(BIG_KEYS, 'intermediate-rsa16384.pem')));
    assert.equal(certFacts(intermediate.raw).keyBits, 16384);
    assert.equal(intermediate.publicKey.asymmetricKeyDetails?.modulusLength, 16384);
  });

  it('a leaf whose RSA key has more than 8,192 bits is refused, on a CA entry and by a certificate_match rule, saying why', async () => {
    assert.equal(clients['huge-key'].opensslOk, true, 'openssl verify takes it');
    assert.equal(await onCaEntry('huge-key'), '403 mtls.cert_key_too_large');
    assert.equal(await who('huge-key'), '403 mtls.cert_key_too_large');
    assert.equal(await who('in-domain'), 'key pay');
  });

  it('a DNS-only constraint leaves URIs unbounded, as RFC 5280 and OpenSSL do', async () => {
    assert.equal(clients['dns-only-uri'].opensslOk, true);
    assert.equal(await who('dns-only-uri'), 'key other');
  });

  it('a SPIFFE ID rule matches only a leaf with exactly one URI SAN (an X.509-SVID)', async () => {
    assert.equal(await who('two-uris'), '401 auth.cert_not_found');
    assert.equal(await who('two-spiffe'), '401 auth.cert_not_found');
  });

  it('a * written in the certificate is no wildcard; case, percent-encoding and userinfo are other names', async () => {
    for (const name of ['wildcard-dns', 'wildcard-uri', 'upper-scheme', 'pct-segment', 'root-userinfo']) {
      assert.equal(await who(name), '401 auth.cert_not_found', name);
    }
  });
});

it('compile: a CA whose RSA key has more than 8,192 bits is E_CA_UNUSABLE at the entry, saying its size', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-big-ca-'));
  copyFileSync(join(BIG_KEYS, 'root-rsa16384.pem'), join(dir, 'root.pem'));
  writeFileSync(
    join(dir, 'api.yaml'),
    'kind: api\nid: a\nproxy:\n  listen_path: /a/\n  target_url: http://127.0.0.1:9\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [root.pem]\n',
  );
  const r = await compileDir(dir);
  const found = r.diagnostics.filter((d) => d.code === 'E_CA_UNUSABLE');
  assert.equal(found.length, 1, JSON.stringify(r.diagnostics));
  assert.match(found[0].message, /its public key has 16384 bits, more than 8192/);
  assert.equal(`${found[0].line}:${found[0].col}`, '8:23');
});

describe("a bundle's JSON: names that are Object.prototype's", () => {
  /** A bundle of one keyless API "a" at /a/ and a key, its content text edited by `edit`, with the digest recomputed. */
  const bundleEdited = (edit: (content: string) => string) => {
    const bytes = serializeBundle(
      bundleContent(
        [{ id: 'a', listen_path: '/a/', target_url: 'http://127.0.0.1:9', use_keyless: true }],
        [{ id: 'k', token_sha256: 'a'.repeat(64), access_rights: { a: { allowed_urls: null } } }],
      ),
    ).toString('utf8');
    const content = bytes.slice(bytes.indexOf(CONTENT_MARK) + CONTENT_MARK.length, bytes.lastIndexOf('}'));
    const edited = edit(content);
    assert.notEqual(edited, content, 'the edit applies');
    return bundleOfContentBytes([Buffer.from(edited, 'utf8')]).bytes;
  };

  it('a key id the compiler never writes is refused at load and at a reload, naming it; the last good bundle serves on', async () => {
    const good = bundleEdited((c) => c.replace('"ids":["k"]', '"ids":["k2"]'));
    const store = BundleStore.create(good, 'f', buildSnapshot);
    const viaWorker = BundleStore.create(good, 'f', buildSnapshot, { workerMinBytes: 0, buildCompact: buildCompactSnapshot });
    const cases: [string, string, RegExp][] = [
      ['empty', '', /content\.keys\.ids\[0\] is not a key id \(""\): one is 1 to 256 of a-z 0-9 \. _ -/],
      ['huge', 'k'.repeat(100_000), /content\.keys\.ids\[0\] is not a key id \(100000 characters, more than 256\)/],
      ['a control character', 'k\u001b[2J', /content\.keys\.ids\[0\] is not a key id \("k\\u001b\[2J"\)/],
      ['__proto__', '__proto__', /content\.keys\.ids\[0\] is not a key id \("__proto__"\)/],
      ['upper case', 'K', /content\.keys\.ids\[0\] is not a key id \("K"\)/],
    ];
    for (const [what, id, message] of cases) {
      const bad = bundleEdited((c) => c.replace('"ids":["k"]', `"ids":${JSON.stringify([id])}`));
      const r = store.reload(bad, 'f');
      assert.match(r.status === 'failed' ? r.error.message : JSON.stringify(r), message, what);
      const w = await viaWorker.reloadAsync(bad, 'f');
      assert.match(w.status === 'failed' ? w.error.message : JSON.stringify(w), message, `${what} (the reload worker)`);
      assert.ok(store.current().key('k2') && viaWorker.current().key('k2'), `${what}: the last good bundle serves on`);
    }
  });

  it('the key id the shape check takes is the one the schema takes', () => {
    const id = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'schema', 'policy.schema.json'), 'utf8')).$defs.id;
    assert.deepEqual([id.pattern, id.maxLength], [KEY_ID.source, MAX_KEY_ID_LENGTH]);
  });

  it('__proto__ as the API a route names, or the CA an API trusts, is missing, said as such at load', () => {
    const cases: [string, (c: string) => string, RegExp][] = [
      ['a route to __proto__', (c) => c.replace('"/a/":"a"', '"/a/":"__proto__"'), /content\.routes\.\*\.\/a\/ names an API missing from content\.apis/],
      [
        'an API trusting CA __proto__',
        (c) => c.replace('"client_cas":[]', '"client_cas":["__proto__"]'),
        /content\.apis\.a\.client_cas names CA __proto__ missing from content\.cas/,
      ],
      [
        'a CRL under CA __proto__',
        (c) => c.replace('"crls":{}', '"crls":{"__proto__":{"serials":[],"next_update":null,"sources":[]}}'),
        /content\.revocation\.crls\.__proto__ names CA __proto__ missing from content\.cas/,
      ],
    ];
    for (const [what, edit, message] of cases) {
      assert.throws(
        () => loadBundle(bundleEdited(edit)),
        (err: Error) => err instanceof BundleError && message.test(err.message),
        what,
      );
    }
  });
});
