// A process that opens a Redis limiter, waits until Redis goes away under it, closes the limiter
// and then has nothing left to do: argv = redisUrl. Prints "ready" once connected and "closed"
// once close() resolved; the test times how long the process lives after that.
import { createLimiter } from '../../runtime/limits/index.ts';
import type { RedisLimiter } from '../../runtime/limits/redis.ts';

const limiter = createLimiter({ redisUrl: process.argv[2], redisTimeoutMs: 500 }) as RedisLimiter;
if (!(await limiter.ready(20_000))) throw new Error('Redis connection not ready');
process.stdout.write('ready\n');
while (limiter.client.status === 'ready') await new Promise((r) => setTimeout(r, 20));
await limiter.close();
process.stdout.write('closed\n');
