// Redis Cluster URLs: a real 3-master cluster on loopback; keys of many ids (spread over all
// three masters' slots) are limited exactly, and bad URLs are refused with a clear message.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BundleKey } from '../bundle/types.ts';
import { createLimiter, RedisUrlError, type Limiter } from '../runtime/limits/index.ts';
import { parseRedisUrl, redactRedisUrl } from '../runtime/limits/redis-connection.ts';
import { RedisClusterServers } from './helpers/redis.ts';
import { keyWithDefaults } from './helpers/bundle-builder.ts';

function key(id: string): BundleKey {
  return keyWithDefaults(id, { rate: { rate: 5, per: 60 }, quota: { max: 100, renewal: 3600 } });
}

describe('Redis URLs', () => {
  test('single server, TLS and cluster forms are recognised', () => {
    assert.deepEqual(parseRedisUrl('redis://:s3cret@127.0.0.1:6380/2'), {
      cluster: false,
      url: 'redis://:s3cret@127.0.0.1:6380/2',
      nodes: [],
      nodeOptions: {},
    });
    assert.equal(parseRedisUrl('rediss://h:6380').url, 'rediss://h:6380');
    const c = parseRedisUrl('redis+cluster://user:p%40ss@10.0.0.1:7000,10.0.0.2');
    assert.equal(c.cluster, true);
    assert.deepEqual(c.nodes, [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 6379 },
    ]);
    assert.deepEqual(c.nodeOptions, { username: 'user', password: 'p@ss' });
    assert.equal(parseRedisUrl('redis://10.0.0.1:7000?cluster=true').cluster, true);
    assert.deepEqual(parseRedisUrl('rediss+cluster://[::1]:7000').nodeOptions, { tls: {} });
  });

  test('malformed or ambiguous URLs are refused with a message that says what to write', () => {
    assert.throws(
      () => createLimiter({ redisUrl: 'http://127.0.0.1:6379' }),
      (e: Error) => e instanceof RedisUrlError && /expected redis:\/\//.test(e.message),
    );
    assert.throws(() => parseRedisUrl('redis://a:1,b:2'), /use redis\+cluster:\/\//);
    assert.throws(() => parseRedisUrl('redis+cluster://a:1/3'), /only database 0/);
    assert.throws(
      () => parseRedisUrl('redis://:hunter2@'),
      (e: Error) => !e.message.includes('hunter2'),
    );
  });

  test('credentials never reach logs', () => {
    assert.equal(redactRedisUrl('redis://user:hunter2@h:6379/0'), 'redis://h:6379/0');
    assert.equal(redactRedisUrl('redis+cluster://:x@a:1,b:2'), 'redis+cluster://a:1,b:2');
  });
});

describe('Redis Cluster', () => {
  let cluster: RedisClusterServers;
  const open: Limiter[] = [];
  before(async () => {
    cluster = await RedisClusterServers.start();
  });
  after(async () => {
    for (const l of open) await l.close();
    await cluster?.close();
  });

  test('redis+cluster:// limits keys on every master exactly, shared by two limiters', async () => {
    const a = createLimiter({ redisUrl: cluster.url, redisTimeoutMs: 1000, onError: 'deny' });
    const b = createLimiter({ redisUrl: cluster.url, redisTimeoutMs: 1000, onError: 'deny' });
    open.push(a, b);
    for (const l of [a, b]) assert.equal(await l.ready!(20_000), true, 'cluster client ready');
    const keys = Array.from({ length: 30 }, (_, i) => key(`cluster-key-${i}`));
    const decisions = await Promise.all(
      keys.flatMap((k) => Array.from({ length: 8 }, (_, i) => Promise.resolve((i % 2 ? a : b).check(k, Date.now())).then((d) => ({ id: k.id, d })))),
    );
    for (const k of keys) {
      const mine = decisions.filter((x) => x.id === k.id);
      assert.equal(mine.filter((x) => x.d.allowed).length, 5, k.id);
      assert.ok(
        mine.filter((x) => !x.d.allowed).every((x) => x.d.code === 'limit.rate'),
        k.id,
      );
    }
    assert.deepEqual(a.health(), { status: 'ok' });
  });
});
