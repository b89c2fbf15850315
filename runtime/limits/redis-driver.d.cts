// Types of redis-driver.cjs.
import type * as IORedis from 'ioredis';

/** The ioredis module, loaded on the first call. */
export declare function redisDriver(): typeof IORedis;
