// Every row of the CONTRACT error table (limit.* is engineer E's; here only that the gateway
// wires the limiter), through real TLS with curl as the client.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { issueCert } from '../cli/pki.ts';
import { createLimiter } from '../runtime/limits/index.ts';
import { buildBundle, sha256Hex, pinnedStaticApi } from './helpers/bundle-builder.ts';
import { closeGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, deadPort, startTestGateway, type CurlOptions, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

/** An upstream that accepts connections and resets each as soon as the request arrives. */
async function resettingUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('gateway error table', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  let resetting: Awaited<ReturnType<typeof resettingUpstream>>;
  const limiter = createLimiter();

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    echo.slowMs = 30_000;
    const day = 86_400_000;
    const expired = await issueCert(pki.ca, 'expired', { notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) });
    pki.file('expired.pem', expired.certPem);
    pki.file('expired-key.pem', expired.keyPem);
    const dead = `http://127.0.0.1:${await deadPort()}`;
    resetting = await resettingUpstream();
    const all = { allowed_urls: null };
    const bundle = buildBundle(
      [
        pinnedStaticApi(echo.url, [pki.clients['partner-a'].fingerprint, expired.fingerprint]),
        { id: 'tokens', listen_path: '/tokens/', target_url: echo.url },
        { id: 'dynamic', listen_path: '/dynamic/', target_url: echo.url, use_certificate: true },
        { id: 'dead', listen_path: '/dead/', target_url: dead, use_keyless: true },
        { id: 'reset', listen_path: '/reset/', target_url: resetting.url, use_keyless: true },
        { id: 'slow', listen_path: '/slow/', target_url: echo.url, use_keyless: true, strip_listen_path: false },
        { id: 'limited', listen_path: '/limited/', target_url: echo.url },
        {
          id: 'pinned-token',
          listen_path: '/pinned-token/',
          target_url: echo.url,
          use_mutual_tls_auth: true,
          client_certificates: [pki.clients['partner-a'].fingerprint, pki.clients.alice.fingerprint],
        },
      ],
      [
        { id: 'tok', token_sha256: sha256Hex('tok-token'), access_rights: { tokens: all, dynamic: all, 'pinned-token': all } },
        {
          id: 'alice',
          certificates: [pki.clients.alice.fingerprint],
          token_sha256: sha256Hex('alice-token'),
          access_rights: { dynamic: all, 'pinned-token': all },
        },
        { id: 'carol', certificates: [expired.fingerprint], access_rights: { dynamic: all } },
        { id: 'old', token_sha256: sha256Hex('old-token'), expires: '2020-01-01T00:00:00Z', access_rights: { tokens: all } },
        { id: 'sleepy', token_sha256: sha256Hex('sleepy-token'), is_inactive: true, access_rights: { tokens: all } },
        { id: 'elsewhere', token_sha256: sha256Hex('elsewhere-token'), access_rights: { dynamic: all } },
        { id: 'narrow', token_sha256: sha256Hex('narrow-token'), access_rights: { tokens: { allowed_urls: [{ url: '^/charges', methods: ['GET'] }] } } },
        { id: 'metered', token_sha256: sha256Hex('metered-token'), rate: { rate: 1, per: 3600 }, access_rights: { limited: all } },
      ],
    );
    gw = await startTestGateway(pki, bundle, { upstreamTimeoutMs: 2_000, limiter });
  });

  after(async () => {
    await closeGatewayTest({ gw, echo, cleanup });
    await resetting?.close();
    await limiter.close();
  });

  const bearer = (token: string): CurlOptions => ({ headers: { authorization: `Bearer ${token}` } });
  // Status and message written out here, not read from ERROR_TABLE: the test checks the table.
  // error null: the message names the client's certificate (built in the test).
  // cause: the record's upstream_error (runtime/upstream-cause.ts), absent on every other row.
  const cases: Array<{ code: string; status: number; error: string | null; path: string; opts?: CurlOptions; why: string; cause?: string }> = [
    { code: 'route.not_found', status: 404, error: 'Not found', path: '/nowhere/x', why: 'no API on this path' },
    { code: 'request.bad_path', status: 400, error: 'Bad request', path: '/tokens/../static/x', why: '.. leaves the API' },
    { code: 'mtls.cert_required', status: 403, error: 'Client TLS certificate is required', path: '/static/x', why: 'static mTLS without a certificate' },
    { code: 'mtls.cert_not_allowed', status: 403, error: null, path: '/static/x', opts: { client: 'bob' }, why: 'certificate not pinned' },
    { code: 'mtls.cert_expired', status: 403, error: 'Certificate has expired', path: '/static/x', opts: { client: 'expired' }, why: 'pinned but expired' },
    { code: 'auth.auth_field_missing', status: 401, error: 'Authorization field missing', path: '/tokens/x', why: 'token API, no token' },
    {
      code: 'auth.key_not_found',
      status: 403,
      error: 'Access to this API has been disallowed',
      path: '/tokens/x',
      opts: bearer('nobody-has-this'),
      why: 'unknown token',
    },
    {
      code: 'auth.cert_not_found',
      status: 401,
      error: 'Access to this API has been disallowed',
      path: '/dynamic/x',
      opts: { client: 'bob' },
      why: 'certificate maps to no key',
    },
    {
      code: 'auth.cert_required',
      status: 401,
      error: 'Client certificate required',
      path: '/dynamic/x',
      opts: bearer('alice-token'),
      why: 'certificate-bound key token without its certificate',
    },
    {
      code: 'auth.cert_mismatch',
      status: 401,
      error: 'Access to this API has been disallowed',
      path: '/dynamic/x',
      opts: { client: 'alice', ...bearer('tok-token') },
      why: 'token and certificate name different keys',
    },
    { code: 'key.expired', status: 401, error: 'Key has expired, please renew', path: '/tokens/x', opts: bearer('old-token'), why: 'key past its expiry' },
    { code: 'key.inactive', status: 403, error: 'Key is inactive, please renew', path: '/tokens/x', opts: bearer('sleepy-token'), why: 'inactive key' },
    {
      code: 'access.api_denied',
      status: 403,
      error: 'Access to this API has been disallowed',
      path: '/tokens/x',
      opts: bearer('elsewhere-token'),
      why: 'key without rights on this API',
    },
    {
      code: 'access.url_denied',
      status: 403,
      error: 'Access to this resource has been disallowed',
      path: '/tokens/refunds',
      opts: bearer('narrow-token'),
      why: 'path outside allowed_urls',
    },
    {
      code: 'proxy.upstream_error',
      status: 502,
      error: 'There was a problem proxying the request',
      path: '/dead/x',
      why: 'upstream refuses connections',
      cause: 'ECONNREFUSED',
    },
    {
      code: 'proxy.upstream_error',
      status: 502,
      error: 'There was a problem proxying the request',
      path: '/reset/x',
      why: 'upstream resets the connection',
      cause: 'ECONNRESET',
    },
    {
      code: 'proxy.upstream_timeout',
      status: 504,
      error: 'Upstream timed out',
      path: '/slow/x',
      why: 'upstream slower than the timeout',
      cause: 'UND_ERR_HEADERS_TIMEOUT',
    },
  ];

  for (const c of cases) {
    it(`${c.code}: ${c.why}`, async () => {
      const r = await curl(pki, gw.port, c.path, c.opts);
      assert.equal(r.status, c.status, r.body);
      assert.equal(r.headers['content-type'], 'application/json');
      const expectedMessage = c.error ?? `Certificate with SHA256 ${pki.clients.bob.fingerprint} not allowed`;
      assert.deepEqual(JSON.parse(r.body), { error: expectedMessage, code: c.code });
      const record = [...gw.records].reverse().find((x) => x.path === c.path);
      assert.equal(record?.code, c.code);
      assert.equal(record?.status, c.status);
      assert.equal(record?.upstreamError, c.cause);
      if (c.cause === undefined) assert.ok(!('upstreamError' in record!), 'a record without a cause has no such property');
    });
  }

  it('an expired certificate on a dynamic mTLS API: mtls.cert_expired', async () => {
    const r = await curl(pki, gw.port, '/dynamic/x', { client: 'expired' });
    assert.equal(r.status, 403);
    assert.equal(r.json.code, 'mtls.cert_expired');
  });

  it("static mTLS + token: a certificate-bound key's token needs its own certificate, not just any pinned one", async () => {
    // partner-a is pinned but is not alice's certificate: a stolen token must not ride on it.
    const stolen = await curl(pki, gw.port, '/pinned-token/x', { client: 'partner-a', ...bearer('alice-token') });
    assert.equal(stolen.status, 401, stolen.body);
    assert.equal(stolen.json.code, 'auth.cert_required');
    const own = await curl(pki, gw.port, '/pinned-token/x', { client: 'alice', ...bearer('alice-token') });
    assert.equal(own.status, 200, own.body);
    // A request the upstream answered: its record has no upstream_error, not even an undefined one.
    const answered = [...gw.records].reverse().find((x) => x.path === '/pinned-token/x' && x.status === 200);
    assert.ok(answered !== undefined && !('upstreamError' in answered), JSON.stringify(answered));
    // A token-only key works behind any pinned certificate; a certificate naming another key does not.
    assert.equal((await curl(pki, gw.port, '/pinned-token/x', { client: 'partner-a', ...bearer('tok-token') })).status, 200);
    const mismatch = await curl(pki, gw.port, '/pinned-token/x', { client: 'alice', ...bearer('tok-token') });
    assert.equal(mismatch.json.code, 'auth.cert_mismatch');
  });

  it('allowed_urls: the method must be listed too', async () => {
    assert.equal((await curl(pki, gw.port, '/tokens/charges/1', bearer('narrow-token'))).status, 200);
    const post = await curl(pki, gw.port, '/tokens/charges/1', { ...bearer('narrow-token'), method: 'POST', data: '{}' });
    assert.equal(post.json.code, 'access.url_denied');
  });

  it('the limiter is consulted for a limited key and its headers reach the client', async () => {
    const first = await curl(pki, gw.port, '/limited/x', bearer('metered-token'));
    assert.equal(first.status, 200, first.body);
    assert.equal(first.headers['x-ratelimit-limit'], '1');
    const second = await curl(pki, gw.port, '/limited/x', bearer('metered-token'));
    assert.equal(second.status, 429);
    assert.deepEqual(second.json, { error: 'Rate limit exceeded', code: 'limit.rate' });
    assert.ok(Number(second.headers['retry-after']) > 0, 'Retry-After is set');
  });

  it('the gateway keeps serving other APIs after a dead and a slow upstream', async () => {
    const [dead, slow, ok] = await Promise.all([
      curl(pki, gw.port, '/dead/y'),
      curl(pki, gw.port, '/slow/y'),
      curl(pki, gw.port, '/static/y', { client: 'partner-a' }),
    ]);
    assert.equal(dead.status, 502);
    assert.equal(slow.status, 504);
    assert.equal(ok.status, 200);
    assert.equal(ok.json.path, '/y');
  });
});

describe('gateway faults stay in their request', () => {
  it('a header node:http refuses answers 502; a throwing onRequest is survived; others are served', async () => {
    const { pki, cleanup, echo } = await startPkiAndEcho();
    // A limiter that hands back a header value node:http refuses (a newline in it).
    const faultyLimiter = {
      check: () => ({ allowed: true, headers: { 'x-ratelimit-limit': 'one\ntwo' } }),
      health: () => ({ status: 'ok' as const }),
      close: async () => undefined,
    };
    let throwOnce = true;
    const gw = await startTestGateway(
      pki,
      buildBundle(
        [
          { id: 'limited', listen_path: '/limited/', target_url: echo.url },
          { id: 'open', listen_path: '/open/', target_url: echo.url, use_keyless: true },
        ],
        [{ id: 'metered', token_sha256: sha256Hex('metered-token'), rate: { rate: 5, per: 1 }, access_rights: { limited: { allowed_urls: null } } }],
      ),
      {
        limiter: faultyLimiter,
        onRequest: () => {
          if (throwOnce) {
            throwOnce = false;
            throw new Error('log sink is broken');
          }
        },
      },
    );
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const faulty = await curl(pki, gw.port, '/limited/x', { headers: { authorization: 'metered-token' } });
      assert.equal(faulty.status, 502);
      assert.equal(faulty.json.code, 'proxy.upstream_error');
      assert.equal((await curl(pki, gw.port, '/open/x')).status, 200);
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(
        warnings.some((w) => w.includes('log sink is broken')),
        warnings.join('; '),
      );
      assert.ok(
        warnings.some((w) => w.includes('x-ratelimit-limit')),
        warnings.join('; '),
      );
    } finally {
      process.off('warning', onWarning);
      await closeGatewayTest({ gw, echo, cleanup });
    }
  });
});
