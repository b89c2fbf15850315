// Behind a TLS-terminating load balancer: --client-cert-header with --trusted-proxies, and the
// --listen-plain listener. Real curl sends the header from loopback (trusted) and from an
// address outside --trusted-proxies (stripped, refused on the plain listener); every stage
// judges the header's certificate as it judges a handshake's (pins, CA path with the chain,
// expiry, certificate-bound keys, forwarding); a keep-alive stream parses a header once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { request, Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { issueCert, type Issued } from '../cli/pki.ts';
import { CertHeaderReader, certHeaderSpec, parseCertHeader, INVALID } from '../runtime/client-cert-header.ts';
import { TrustedProxies } from '../runtime/trusted-proxies.ts';
import type { Bundle } from '../bundle/types.ts';
import { buildBundle, pinnedStaticApi } from './helpers/bundle-builder.ts';
import { closeGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { createIntermediateCa, curl, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { ensureBuilt, mtlsgate } from './helpers/cli.ts';
import { curlPlain } from './helpers/curl-plain.ts';

const der = (pem: string) => new X509Certificate(pem).raw;
/** RFC 9440 Client-Cert value. */
const rfc9440 = (pem: string) => `:${der(pem).toString('base64')}:`;
/** An Envoy XFCC element carrying the certificate (and Hash, By, Subject as Envoy writes them). */
const xfccElement = (pem: string, by = 'spiffe://lb.test') => `By=${by};Hash=deadbeef;Cert="${encodeURIComponent(pem)}";Subject="CN=x"`;

let pki: TestPki;
let cleanup: () => void;
let echo: EchoUpstream;
let expired: Issued;
let chained: Issued;
/** Another leaf of the intermediate, for the ALB chain (a proven path is remembered per leaf). */
let chained2: Issued;
let intermediate: Issued;
let bundle: Bundle;

before(async () => {
  ({ pki, cleanup, echo } = await startPkiAndEcho());
  const day = 86_400_000;
  expired = await issueCert(pki.ca, 'expired', { notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) });
  intermediate = await createIntermediateCa(pki.ca, 'Header Intermediate');
  chained = await issueCert(intermediate, 'chained');
  chained2 = await issueCert(intermediate, 'chained2');
  const all = { allowed_urls: null };
  bundle = buildBundle(
    [
      pinnedStaticApi(echo.url, [pki.clients['partner-a'].fingerprint, expired.fingerprint], {
        forward_client_cert: { key_id_header: null, rfc9440: false, xfcc: ['Hash'] },
      }),
      { id: 'ca', listen_path: '/ca/', target_url: echo.url, use_keyless: true, use_mutual_tls_auth: true, client_ca_pems: [pki.ca.certPem] },
      {
        id: 'dynamic',
        listen_path: '/dynamic/',
        target_url: echo.url,
        use_certificate: true,
        forward_client_cert: { key_id_header: 'x-key', rfc9440: false, xfcc: [] },
      },
    ],
    [{ id: 'alice', certificates: [pki.clients.alice.fingerprint], access_rights: { dynamic: all } }],
  );
});
after(() => closeGatewayTest({ echo, cleanup }));

/** A gateway reading `header` from `trusted`, with a plain listener on `plainHost`. */
async function gatewayWith(header: string, trusted: string[], plainHost = '127.0.0.1') {
  const reader = new CertHeaderReader(certHeaderSpec(header), new TrustedProxies(trusted));
  const gw = await startTestGateway(pki, bundle, { certHeader: reader });
  const plain = await gw.gateway.listenPlain(0, plainHost);
  return { gw, reader, plainPort: plain.port };
}

describe('--client-cert-header client-cert (RFC 9440), trusted proxy on loopback', () => {
  let gw: TestGateway;
  let reader: CertHeaderReader;
  let base: string;
  before(async () => {
    let port: number;
    ({ gw, reader, plainPort: port } = await gatewayWith('client-cert', ['127.0.0.1/32', '::1']));
    base = `http://127.0.0.1:${port}`;
  });
  after(() => gw.close());

  it('admits a pinned certificate from the header; the upstream gets the identity, never the header', async () => {
    const r = await curlPlain(`${base}/static/x`, { 'Client-Cert': rfc9440(pki.clients['partner-a'].certPem) });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.headers?.['client-cert'], undefined);
    assert.equal(r.json.headers?.['x-forwarded-client-cert'], `Hash=${pki.clients['partner-a'].fingerprint}`);
    assert.equal(gw.records.at(-1)?.cert, pki.clients['partner-a'].fingerprint);
  });

  it('refuses as the handshake path does: not pinned, expired, none, garbage', async () => {
    const bob = await curlPlain(`${base}/static/x`, { 'Client-Cert': rfc9440(pki.clients.bob.certPem) });
    assert.equal(bob.status, 403);
    assert.deepEqual(bob.json, { error: `Certificate with SHA256 ${pki.clients.bob.fingerprint} not allowed`, code: 'mtls.cert_not_allowed' });
    const old = await curlPlain(`${base}/static/x`, { 'Client-Cert': rfc9440(expired.certPem) });
    assert.equal(old.json.code, 'mtls.cert_expired');
    const none = await curlPlain(`${base}/static/x`);
    assert.equal(none.status, 403);
    assert.equal(none.json.code, 'mtls.cert_required');
    const garbage = await curlPlain(`${base}/static/x`, { 'Client-Cert': ':bm90IGEgY2VydGlmaWNhdGU=:' });
    assert.equal(garbage.status, 400);
    assert.equal(garbage.json.code, 'mtls.cert_header_invalid');
    assert.equal(gw.records.at(-1)?.code, 'mtls.cert_header_invalid');
  });

  it('the same answers as a handshake certificate gives (on a gateway without the flag), over TLS (HTTP/1.1 and HTTP/2)', async () => {
    const tlsOnly = await startTestGateway(pki, bundle);
    try {
      for (const name of ['partner-a', 'bob', 'alice'] as const) {
        const viaTls = await curl(pki, tlsOnly.port, '/static/x', { client: name });
        const viaHeader = await curl(pki, gw.port, '/static/x', { headers: { 'client-cert': rfc9440(pki.clients[name].certPem) } });
        const viaH2 = await curl(pki, gw.port, '/static/x', { headers: { 'client-cert': rfc9440(pki.clients[name].certPem) }, extra: ['--http2'] });
        assert.equal(viaHeader.status, viaTls.status, name);
        assert.equal(viaHeader.json.code, viaTls.json.code, name);
        assert.equal(viaH2.status, viaTls.status, `${name} over HTTP/2`);
      }
    } finally {
      await tlsOnly.close();
    }
  });

  it('from a trusted proxy the header is the client certificate, not the proxy’s own handshake certificate', async () => {
    // The proxy connects with bob (not pinned); its client is partner-a (pinned): admitted.
    const r = await curl(pki, gw.port, '/static/x', { client: 'bob', headers: { 'client-cert': rfc9440(pki.clients['partner-a'].certPem) } });
    assert.equal(r.status, 200, r.body);
    // Without the header, the proxy's own certificate is not taken for a client's.
    const bare = await curl(pki, gw.port, '/static/x', { client: 'partner-a' });
    assert.equal(bare.json.code, 'mtls.cert_required');
  });

  it('a certificate-bound key is found from the header', async () => {
    const r = await curlPlain(`${base}/dynamic/x`, { 'Client-Cert': rfc9440(pki.clients.alice.certPem) });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.headers?.['x-key'], 'alice');
  });

  it('path validation uses Client-Cert-Chain: the intermediate admits the leaf, its absence does not', async () => {
    const leaf = rfc9440(chained.certPem);
    // Without first: once a leaf's path to a CA is proven, it is remembered (as for a resumed TLS session).
    const without = await curlPlain(`${base}/ca/x`, { 'Client-Cert': leaf });
    assert.equal(without.json.code, 'mtls.cert_not_allowed');
    const withChain = await curlPlain(`${base}/ca/x`, { 'Client-Cert': leaf, 'Client-Cert-Chain': rfc9440(intermediate.certPem) });
    assert.equal(withChain.status, 200, JSON.stringify(withChain.json));
    assert.equal(withChain.json.headers?.['client-cert-chain'], undefined);
    const direct = await curlPlain(`${base}/ca/x`, { 'Client-Cert': rfc9440(pki.clients.bob.certPem) });
    assert.equal(direct.status, 200, 'a leaf the CA signed directly needs no chain');
  });

  it('a keep-alive stream of requests parses each distinct header value once', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = (value: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${base}/static/x`, { agent, headers: { 'client-cert': value } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    const value = rfc9440(pki.clients['partner-a'].certPem);
    await get(value); // may or may not be cached by earlier tests
    const before = reader.parses;
    for (let i = 0; i < 50; i++) assert.equal(await get(value), 200);
    const other = rfc9440(pki.clients.mallory.certPem);
    for (let i = 0; i < 5; i++) assert.equal(await get(other), 403);
    agent.destroy();
    assert.equal(reader.parses - before, 1, 'partner-a was parsed already; mallory once for five requests');
  });
});

describe('--client-cert-header xfcc and x-amzn-mtls-clientcert', () => {
  it('XFCC: the Cert of the last element (the nearest proxy appended it)', async () => {
    const { gw, plainPort } = await gatewayWith('xfcc', ['127.0.0.1']);
    try {
      const url = `http://127.0.0.1:${plainPort}/static/x`;
      const good = await curlPlain(url, {
        'X-Forwarded-Client-Cert': `${xfccElement(pki.clients.bob.certPem)},${xfccElement(pki.clients['partner-a'].certPem)}`,
      });
      assert.equal(good.status, 200, JSON.stringify(good.json));
      assert.equal(
        good.json.headers?.['x-forwarded-client-cert'],
        `Hash=${pki.clients['partner-a'].fingerprint}`,
        'the upstream gets the gateway’s XFCC, not the incoming one',
      );
      const bad = await curlPlain(url, {
        'X-Forwarded-Client-Cert': `${xfccElement(pki.clients['partner-a'].certPem)},${xfccElement(pki.clients.bob.certPem)}`,
      });
      assert.equal(bad.json.code, 'mtls.cert_not_allowed');
      const noCert = await curlPlain(url, { 'X-Forwarded-Client-Cert': 'By=spiffe://lb;Hash=abc;Subject="CN=x"' });
      assert.equal(noCert.json.code, 'mtls.cert_header_invalid');
    } finally {
      await gw.close();
    }
  });

  it('AWS ALB X-Amzn-Mtls-Clientcert: URL-encoded PEM, leaf then chain; never forwarded', async () => {
    const { gw, plainPort } = await gatewayWith('X-Amzn-Mtls-Clientcert', ['127.0.0.0/8']);
    try {
      const base = `http://127.0.0.1:${plainPort}`;
      const r = await curlPlain(`${base}/static/x`, { 'X-Amzn-Mtls-Clientcert': encodeURIComponent(pki.clients['partner-a'].certPem) });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.headers?.['x-amzn-mtls-clientcert'], undefined);
      const leafOnly = await curlPlain(`${base}/ca/x`, { 'X-Amzn-Mtls-Clientcert': encodeURIComponent(chained2.certPem) });
      assert.equal(leafOnly.json.code, 'mtls.cert_not_allowed');
      const chain = await curlPlain(`${base}/ca/x`, { 'X-Amzn-Mtls-Clientcert': encodeURIComponent(chained2.certPem + intermediate.certPem) });
      assert.equal(chain.status, 200, JSON.stringify(chain.json));
    } finally {
      await gw.close();
    }
  });
});

describe('WebSocket on --listen-plain', () => {
  it('an upgrade with the header passes the stages and is tunnelled; without it, refused', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (socket, req) => {
      socket.send(`hello ${req.headers['client-cert'] === undefined ? 'no header' : 'header leaked'}`);
      socket.on('message', (m) => socket.send(`echo ${m}`));
    });
    const wsBundle = buildBundle([
      {
        id: 'ws',
        listen_path: '/ws/',
        target_url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
        use_keyless: true,
        use_mutual_tls_auth: true,
        client_certificates: [pki.clients['partner-a'].fingerprint],
      },
    ]);
    const reader = new CertHeaderReader(certHeaderSpec('client-cert'), new TrustedProxies(['127.0.0.1']));
    const gw = await startTestGateway(pki, wsBundle, { certHeader: reader });
    const { port } = await gw.gateway.listenPlain(0, '127.0.0.1');
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/chat`, { headers: { 'client-cert': rfc9440(pki.clients['partner-a'].certPem) } });
      const got: string[] = [];
      ws.on('message', (m) => {
        got.push(String(m));
        if (got.length === 1) ws.send('ping');
      });
      await new Promise((resolve, reject) => {
        ws.once('error', reject);
        ws.on('message', () => got.length === 2 && resolve(null));
      });
      assert.deepEqual(got, ['hello no header', 'echo ping']);
      ws.close();
      const refused = new WebSocket(`ws://127.0.0.1:${port}/ws/chat`, { headers: { 'client-cert': rfc9440(pki.clients.bob.certPem) } });
      const status = await new Promise<number>((resolve) => refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
      assert.equal(status, 403);
    } finally {
      await gw.close();
      await new Promise((r) => wss.close(r));
    }
  });
});

describe('requests from outside --trusted-proxies', () => {
  it('on the TLS listener the header is removed and ignored: the handshake certificate decides', async () => {
    const { gw, plainPort } = await gatewayWith('client-cert', ['10.0.0.0/8', '2001:db8::/32']);
    try {
      const forged = { 'client-cert': rfc9440(pki.clients['partner-a'].certPem), 'client-cert-chain': rfc9440(pki.ca.certPem) };
      const bob = await curl(pki, gw.port, '/static/x', { client: 'bob', headers: forged });
      assert.equal(bob.json.code, 'mtls.cert_not_allowed', 'bob stays bob');
      const none = await curl(pki, gw.port, '/static/x', { headers: forged });
      assert.equal(none.json.code, 'mtls.cert_required');
      const own = await curl(pki, gw.port, '/static/x', { client: 'partner-a', headers: forged });
      assert.equal(own.status, 200, own.body);
      const seen = JSON.parse(own.body).headers as Record<string, string>;
      assert.equal(seen['client-cert'], undefined, 'the forged header never reaches the upstream');
      assert.equal(seen['client-cert-chain'], undefined);
      // The plain listener refuses the untrusted address outright.
      const plain = await curlPlain(`http://127.0.0.1:${plainPort}/static/x`, forged);
      assert.equal(plain.status, 403);
      assert.deepEqual(plain.json, { error: 'Plain HTTP is accepted from a trusted proxy only', code: 'request.untrusted_proxy' });
    } finally {
      await gw.close();
    }
  });

  it('a NAME header from an untrusted address never reaches the upstream either', async () => {
    const { gw } = await gatewayWith('x-client-cert-pem', ['192.0.2.0/24']);
    try {
      const r = await curl(pki, gw.port, '/static/x', { client: 'partner-a', headers: { 'x-client-cert-pem': encodeURIComponent(pki.clients.bob.certPem) } });
      assert.equal(r.status, 200, r.body);
      assert.equal((JSON.parse(r.body).headers as Record<string, string>)['x-client-cert-pem'], undefined);
    } finally {
      await gw.close();
    }
  });

  it('IPv6 and IPv4 on one dual-stack plain listener: ::1 trusted, 127.0.0.1 not', async () => {
    const { gw, plainPort } = await gatewayWith('client-cert', ['::1/128'], '::');
    try {
      const header = { 'Client-Cert': rfc9440(pki.clients['partner-a'].certPem) };
      const v6 = await curlPlain(`http://[::1]:${plainPort}/static/x`, header);
      assert.equal(v6.status, 200, JSON.stringify(v6.json));
      const v4 = await curlPlain(`http://127.0.0.1:${plainPort}/static/x`, header);
      assert.equal(v4.json.code, 'request.untrusted_proxy');
    } finally {
      await gw.close();
    }
  });
});

describe('header formats and trusted ranges (units)', () => {
  it('parses each format; refuses what is not one', () => {
    const pem = pki.clients.alice.certPem;
    const leaf = der(pem);
    assert.ok(parseCertHeader('client-cert', rfc9440(pem), undefined)?.leaf.equals(leaf));
    assert.equal(parseCertHeader('client-cert', `${rfc9440(pem)}, ${rfc9440(pem)}`, undefined), null, 'two Client-Cert fields are no single certificate');
    assert.equal(parseCertHeader('client-cert', der(pem).toString('base64'), undefined), null, 'not colon-wrapped');
    // XFCC quoting: a Subject holding , ; = inside quotes does not split the element.
    const xfcc = `Hash=1;Subject="CN=a,O=b;c=d";Cert="${encodeURIComponent(pem)}";Chain="${encodeURIComponent(pem + intermediate.certPem)}"`;
    const parsed = parseCertHeader('xfcc', xfcc, undefined);
    assert.ok(parsed?.leaf.equals(leaf));
    assert.equal(parsed?.chain.length, 1, 'Chain includes the leaf, which is not repeated');
    assert.ok(parseCertHeader('pem', encodeURIComponent(pem), undefined)?.leaf.equals(leaf));
    assert.equal(parseCertHeader('pem', 'nothing', undefined), null);
  });

  it('header names: client-cert, xfcc, a custom token; not the gateway’s own headers', () => {
    assert.deepEqual(certHeaderSpec('Client-Cert'), { format: 'client-cert', header: 'client-cert', chainHeader: 'client-cert-chain' });
    assert.equal(certHeaderSpec('xfcc').header, 'x-forwarded-client-cert');
    assert.equal(certHeaderSpec('X-Amzn-Mtls-Clientcert').format, 'pem');
    assert.throws(() => certHeaderSpec('host'), /cannot carry/);
    assert.throws(() => certHeaderSpec('bad header'), /not a header name/);
  });

  it('trusted ranges: IPv4, IPv6, IPv4-mapped, bare addresses; bad entries refused', () => {
    const t = new TrustedProxies(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7']);
    assert.ok(t.trusts('10.1.2.3'));
    assert.ok(t.trusts('::ffff:10.1.2.3'));
    assert.ok(t.trusts('2001:db8::1'));
    assert.ok(t.trusts('192.0.2.7'));
    assert.ok(!t.trusts('192.0.2.8'));
    assert.ok(!t.trusts('11.0.0.1'));
    assert.ok(!t.trusts('::1'));
    assert.ok(!t.trusts(undefined));
    assert.throws(() => new TrustedProxies(['10.0.0.0/33']), /not an IPv4 or IPv6/);
    assert.throws(() => new TrustedProxies(['example.com']), /not an IPv4 or IPv6/);
  });

  it('the identity cache is a bounded LRU', () => {
    const reader = new CertHeaderReader(certHeaderSpec('client-cert'), new TrustedProxies(['127.0.0.1']), 2);
    const socket = { remoteAddress: '127.0.0.1' };
    const ask = (name: 'alice' | 'bob' | 'mallory') => reader.identity({ 'client-cert': rfc9440(pki.clients[name].certPem) }, socket, null);
    const a = ask('alice');
    ask('bob');
    assert.equal(ask('alice'), a, 'a hit returns the same identity object (its memos carry over)');
    ask('mallory'); // evicts bob, the least recently used
    const parses = reader.parses;
    ask('alice');
    assert.equal(reader.parses, parses, 'alice stayed');
    ask('bob');
    assert.equal(reader.parses, parses + 1, 'bob was evicted');
    assert.equal(reader.identity({ 'client-cert': ':!!:' }, socket, null), INVALID);
  });
});

describe('serve flags', () => {
  before(() => ensureBuilt());
  it('--client-cert-header and --trusted-proxies go together; bad values are usage errors', () => {
    const base = ['serve', '--bundle', 'b.json', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'];
    const alone = mtlsgate([...base, '--client-cert-header', 'xfcc']);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--client-cert-header needs --client-cert-header and --trusted-proxies together/);
    const plainOnly = mtlsgate([...base, '--listen-plain', '127.0.0.1:8080']);
    assert.equal(plainOnly.code, 2);
    assert.match(plainOnly.stderr, /--listen-plain needs/);
    const cidr = mtlsgate([...base, '--client-cert-header', 'xfcc', '--trusted-proxies', '10.0.0.0/8,nope']);
    assert.equal(cidr.code, 2);
    assert.match(cidr.stderr, /--trusted-proxies: "nope" is not an IPv4 or IPv6 address or CIDR range/);
    const env = mtlsgate([...base, '--trusted-proxies', '10.0.0.0/8'], { env: { ...process.env, MTLSGATE_CLIENT_CERT_HEADER: 'host' } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /MTLSGATE_CLIENT_CERT_HEADER: host cannot carry the client certificate/);
  });
});
