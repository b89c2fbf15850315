// A separate process with its own Redis limiter, for the "two gateway processes share one
// quota" test: argv = redisUrl keyId quotaMax requests. Prints {"allowed": n}.
import type { BundleKey } from '../../bundle/types.ts';
import { createLimiter } from '../../runtime/limits/index.ts';

const [redisUrl, keyId, quotaMax, requests] = process.argv.slice(2);
const limiter = createLimiter({ redisUrl, redisTimeoutMs: 2000, onError: 'deny' });
const key: BundleKey = {
  id: keyId,
  certificates: [],
  certificate_match: null,
  token_sha256: null,
  policies: [],
  access_rights: {},
  rate: null,
  quota: { max: Number(quotaMax), renewal: 3600 },
  expires: null,
  is_inactive: false,
};
if (!(await limiter.ready!(20_000))) throw new Error('Redis connection not ready');
const decisions = await Promise.all(Array.from({ length: Number(requests) }, () => limiter.check(key, Date.now())));
if (limiter.health().status !== 'ok') throw new Error(`limiter degraded: ${limiter.health().detail}`);
process.stdout.write(JSON.stringify({ allowed: decisions.filter((d) => d.allowed).length }));
await limiter.close();
