// runtime/cluster/ipc-check.ts, rule by rule (the end-to-end case with real processes:
// test/workers-ipc-check.test.ts): what the workers really send passes, and each bound holds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkToPrimary } from '../runtime/cluster/ipc-check.ts';

const now = Date.parse('2026-12-05T01:00:00.000Z');
const digest = `sha256:${'ab'.repeat(32)}`;
const taken = (signedAt: unknown) => ({ type: 'mtlsgate:taken', bundle: { signedAt, digest, keyId: 'ops' } });
const refused = (m: { type: string; [field: string]: unknown }) => typeof checkToPrimary(m, now) === 'string';

test('a bundle record: a signing time in ms up to five minutes ahead passes; further ahead, no integer or no date is refused', () => {
  assert.equal(refused(taken(now)), false);
  assert.equal(refused(taken(now + 5 * 60_000)), false);
  assert.equal(refused(taken(now + 5 * 60_000 + 1)), true);
  assert.equal(refused(taken('yesterday')), true);
  assert.equal(refused(taken(1.5)), true);
  assert.equal(refused({ type: 'mtlsgate:taken', bundle: { signedAt: now, digest: 'sha256:xyz', keyId: 'ops' } }), true);
  assert.equal(refused({ type: 'mtlsgate:taken' }), true, 'neither a bundle nor a CRL');
  // The signature goes with it (verify-taken.ts checks it); its form here.
  assert.equal(refused({ type: 'mtlsgate:taken', bundle: { signedAt: now, digest, keyId: 'ops', signature: 'ed25519:...' } }), false);
  assert.equal(refused({ type: 'mtlsgate:taken', bundle: { signedAt: now, digest, keyId: 'ops', signature: 42 } }), true);
  assert.equal(refused({ type: 'mtlsgate:taken', bundle: { signedAt: now, digest, keyId: 'ops', signature: 'x'.repeat(257) } }), true);
});

test('a CRL record: fingerprint, thisUpdate, number and base64 bytes are checked', () => {
  const crl = (over: Record<string, unknown>, der: unknown = 'MIIB') => ({
    type: 'mtlsgate:taken',
    crl: { url: 'http://crl.example/ca.crl', floor: { ca: 'cd'.repeat(32), thisUpdate: now, number: '1f', ...over }, der },
  });
  assert.equal(refused(crl({})), false);
  assert.equal(refused(crl({ number: null }, undefined)), false);
  assert.equal(refused(crl({ ca: 'sha256:x' })), true);
  assert.equal(refused(crl({ thisUpdate: now + 3_600_000 })), true);
  assert.equal(refused(crl({ number: 'zz' })), true);
  assert.equal(refused(crl({}, 'not base64!')), true);
  assert.equal(refused({ type: 'mtlsgate:taken', crl: { url: 'x', floor: null } }), true);
  // The CA certificate goes with it (verify-taken.ts verifies the CRL against it): base64.
  const withIssuer = (issuer: unknown) => ({ ...crl({}), crl: { ...crl({}).crl, issuer } });
  assert.equal(refused(withIssuer('MIIC')), false);
  assert.equal(refused(withIssuer('not base64!')), true);
  assert.equal(refused(withIssuer(7)), true);
});

test('lease messages: the shapes the lease limiter sends pass; a missing closes, a want beyond MAX_LEASE or an unknown type do not', () => {
  const acquire = {
    type: 'mtlsgate:acquire',
    req: 7,
    key: 'api:k',
    rate: { rate: 10, per: 60 },
    quota: { max: -1, renewal: 3600 },
    want: 32,
    prefetch: true,
    closes: [3, 0, 5, 12],
  };
  assert.equal(refused(acquire), false);
  assert.equal(refused({ ...acquire, rate: null, quota: null }), false);
  assert.equal(refused({ ...acquire, closes: null }), true);
  assert.equal(refused({ ...acquire, want: 4_097 }), true);
  assert.equal(refused({ ...acquire, closes: [1, -1] }), true);
  assert.equal(refused({ type: 'mtlsgate:return', key: 'api:k', closes: [] }), false);
  assert.equal(refused({ type: 'mtlsgate:return', key: 'api:k', closes: 'all' }), true);
  assert.equal(checkToPrimary({ type: 'mtlsgate:toString' }, now), 'unknown type "mtlsgate:toString"');
});
