// The mTLS flows end to end: the two seed flows (static and dynamic), dynamic-mTLS rules with
// tokens, CA trust entries, chain smuggling, revocation on an open keep-alive connection, and
// which hosts get a CertificateRequest at all.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Agent, request } from 'node:https';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { issueCert } from '../cli/pki.ts';
import type { RefusedReason } from '../runtime/tls-front.ts';
import { buildBundle, sha256Hex, type ApiSpec, type KeySpec, pinnedStaticApi } from './helpers/bundle-builder.ts';
import { closeGatewayTest, startGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { createIntermediateCa, curl, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

describe('gateway mTLS flows', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  let apis: ApiSpec[];
  let keys: KeySpec[];

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    const all = { allowed_urls: null };
    apis = [
      pinnedStaticApi(echo.url, [pki.clients['partner-a'].fingerprint]),
      { id: 'partners', listen_path: '/partners/', target_url: echo.url, use_keyless: true, use_mutual_tls_auth: true, client_ca_pems: [pki.ca.certPem] },
      { id: 'dynamic', listen_path: '/dynamic/', target_url: echo.url, use_certificate: true },
      { id: 'reports', listen_path: '/reports/', target_url: echo.url, use_certificate: true },
      {
        id: 'both',
        listen_path: '/both/',
        target_url: echo.url,
        use_mutual_tls_auth: true,
        use_certificate: true,
        client_certificates: [pki.clients.alice.fingerprint, pki.clients.bob.fingerprint],
      },
    ];
    keys = [
      {
        id: 'alice',
        certificates: [pki.clients.alice.fingerprint],
        token_sha256: sha256Hex('alice-token'),
        access_rights: { dynamic: { allowed_urls: [{ url: '^/charges', methods: [] }] }, both: all },
      },
      { id: 'tok', token_sha256: sha256Hex('tok-token'), access_rights: { dynamic: all } },
    ];
    gw = await startTestGateway(pki, buildBundle(apis, keys));
  });

  after(() => closeGatewayTest({ gw, echo, cleanup }));

  it('static seed flow: the certificate alone opens a keyless mTLS API', async () => {
    const r = await curl(pki, gw.port, '/static/hello', { client: 'partner-a' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.path, '/hello');
    assert.equal(gw.records.at(-1)?.cert, pki.clients['partner-a'].fingerprint);
  });

  it('dynamic seed flow: the certificate alone identifies its key, whose access rights apply', async () => {
    const ok = await curl(pki, gw.port, '/dynamic/charges/7', { client: 'alice' });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(gw.records.at(-1)?.key, 'alice');
    const outside = await curl(pki, gw.port, '/dynamic/refunds', { client: 'alice' });
    assert.equal(outside.json.code, 'access.url_denied');
    const otherApi = await curl(pki, gw.port, '/reports/x', { client: 'alice' });
    assert.equal(otherApi.json.code, 'access.api_denied');
  });

  it('dynamic mTLS with tokens: same key both ways is fine; a token-only key keeps its token', async () => {
    const both = await curl(pki, gw.port, '/dynamic/charges', { client: 'alice', headers: { authorization: 'Bearer alice-token' } });
    assert.equal(both.status, 200, both.body);
    const tokenOnly = await curl(pki, gw.port, '/dynamic/x', { headers: { authorization: 'tok-token' } });
    assert.equal(tokenOnly.status, 200, tokenOnly.body);
    assert.equal(gw.records.at(-1)?.key, 'tok');
    const tokenOnlyWithUnmappedCert = await curl(pki, gw.port, '/dynamic/x', { client: 'bob', headers: { authorization: 'Bearer tok-token' } });
    assert.equal(tokenOnlyWithUnmappedCert.status, 200, tokenOnlyWithUnmappedCert.body);
  });

  it('static + dynamic: the certificate must be pinned and map to a key', async () => {
    assert.equal((await curl(pki, gw.port, '/both/x', { client: 'alice' })).status, 200);
    assert.equal((await curl(pki, gw.port, '/both/x', { client: 'bob' })).json.code, 'auth.cert_not_found');
    assert.equal((await curl(pki, gw.port, '/both/x', { client: 'mallory' })).json.code, 'mtls.cert_not_allowed');
  });

  it('a CA entry admits a leaf it issued and refuses one from another CA', async () => {
    assert.equal((await curl(pki, gw.port, '/partners/x', { client: 'mallory' })).status, 200);
    const stranger = await curl(pki, gw.port, '/partners/x', { client: 'stranger' });
    assert.equal(stranger.status, 403);
    assert.equal(stranger.json.error, `Certificate with SHA256 ${pki.stranger.fingerprint} not allowed`);
  });

  it('a CA entry admits a leaf issued through an intermediate the client sends', async () => {
    const intermediate = await createIntermediateCa(pki.ca, 'partner intermediate');
    const leaf = await issueCert(intermediate, 'deep');
    const key = pki.file('deep-key.pem', leaf.keyPem);
    const leafOnly = pki.file('deep.pem', leaf.certPem);
    const refused = await curl(pki, gw.port, '/partners/x', { client: { cert: leafOnly, key } });
    assert.equal(refused.status, 403, 'without the intermediate the leaf does not chain to the CA');
    assert.equal(refused.json.code, 'mtls.cert_not_allowed');
    const withChain = await curl(pki, gw.port, '/partners/x', { client: { cert: pki.file('deep-chain.pem', leaf.certPem + intermediate.certPem), key } });
    assert.equal(withChain.status, 200, withChain.body);
    // Once proven, the chain is a fact about these certificates: the leaf alone is enough (and
    // this is what lets resumed TLS sessions, which do not carry the chain, keep working).
    assert.equal((await curl(pki, gw.port, '/partners/x', { client: { cert: leafOnly, key } })).status, 200);
  });

  it('a leaf admitted through an intermediate stays admitted on a resumed TLS session', async () => {
    const intermediate = await createIntermediateCa(pki.ca, 'resuming intermediate');
    const leaf = await issueCert(intermediate, 'resumer');
    // keepAlive off: every request is a new connection; the agent offers its cached session.
    const agent = new Agent({ keepAlive: false, maxCachedSessions: 10, ca: pki.ca.certPem, cert: leaf.certPem + intermediate.certPem, key: leaf.keyPem });
    const get = () =>
      new Promise<{ status: number; resumed: boolean }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', servername: 'localhost', port: gw.port, path: '/partners/r', agent }, (res) => {
          const resumed = (res.socket as import('node:tls').TLSSocket).isSessionReused();
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, resumed }));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      const first = await get();
      assert.deepEqual(first, { status: 200, resumed: false });
      let second = await get();
      // TLS 1.3 tickets arrive after the handshake: the first reuse may need one more round.
      if (!second.resumed) second = await get();
      assert.deepEqual(second, { status: 200, resumed: true });
    } finally {
      agent.destroy();
    }
  });

  it('chain smuggling: an allowed certificate behind an unlisted leaf is refused', async () => {
    // curl sends every certificate of the --cert file: the leaf first, the rest as its chain.
    const pinnedBehind = pki.file('smuggle-pinned.pem', pki.clients.mallory.certPem + pki.clients['partner-a'].certPem);
    const r = await curl(pki, gw.port, '/static/x', { client: { cert: pinnedBehind, key: pki.keyFile('mallory') } });
    assert.equal(r.status, 403);
    assert.equal(r.json.error, `Certificate with SHA256 ${pki.clients.mallory.fingerprint} not allowed`);
    const caBehind = pki.file('smuggle-ca.pem', pki.stranger.certPem + pki.ca.certPem);
    const viaCa = await curl(pki, gw.port, '/partners/x', { client: { cert: caBehind, key: pki.keyFile('stranger') } });
    assert.equal(viaCa.status, 403);
    assert.equal(viaCa.json.code, 'mtls.cert_not_allowed');
    const keyBehind = pki.file('smuggle-key.pem', pki.clients.bob.certPem + pki.clients.alice.certPem);
    const dynamic = await curl(pki, gw.port, '/dynamic/charges', { client: { cert: keyBehind, key: pki.keyFile('bob') } });
    assert.equal(dynamic.json.code, 'auth.cert_not_found');
  });

  it('revocation: the next request on the same keep-alive connection is refused', async () => {
    const agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      ca: pki.ca.certPem,
      cert: pki.clients['partner-a'].certPem,
      key: pki.clients['partner-a'].keyPem,
    });
    const sockets = new Set<Socket>();
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', servername: 'localhost', port: gw.port, path: '/static/x', agent }, (res) => {
          sockets.add(res.socket);
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      assert.equal(await get(), 200);
      const revoked = apis.map((a) => (a.id === 'static' ? { ...a, client_certificates: [pki.clients.bob.fingerprint] } : a));
      gw.use(buildBundle(revoked, keys));
      assert.equal(await get(), 403);
      assert.equal(sockets.size, 1, 'both requests used one connection');
      gw.use(buildBundle(apis, keys));
      assert.equal(await get(), 200);
      assert.equal(sockets.size, 1);
    } finally {
      agent.destroy();
    }
  });
});

/** `openssl s_client -msg` transcript of a handshake (no HTTP request). */
function handshakeTranscript(port: number, servername: string | null): Promise<string> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-msg', '-brief'];
  if (servername !== null) args.push('-servername', servername);
  else args.push('-noservername');
  return new Promise((resolve) => {
    const child = execFile('openssl', args, { timeout: 30_000 }, (_err, stdout, stderr) => resolve(stdout + stderr));
    child.stdin?.end();
  });
}

describe('gateway asks for a client certificate only where an API needs one', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  /** Why the TLS front closed a connection before its handshake ended, in order. */
  const refusals: RefusedReason[] = [];

  before(async () => {
    ({ pki, cleanup, echo, gw } = await startGatewayTest(
      ({ pki, echo }) =>
        buildBundle([
          {
            id: 'pay',
            domain: 'pay.example.test',
            listen_path: '/',
            target_url: echo.url,
            use_keyless: true,
            use_mutual_tls_auth: true,
            client_certificates: [pki.clients['partner-a'].fingerprint],
          },
          { id: 'open', domain: 'open.example.test', listen_path: '/', target_url: echo.url, use_keyless: true },
          { id: 'anyhost', listen_path: '/public/', target_url: echo.url, use_keyless: true },
        ]),
      { onConnectionRefused: (reason) => refusals.push(reason) },
    ));
  });

  after(() => closeGatewayTest({ gw, echo, cleanup }));

  it('a CertificateRequest goes to the mTLS host only', async () => {
    assert.match(await handshakeTranscript(gw.port, 'pay.example.test'), /CertificateRequest/);
    const open = await handshakeTranscript(gw.port, 'open.example.test');
    assert.match(open, /ServerHello/, 'the handshake happened');
    assert.doesNotMatch(open, /CertificateRequest/);
    assert.doesNotMatch(await handshakeTranscript(gw.port, null), /CertificateRequest/);
  });

  it('a reload that puts an mTLS API on a host makes its next handshakes ask', async () => {
    const before = gw.snapshot().bundle;
    const apis = Object.values(before.content.apis).map((a) =>
      a.id === 'open' ? { ...a, use_mutual_tls_auth: true, client_certificates: [pki.clients.bob.fingerprint] } : a,
    );
    gw.use(buildBundle(apis));
    try {
      assert.match(await handshakeTranscript(gw.port, 'open.example.test'), /CertificateRequest/);
      assert.equal((await curl(pki, gw.port, '/x', { host: 'open.example.test', client: 'bob' })).status, 200);
    } finally {
      gw.use(before);
    }
    assert.doesNotMatch(await handshakeTranscript(gw.port, 'open.example.test'), /CertificateRequest/);
  });

  it('routes by Host: the mTLS host answers a missing certificate at the HTTP layer', async () => {
    const none = await curl(pki, gw.port, '/x', { host: 'pay.example.test' });
    assert.equal(none.status, 403);
    assert.equal(none.json.code, 'mtls.cert_required');
    assert.equal((await curl(pki, gw.port, '/x', { host: 'pay.example.test', client: 'partner-a' })).status, 200);
    const open = await curl(pki, gw.port, '/x', { host: 'open.example.test' });
    assert.equal(open.status, 200);
    assert.equal(gw.records.at(-1)?.api, 'open');
    // The host's own APIs come first: its "/" wins over the domain-less /public/.
    assert.equal((await curl(pki, gw.port, '/public/x', { host: 'open.example.test' })).json.path, '/public/x');
    assert.equal(gw.records.at(-1)?.api, 'open');
    assert.equal((await curl(pki, gw.port, '/public/x', { host: 'localhost' })).json.path, '/x');
    assert.equal(gw.records.at(-1)?.api, 'anyhost');
  });

  it('setTlsCredentials: new handshakes present the new server certificate', async () => {
    const { connect } = await import('node:tls');
    const { createServerCert } = await import('../cli/pki.ts');
    const serverFingerprint = () =>
      new Promise<string>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: gw.port, servername: 'open.example.test', ca: pki.ca.certPem }, () => {
          const fp = s.getPeerX509Certificate()!.fingerprint256.replaceAll(':', '').toLowerCase();
          s.end();
          resolve(fp);
        });
        s.on('error', reject);
      });
    assert.equal(await serverFingerprint(), pki.testServer.fingerprint);
    const renewed = await createServerCert(pki.ca, { dns: ['open.example.test', 'pay.example.test', 'localhost'] });
    gw.gateway.setTlsCredentials(renewed.certPem, renewed.keyPem);
    assert.equal(await serverFingerprint(), renewed.fingerprint);
    assert.equal((await curl(pki, gw.port, '/x', { host: 'pay.example.test', client: 'partner-a' })).status, 200);
  });

  // Silent and dribbling clients (the 10 s ClientHello deadline): test/gateway-tls-front.test.ts.
  it('plain HTTP gets a one-line 400 hint; a non-TLS record is dropped at once, unanswered', async () => {
    const { connect } = await import('node:net');
    const plain = await new Promise<string>((resolve) => {
      const s = connect(gw.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('close', () => resolve(out));
    });
    assert.match(plain, /^HTTP\/1.1 400/);
    assert.match(plain, /This port speaks HTTPS only: use an https:\/\/ URL\n$/);
    // A handshake record holding a ServerHello (type 2) instead of a ClientHello.
    const refusedBefore = refusals.length;
    const garbage = await new Promise<{ received: number; refusedWhenClosed: RefusedReason[] }>((resolve) => {
      let received = 0;
      const s = connect(gw.port, '127.0.0.1', () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0])));
      s.on('data', (d) => (received += d.length));
      s.on('error', () => undefined);
      s.on('close', () => resolve({ received, refusedWhenClosed: refusals.slice(refusedBefore) }));
    });
    assert.equal(garbage.received, 0, 'no answer to a non-TLS record');
    // Closed because the bytes are not a ClientHello, not by the 10 s hello deadline: the
    // deadline records 'handshake_deadline' before it closes the socket, and there is none.
    assert.deepEqual(garbage.refusedWhenClosed, [], 'closed on reading the bytes, not by the handshake deadline');
    assert.equal((await curl(pki, gw.port, '/x', { host: 'open.example.test' })).status, 200);
  });
});
