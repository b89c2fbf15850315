// A separate process with its own Redis limiter, for the "two gateway processes share one
// quota" test: argv = redisUrl keyId quotaMax requests. Prints {"allowed": n}.
import type { BundleKey } from '../../runtime/bundle.ts';
import { createLimiter } from '../../runtime/limits/index.ts';
import type { RedisLimiter } from '../../runtime/limits/redis.ts';

const [redisUrl, keyId, quotaMax, requests] = process.argv.slice(2);
const limiter = createLimiter({ redisUrl, redisTimeoutMs: 2000, onError: 'deny' }) as RedisLimiter;
const key: BundleKey = {
  id: keyId,
  certificate: null,
  token_sha256: null,
  policies: [],
  access_rights: {},
  rate: null,
  quota: { max: Number(quotaMax), renewal: 3600 },
  expires: null,
  is_inactive: false,
};
const deadline = Date.now() + 20_000;
while (limiter.client.status !== 'ready') {
  if (Date.now() > deadline) throw new Error('Redis connection not ready');
  await new Promise((r) => setTimeout(r, 20));
}
const decisions = await Promise.all(Array.from({ length: Number(requests) }, () => limiter.check(key, Date.now())));
if (limiter.health().status !== 'ok') throw new Error(`limiter degraded: ${limiter.health().detail}`);
process.stdout.write(JSON.stringify({ allowed: decisions.filter((d) => d.allowed).length }));
await limiter.close();
