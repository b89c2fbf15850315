// Config features end to end: YAML -> `node dist/mtlsgate.mjs compile` -> `mtlsgate serve`
// (child process) -> curl with --cert/--key over loopback. Nothing here builds a bundle or an
// index by hand, so a compiler indexing bug shows up as a wrong answer to curl.
// Covered: CA entries in client_certificates, domain/SNI routing, allowed_urls with methods
// (matched without the query string), certificates that expire while served, and
// X-Forwarded-Client-Cert.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServerCert, issueCert, type DemoPki, type Issued } from '../cli/pki.ts';
import { compileYaml, curlE2E, recordingUpstream, serveBundle, type CurlOptions, type RecordingUpstream, type Served } from './helpers/e2e.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { CLI, demoPki, run } from './helpers/serve-fixtures.ts';

const HOSTS = ['localhost', 'pay.example.test', 'open.example.test', 'other.example.test'];
/** Certificates that expire this long after the test starts: valid at compile time, expired later. */
const SHORT_LIFE_MS = 25_000;

const t = tempDir('e2e-config');
let pki: DemoPki;
let upstream: RecordingUpstream;
let gw: Served;
let shortLived: Issued;
let shortLivedFromOtherCa: Issued;
let expiredFromOtherCa: Issued;

/** Writes a certificate and its key into the PKI directory as NAME.pem / NAME-key.pem. */
function writePair(name: string, c: Issued): void {
  writeFileSync(join(pki.dir, `${name}.pem`), c.certPem);
  writeFileSync(join(pki.dir, `${name}-key.pem`), c.keyPem);
}

const api = (lines: string[]) => `${lines.join('\n')}\n`;
/** The server certificate valid for every name in HOSTS. */
const hostsTls = () => ({ cert: join(pki.dir, 'hosts-server.pem'), key: join(pki.dir, 'hosts-server-key.pem') });

before(async () => {
  pki = await demoPki(t.dir);
  upstream = await recordingUpstream();
  const up = upstream.url;
  const server = await createServerCert(pki.ca, { dns: HOSTS });
  writePair('hosts-server', server);
  const now = Date.now();
  const lifetime = { notBefore: new Date(now - 3_600_000), notAfter: new Date(now + SHORT_LIFE_MS) };
  shortLived = await issueCert(pki.ca, 'short-lived', lifetime);
  writePair('short-lived', shortLived);
  shortLivedFromOtherCa = await issueCert(pki.otherCa, 'short-lived-partner', lifetime);
  writePair('short-lived-partner', shortLivedFromOtherCa);
  expiredFromOtherCa = await issueCert(pki.otherCa, 'expired-partner', { notBefore: new Date(now - 7_200_000), notAfter: new Date(now - 3_600_000) });
  writePair('expired-partner', expiredFromOtherCa);
  const cert = (name: string) => join(pki.dir, `${name}.pem`);

  const bundle = await compileYaml(t.dir, {
    // A CA entry: every leaf other-ca issued is admitted (stranger, the partner certificates).
    'apis/ca.yaml': api([
      'kind: api',
      'id: partners',
      'proxy:',
      '  listen_path: /partners/',
      `  target_url: ${up}/partners`,
      'use_keyless: true',
      'use_mutual_tls_auth: true',
      'client_certificates:',
      `  - ${cert('other-ca')}`,
    ]),
    'apis/pinned.yaml': api([
      'kind: api',
      'id: pinned',
      'proxy:',
      '  listen_path: /pinned/',
      `  target_url: ${up}/pinned`,
      'use_keyless: true',
      'use_mutual_tls_auth: true',
      'client_certificates:',
      `  - ${cert('partner-a')}`,
      `  - ${cert('short-lived')}`,
    ]),
    // allowed_urls with methods, on a dynamic mTLS API.
    'apis/orders.yaml': api(['kind: api', 'id: orders', 'proxy:', '  listen_path: /orders/', `  target_url: ${up}/orders`, 'auth:', '  use_certificate: true']),
    'policies/orders-clerk.yaml': api([
      'kind: policy',
      'id: orders-clerk',
      'access_rights:',
      '  orders:',
      '    allowed_urls:',
      '      - url: ^/items(/\\d+)?$',
      '        methods: [GET]',
      '      - url: ^/items/\\d+/notes$',
      '        methods: [POST, put]',
      '      - url: ^/report$',
    ]),
    'keys/bob.yaml': api(['kind: key', 'id: bob', `certificate: ${cert('bob')}`, 'apply_policies: [orders-clerk]']),
    'keys/short.yaml': api(['kind: key', 'id: short', `certificate: ${cert('short-lived')}`, 'access_rights:', '  orders: {}']),
    // X-Forwarded-Client-Cert: set from the verified leaf with forward_client_cert, else removed.
    'apis/xfcc.yaml': api([
      'kind: api',
      'id: xfcc',
      'proxy:',
      '  listen_path: /xfcc/',
      `  target_url: ${up}/xfcc`,
      'use_keyless: true',
      'use_mutual_tls_auth: true',
      'forward_client_cert: true',
      'client_certificates:',
      `  - ${cert('alice')}`,
      `  - ${cert('other-ca')}`,
    ]),
    'apis/no-xfcc.yaml': api([
      'kind: api',
      'id: no-xfcc',
      'proxy:',
      '  listen_path: /no-xfcc/',
      `  target_url: ${up}/no-xfcc`,
      'use_keyless: true',
      'use_mutual_tls_auth: true',
      'client_certificates:',
      `  - ${cert('alice')}`,
    ]),
  });
  gw = await serveBundle(bundle, pki, [], hostsTls());
});

after(async () => {
  const stopped = await gw?.stop();
  await upstream?.close();
  t.cleanup();
  assert.deepEqual(stopped, { code: 0, signal: null }, 'serve drained and exited 0');
});

/** curl to HOST on the gateway's port (--resolve points HOST at 127.0.0.1: SNI and Host are HOST). */
function at(host: string, path: string, opts: CurlOptions = {}, on: Served = gw) {
  return curlE2E(`https://${host}:${on.port}${path}`, pki, { ...opts, extra: ['--resolve', `${host}:${on.port}:127.0.0.1`, ...(opts.extra ?? [])] });
}
/** The request the upstream saw last. */
const lastSeen = () => upstream.requests.at(-1)!;

describe('client_certificates with a CA entry', () => {
  test('a leaf the CA issued is admitted; a leaf of another CA is refused; no certificate is refused', async () => {
    const ok = await at('localhost', '/partners/x', { client: 'stranger' });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(lastSeen().url, '/partners/x');
    const other = await at('localhost', '/partners/x', { client: 'alice' });
    assert.equal(other.status, 403);
    assert.deepEqual(other.json(), { error: `Certificate with SHA256 ${pki.clients.alice.fingerprint} not allowed`, code: 'mtls.cert_not_allowed' });
    const none = await at('localhost', '/partners/x');
    assert.deepEqual([none.status, none.json().code], [403, 'mtls.cert_required']);
  });

  test('a leaf the CA issued that has already expired: mtls.cert_expired', async () => {
    const r = await at('localhost', '/partners/x', { client: 'expired-partner' });
    assert.deepEqual([r.status, r.json()], [403, { error: 'Certificate has expired', code: 'mtls.cert_expired' }]);
  });
});

describe('domain and SNI routing (a serve of its own: a domain-less mTLS API would make every host ask)', () => {
  let hosts: Served;
  before(async () => {
    const up = upstream.url;
    const cert = (name: string) => join(pki.dir, `${name}.pem`);
    const bundle = await compileYaml(
      join(t.dir, 'hosts'),
      {
        // Two hosts with their own "/" API, and a domain-less API for every host.
        'apis/pay.yaml': api([
          'kind: api',
          'id: pay',
          'domain: pay.example.test',
          'proxy:',
          '  listen_path: /',
          `  target_url: ${up}/pay`,
          'use_keyless: true',
          'use_mutual_tls_auth: true',
          'client_certificates:',
          `  - ${cert('partner-a')}`,
        ]),
        'apis/open.yaml': api([
          'kind: api',
          'id: open',
          'domain: open.example.test',
          'proxy:',
          '  listen_path: /',
          `  target_url: ${up}/open`,
          'use_keyless: true',
          // Set, but this host never asks for a certificate: nothing to forward.
          'forward_client_cert: true',
        ]),
        'apis/anyhost.yaml': api(['kind: api', 'id: anyhost', 'proxy:', '  listen_path: /anyhost/', `  target_url: ${up}/anyhost`, 'use_keyless: true']),
      },
      t.dir,
    );
    hosts = await serveBundle(bundle, pki, [], hostsTls());
  });
  after(async () => {
    assert.deepEqual(await hosts?.stop(), { code: 0, signal: null });
  });
  const on = (host: string, path: string, opts: CurlOptions = {}) => at(host, path, opts, hosts);

  test('each host reaches its own API first; the domain-less API answers where the host has none; else 404', async () => {
    const pay = await on('pay.example.test', '/charge?id=1', { client: 'partner-a' });
    assert.equal(pay.status, 200, pay.body);
    assert.equal(lastSeen().url, '/pay/charge?id=1');
    const open = await on('open.example.test', '/page');
    assert.equal(open.status, 200, open.body);
    assert.equal(lastSeen().url, '/open/page');
    // The host's own "/" wins over the domain-less /anyhost/.
    assert.equal((await on('open.example.test', '/anyhost/z')).status, 200);
    assert.equal(lastSeen().url, '/open/anyhost/z');
    for (const host of ['other.example.test', 'localhost']) {
      const any = await on(host, '/anyhost/z');
      assert.equal(any.status, 200, `${host}: ${any.body}`);
      assert.equal(lastSeen().url, '/anyhost/z', host);
      const unknown = await on(host, '/page');
      assert.deepEqual([unknown.status, unknown.json()], [404, { error: 'Not found', code: 'route.not_found' }], host);
    }
    // Host names are case-insensitive and may carry a trailing dot.
    assert.equal((await on('open.example.test', '/x', { headers: { host: `OPEN.Example.TEST.:${hosts.port}` } })).status, 200);
    assert.equal(lastSeen().url, '/open/x');
  });

  test('the static mTLS host refuses other certificates; the open host never asks for one', async () => {
    const mallory = await on('pay.example.test', '/charge', { client: 'mallory' });
    assert.deepEqual([mallory.status, mallory.json().code], [403, 'mtls.cert_not_allowed']);
    const none = await on('pay.example.test', '/charge');
    assert.deepEqual([none.status, none.json().code], [403, 'mtls.cert_required']);
    // curl offers alice's certificate, but open.example.test sends no CertificateRequest, so
    // the gateway never sees it: forward_client_cert has nothing to forward.
    const open = await on('open.example.test', '/page', { client: 'alice' });
    assert.equal(open.status, 200, open.body);
    assert.equal(lastSeen().url, '/open/page');
    assert.equal(lastSeen().headers['x-forwarded-client-cert'], undefined);
  });

  test('Host names the API even when SNI names another host: SNI for the open host does not open the mTLS one', async () => {
    const before = upstream.requests.length;
    // TLS to open.example.test (no certificate asked), then "Host: pay.example.test".
    const fronted = await on('open.example.test', '/charge', { client: 'partner-a', headers: { host: `pay.example.test:${hosts.port}` } });
    assert.deepEqual([fronted.status, fronted.json().code], [403, 'mtls.cert_required']);
    assert.equal(upstream.requests.length, before, 'nothing reached the upstream');
  });
});

describe('allowed_urls with methods', () => {
  const cases: Array<[method: string, path: string, status: number]> = [
    ['GET', '/orders/items', 200],
    ['GET', '/orders/items/42', 200],
    ['POST', '/orders/items/42', 403],
    ['DELETE', '/orders/items/42', 403],
    ['POST', '/orders/items/42/notes', 200],
    ['PUT', '/orders/items/42/notes', 200], // "put" in the YAML: methods are case-insensitive
    ['GET', '/orders/items/42/notes', 403],
    ['GET', '/orders/admin', 403],
    ['DELETE', '/orders/report', 200], // no methods listed: every method
    ['GET', '/orders/items/x', 403],
  ];
  for (const [method, path, status] of cases) {
    test(`${method} ${path}: ${status}`, async () => {
      const r = await at('localhost', path, { client: 'bob', method, ...(method === 'GET' ? {} : { data: '{}' }) });
      assert.equal(r.status, status, r.body);
      if (status === 403) assert.deepEqual(r.json(), { error: 'Access to this resource has been disallowed', code: 'access.url_denied' });
      else assert.equal(lastSeen().method, method);
    });
  }

  test('the query string is not part of the match, and reaches the upstream unchanged', async () => {
    // "^/report$" and "^/items(/\d+)?$" are anchored: with the query in the match they would fail.
    const report = await at('localhost', '/orders/report?format=csv&from=/admin', { client: 'bob' });
    assert.equal(report.status, 200, report.body);
    assert.equal(lastSeen().url, '/orders/report?format=csv&from=/admin');
    const item = await at('localhost', '/orders/items/7?expand=notes', { client: 'bob' });
    assert.equal(item.status, 200, item.body);
    // A query cannot smuggle an allowed path onto a denied one.
    const smuggled = await at('localhost', '/orders/admin?/items', { client: 'bob' });
    assert.equal(smuggled.status, 403);
  });
});

describe('X-Forwarded-Client-Cert', () => {
  test('forward_client_cert: set from the verified leaf (pinned or CA-issued), replacing what the client sent', async () => {
    const r = await at('localhost', '/xfcc/a', { client: 'alice', headers: { 'x-forwarded-client-cert': 'Hash=forged;Subject="CN=admin"' } });
    assert.equal(r.status, 200, r.body);
    assert.equal(lastSeen().headers['x-forwarded-client-cert'], `Hash=${pki.clients.alice.fingerprint};Subject="O=mtlsgate demo,CN=alice"`);
    const viaCa = await at('localhost', '/xfcc/b', { client: 'stranger' });
    assert.equal(viaCa.status, 200, viaCa.body);
    assert.equal(lastSeen().headers['x-forwarded-client-cert'], `Hash=${pki.stranger.fingerprint};Subject="O=mtlsgate demo,CN=stranger"`);
  });

  test('without forward_client_cert a client-sent X-Forwarded-Client-Cert is removed', async () => {
    const r = await at('localhost', '/no-xfcc/a', { client: 'alice', headers: { 'x-forwarded-client-cert': 'Hash=forged' } });
    assert.equal(r.status, 200, r.body);
    assert.equal(lastSeen().headers['x-forwarded-client-cert'], undefined);
  });
});

describe('certificates that expire while served', () => {
  test('compile refuses a certificate that has already expired (E_CERT_EXPIRED, exit 1)', async () => {
    const dir = tempDir('e2e-expired');
    try {
      writeFileSync(join(dir.dir, 'key.yaml'), `kind: key\nid: late\ncertificate: ${join(pki.dir, 'expired-partner.pem')}\n`);
      // The certificate is named by absolute path outside the config directory: allowed explicitly.
      const r = await run(process.execPath, [CLI, 'compile', dir.dir, '-o', join(dir.dir, 'bundle.json'), '--allow-outside', pki.dir]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /E_CERT_EXPIRED/);
    } finally {
      dir.cleanup();
    }
  });

  test('admitted while valid, then mtls.cert_expired (pinned, CA-issued and dynamic) once notAfter passes', async () => {
    const expiredBody = { error: 'Certificate has expired', code: 'mtls.cert_expired' };
    const requests = () =>
      Promise.all([
        at('localhost', '/pinned/charge', { client: 'short-lived' }),
        at('localhost', '/partners/x', { client: 'short-lived-partner' }),
        at('localhost', '/orders/items/1', { client: 'short-lived' }),
      ]);
    const notAfter = shortLived.cert.notAfter.getTime();
    if (Date.now() < notAfter - 2_000) {
      for (const r of await requests()) assert.equal(r.status, 200, `still valid: ${r.body}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, notAfter + 1_500 - Date.now())));
    for (const r of await requests()) assert.deepEqual([r.status, r.json()], [403, expiredBody]);
  });
});
