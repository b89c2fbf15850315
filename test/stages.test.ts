// The request path's stages without a network: `decide` runs the same stage list the gateway
// runs, on described requests with real certificates; the runner keeps synchronous verdicts
// synchronous (no microtask) and waits only for a stage that answers with a promise.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { createCa, issueCert, type Issued } from '../cli/pki.ts';
import { Refusal, refusal } from '../runtime/errors.ts';
import { ClientIdentity } from '../runtime/identity.ts';
import type { LimitDecision, Limiter } from '../runtime/limits/limiter.ts';
import { MemoryLimiter } from '../runtime/limits/memory.ts';
import { buildSnapshot } from '../runtime/snapshot.ts';
import { RequestContext } from '../runtime/stages/context.ts';
import { decide } from '../runtime/stages/decide.ts';
import { STAGES } from '../runtime/stages/index.ts';
import { runStages } from '../runtime/stages/run.ts';
import { GO, type Stage } from '../runtime/stages/stage.ts';
import { buildBundle, sha256Hex } from './helpers/bundle-builder.ts';

const identityOf = (issued: Issued) => new ClientIdentity(new X509Certificate(issued.certPem), null);

describe('request-path stages', async () => {
  const ca = await createCa('stages test CA');
  const alice = await issueCert(ca, 'alice');
  const mallory = await issueCert(ca, 'mallory');
  const expired = await issueCert(ca, 'old', { notBefore: new Date(Date.now() - 3 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  const snapshot = buildSnapshot(
    buildBundle(
      [
        { id: 'open', listen_path: '/open/', target_url: 'http://127.0.0.1:9', use_keyless: true },
        {
          id: 'pinned',
          listen_path: '/pinned/',
          target_url: 'http://127.0.0.1:9',
          use_keyless: true,
          use_mutual_tls_auth: true,
          client_certificates: [alice.fingerprint],
        },
        { id: 'by-ca', listen_path: '/by-ca/', target_url: 'http://127.0.0.1:9', use_keyless: true, use_mutual_tls_auth: true, client_ca_pems: [ca.certPem] },
        { id: 'dynamic', listen_path: '/dynamic/', target_url: 'http://127.0.0.1:9', use_certificate: true },
        { id: 'token', listen_path: '/token/', target_url: 'http://127.0.0.1:9', domain: 'api.test' },
      ],
      [
        {
          id: 'alice',
          certificates: [alice.fingerprint],
          access_rights: { dynamic: { allowed_urls: [{ url: '^/reports(/|$)', methods: ['GET'] }] } },
          rate: { rate: 1, per: 60 },
        },
        { id: 'tok', token_sha256: sha256Hex('secret-token'), access_rights: { token: { allowed_urls: null } } },
        { id: 'late', token_sha256: sha256Hex('late-token'), access_rights: { token: { allowed_urls: null } }, expires: '2000-01-01T00:00:00Z' },
      ],
    ),
  );
  const now = Date.now();
  const get = (host: string, path: string, headers = {}) => ({ method: 'GET', host, path, headers });

  it('a keyless API lets any request through, naming the API and no key', () => {
    assert.deepEqual(decide(snapshot, get('x.test', '/open/a?q=1'), null, now), { refusal: null, stage: null, api: 'open', key: null, responseHeaders: null });
  });

  it('route: unknown path and a path that leaves its API', () => {
    const none = decide(snapshot, get('x.test', '/nowhere'), null, now);
    assert.equal(none.refusal?.code, 'route.not_found');
    assert.equal(none.stage, 'route');
    assert.equal(none.api, null);
    const bad = decide(snapshot, get('x.test', '/open/../pinned/x'), null, now);
    assert.equal(bad.refusal?.code, 'request.bad_path');
    assert.equal(bad.stage, 'route');
  });

  it('static mTLS: pinned leaf, CA-issued leaf, missing, unlisted and expired certificates', () => {
    assert.equal(decide(snapshot, get('x.test', '/pinned/'), identityOf(alice), now).refusal, null);
    assert.equal(decide(snapshot, get('x.test', '/by-ca/'), identityOf(mallory), now).refusal, null);
    const missing = decide(snapshot, get('x.test', '/pinned/'), null, now);
    assert.deepEqual([missing.stage, missing.refusal?.code], ['static-mtls', 'mtls.cert_required']);
    const unlisted = decide(snapshot, get('x.test', '/pinned/'), identityOf(mallory), now);
    assert.deepEqual([unlisted.stage, unlisted.refusal?.code], ['static-mtls', 'mtls.cert_not_allowed']);
    assert.equal(unlisted.refusal?.message, `Certificate with SHA256 ${mallory.fingerprint} not allowed`);
    const old = decide(snapshot, get('x.test', '/by-ca/'), identityOf(expired), now);
    assert.deepEqual([old.stage, old.refusal?.code], ['static-mtls', 'mtls.cert_expired']);
  });

  it('authenticate, key state and access, each named as the refusing stage', () => {
    const ok = decide(snapshot, get('api.test:8443', '/token/x', { authorization: 'Bearer secret-token' }), null, now);
    assert.deepEqual(ok, { refusal: null, stage: null, api: 'token', key: 'tok', responseHeaders: null });
    const wrongHost = decide(snapshot, get('other.test', '/token/x', { authorization: 'Bearer secret-token' }), null, now);
    assert.deepEqual([wrongHost.stage, wrongHost.refusal?.code], ['route', 'route.not_found']);
    const missing = decide(snapshot, get('api.test', '/token/x'), null, now);
    assert.deepEqual([missing.stage, missing.refusal?.code, missing.api], ['authenticate', 'auth.auth_field_missing', 'token']);
    const late = decide(snapshot, get('api.test', '/token/x', { authorization: 'late-token' }), null, now);
    assert.deepEqual([late.stage, late.refusal?.code, late.key], ['key-state', 'key.expired', 'late']);
    const dynamic = decide(snapshot, get('x.test', '/dynamic/reports/1'), identityOf(alice), now);
    assert.deepEqual([dynamic.refusal, dynamic.key], [null, 'alice']);
    const post = decide(snapshot, { method: 'POST', host: 'x.test', path: '/dynamic/reports/1' }, identityOf(alice), now);
    assert.deepEqual([post.stage, post.refusal?.code], ['access', 'access.url_denied']);
    const stranger = decide(snapshot, get('x.test', '/dynamic/reports/1'), identityOf(mallory), now);
    assert.deepEqual([stranger.stage, stranger.refusal?.code], ['authenticate', 'auth.cert_not_found']);
  });

  it('limits: an in-process limiter decides synchronously, headers on success and refusal', () => {
    const limiter = new MemoryLimiter();
    try {
      const first = decide(snapshot, get('x.test', '/dynamic/reports/1'), identityOf(alice), now, limiter);
      assert.ok(!(first instanceof Promise), 'a synchronous limiter gives a synchronous decision');
      assert.equal(first.refusal, null);
      assert.equal(first.responseHeaders?.['X-RateLimit-Limit'], '1');
      const second = decide(snapshot, get('x.test', '/dynamic/reports/1'), identityOf(alice), now, limiter);
      assert.ok(!(second instanceof Promise));
      assert.deepEqual([second.stage, second.refusal?.code], ['limits', 'limit.rate']);
      assert.ok(second.refusal?.headers?.['Retry-After'] !== undefined);
    } finally {
      void limiter.close();
    }
  });

  it('limits: a limiter answering with a promise makes the decision a promise', async () => {
    const denying: Limiter = {
      check: async (): Promise<LimitDecision> => ({ allowed: false, code: 'limit.quota', headers: { 'x-ratelimit-remaining': '0' } }),
      health: () => ({ status: 'ok' }),
      close: async () => {},
    };
    const pending = decide(snapshot, get('x.test', '/dynamic/reports/1'), identityOf(alice), now, denying);
    assert.ok(pending instanceof Promise);
    const settled = await pending;
    assert.deepEqual([settled.stage, settled.refusal?.code, settled.refusal?.headers], ['limits', 'limit.quota', { 'x-ratelimit-remaining': '0' }]);
  });

  it('the runner: stages in list order, synchronous verdicts without a microtask, async ones awaited', async () => {
    const order: string[] = [];
    const sync = (name: string): Stage => ({ name, run: () => (order.push(name), GO) });
    const ctx = () => new RequestContext(snapshot, null, now, 'GET', 'x.test', '/open/', {}, '', null);
    // Synchronous all the way: the verdict is there when runStages returns.
    assert.equal(runStages([sync('a'), sync('b')], ctx()), GO);
    assert.deepEqual(order, ['a', 'b']);

    order.length = 0;
    const later: Stage = { name: 'later', run: async () => (order.push('later'), GO) };
    const refuse: Stage = { name: 'refuse', run: () => (order.push('refuse'), refusal('key.inactive')) };
    const c = ctx();
    const verdict = runStages([sync('a'), later, sync('b'), refuse, sync('never')], c);
    assert.ok(verdict instanceof Promise);
    assert.deepEqual(order, ['a', 'later'], 'stages after an async one wait for it');
    const settled = await verdict;
    assert.ok(settled instanceof Refusal);
    assert.equal(settled.code, 'key.inactive');
    assert.equal(c.refusedBy, 'refuse');
    assert.deepEqual(order, ['a', 'later', 'b', 'refuse']);
  });

  it('the gateway list: route, revocation, static mTLS, authenticate, key state, access, limits', () => {
    assert.deepEqual(
      STAGES.map((s) => s.name),
      ['route', 'revocation', 'static-mtls', 'authenticate', 'key-state', 'access', 'limits'],
    );
  });
});
