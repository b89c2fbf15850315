// ioredis is loaded when a Redis limiter is opened, not when the gateway starts
// (runtime/limits/redis-driver.cts). Loaded at start, its RESP3 decoder's
// `class VerbatimString extends String` made V8's optimising compiler treat every method load on
// a string in the request path (`s.charCodeAt` in the host, path and log-line loops) as a generic
// property lookup: ~5,000 instructions per keep-alive request (bench/keepalive-callgrind.sh).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { sep } from 'node:path';
import { test } from 'node:test';

const ioredisModules = () => Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes(`${sep}node_modules${sep}ioredis${sep}`));

test('the gateway without --redis never loads ioredis; a Redis limiter loads it when opened', async () => {
  // What `serve` runs: the supervisor, the gateway, the limiter factory and the in-process store.
  const { createLimiter } = await import('../runtime/limits/index.ts');
  await import('../runtime/supervisor.ts');
  const memory = createLimiter({});
  await memory.close();
  assert.deepEqual(ioredisModules(), []);

  const redis = createLimiter({ redisUrl: 'redis://127.0.0.1:1', redisTimeoutMs: 50 });
  try {
    assert.ok(ioredisModules().length > 0, 'a Redis limiter uses ioredis');
  } finally {
    await redis.close();
  }
});
