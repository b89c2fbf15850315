// Proof of possession, the submission limiter and sessions, as units: signatures made by the
// real `openssl dgst -sha256 -sign` command the portal shows, for RSA and ECDSA keys made by
// openssl; one-time challenges bound to a browser; token buckets per client; session cookies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { ChallengeStore, CHALLENGE_TTL_MS, checkProof, signCommand } from '../portal/proof.ts';
import { SubmissionLimiter } from '../portal/rate-limit.ts';
import { SessionStore } from '../portal/session.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { runSignCommand } from './helpers/portal-fixtures.ts';
import { run } from './helpers/serve-fixtures.ts';

/** A self-signed client certificate and its key, made by openssl (as a developer would). */
async function opensslPair(dir: string, name: string, newkey: string[]): Promise<{ cert: string; keyFile: string }> {
  const keyFile = join(dir, `${name}-key.pem`);
  const certFile = join(dir, `${name}.pem`);
  const r = await run('openssl', ['req', '-x509', '-nodes', ...newkey, '-keyout', keyFile, '-out', certFile, '-days', '30', '-subj', `/CN=${name}`]);
  assert.equal(r.code, 0, r.stderr);
  return { cert: readFileSync(certFile, 'utf8'), keyFile };
}

test('checkProof verifies what `openssl dgst -sha256 -sign` makes, for RSA and ECDSA, and nothing else', async () => {
  const t = tempDir('portal-proof');
  try {
    const rsa = await opensslPair(t.dir, 'rsa', ['-newkey', 'rsa:2048']);
    const ec = await opensslPair(t.dir, 'ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const ed = await opensslPair(t.dir, 'ed', ['-newkey', 'ed25519']);
    const store = new ChallengeStore();
    const challenge = store.challengeFor('browser-1');
    const command = signCommand(challenge);
    assert.equal(command, `printf '%s' '${challenge}' | openssl dgst -sha256 -sign my-key.pem | openssl base64 -A`);
    for (const pair of [rsa, ec]) {
      const signature = await runSignCommand(command, pair.keyFile);
      assert.equal(checkProof(pair.cert, challenge, signature), null);
      // Pasted with line breaks (a terminal wraps it): still fine.
      assert.equal(checkProof(pair.cert, challenge, signature.replace(/(.{20})/g, '$1\n')), null);
      // Another challenge, or the other certificate: refused.
      assert.equal(checkProof(pair.cert, store.challengeFor('browser-2'), signature), 'mismatch');
      assert.equal(checkProof(pair === rsa ? ec.cert : rsa.cert, challenge, signature), 'mismatch');
    }
    assert.equal(checkProof(rsa.cert, challenge, ''), 'missing');
    assert.equal(checkProof(rsa.cert, challenge, '<script>'), 'malformed');
    assert.equal(checkProof(ed.cert, challenge, 'AAAA'), 'unsupported_key');
  } finally {
    t.cleanup();
  }
});

test('a challenge is usable once, only by the browser it was shown to, until it expires', () => {
  let now = 1_000_000;
  const store = new ChallengeStore(() => now);
  const c = store.challengeFor('a');
  assert.match(c, /^mtlsgate-portal-proof:[A-Za-z0-9_-]{32}$/);
  assert.equal(store.challengeFor('a', c), c, 'a form shown again keeps its challenge');
  assert.notEqual(store.challengeFor('b', c), c, 'another browser gets its own');
  assert.equal(store.consume('b', c), false);
  assert.equal(store.consume('a', 'mtlsgate-portal-proof:' + 'A'.repeat(32)), false);
  assert.equal(store.consume('a', c), true);
  assert.equal(store.consume('a', c), false, 'used up');
  const late = store.challengeFor('a');
  now += CHALLENGE_TTL_MS;
  assert.equal(store.consume('a', late), false, 'expired');
});

test('the submission limiter: a burst per client, refilled over the hour, every named bucket must have a token', () => {
  let now = 0;
  const limiter = new SubmissionLimiter({ burst: 2, perHour: 6 }, () => now);
  assert.equal(limiter.take(['addr:1']), 0);
  assert.equal(limiter.take(['addr:1']), 0);
  const wait = limiter.take(['addr:1']);
  assert.ok(wait > 0 && wait <= 600, String(wait));
  assert.equal(limiter.take(['addr:2']), 0, 'another client has its own budget');
  // A signed-in subject is limited across addresses too.
  assert.equal(limiter.take(['addr:3', 'sub:x']), 0);
  assert.equal(limiter.take(['addr:4', 'sub:x']), 0);
  assert.ok(limiter.take(['addr:5', 'sub:x']) > 0);
  now += 600_000; // 10 minutes: one submission regained
  assert.equal(limiter.take(['addr:1']), 0);
  assert.ok(limiter.take(['addr:1']) > 0);
});

test('sessions: HttpOnly, SameSite=Lax, an expiry, Secure and __Host- over https; a signed-out or forged cookie is nothing', () => {
  let now = 0;
  const req = (cookie: string) => ({ headers: { cookie } }) as unknown as IncomingMessage;
  const plain = new SessionStore(false, 3_600_000, () => now);
  const user = { sub: 'dana', email: 'dana@example.com', name: 'Dana', admin: false };
  const { setCookie } = plain.create(user);
  assert.match(setCookie, /^mtlsgate_session=[\w-]{32}\.[\w-]{43}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Lax$/);
  const cookie = setCookie.split(';')[0]!;
  assert.equal(plain.get(req(cookie))?.user.sub, 'dana');
  const [id, mac] = cookie.split('=')[1]!.split('.');
  assert.equal(plain.get(req(`mtlsgate_session=${id}.${mac!.slice(0, -1)}${mac!.endsWith('A') ? 'B' : 'A'}`)), null, 'forged signature');
  assert.equal(new SessionStore(false).get(req(cookie)), null, 'another process secret');
  now += 3_600_000;
  assert.equal(plain.get(req(cookie)), null, 'expired');
  now = 0;
  const again = plain.create(user).setCookie.split(';')[0]!;
  const session = plain.get(req(again));
  assert.match(plain.destroy(session), /^mtlsgate_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Lax$/);
  assert.equal(plain.get(req(again)), null, 'signed out');
  const secure = new SessionStore(true);
  assert.match(secure.create(user).setCookie, /^__Host-mtlsgate_session=[\w.-]+; Path=\/; Max-Age=28800; HttpOnly; SameSite=Lax; Secure$/);
});
