// Opens the ioredis client for the limiter.
//
// Why ioredis (not node-redis): its `defineCommand` registers a Lua script once and then sends
// EVALSHA (the script's hash, not its source) on every call, falling back to EVAL by itself when
// the server answers NOSCRIPT (e.g. after a Redis restart flushed the script cache); it offers
// per-command timeouts (`commandTimeout`), a switch to fail fast instead of queueing while
// disconnected (`enableOfflineQueue: false`), and the same API for Redis Cluster.
//
// URLs: redis://[user:pass@]host:port[/db] and rediss:// (TLS) connect to one server;
// redis+cluster://host:port[,host:port...] (or any of those with ?cluster=true) connect to a
// Redis Cluster through its seed nodes. Credentials never appear in logs (see `redactRedisUrl`).
import type { Cluster, ClusterNode, Redis, RedisOptions } from 'ioredis';
import { redisDriver } from './redis-driver.cjs';

export type RedisClient = Redis | Cluster;

export class RedisUrlError extends Error {
  override name = 'RedisUrlError';
}

/** The URL without its credentials, for logs and /health. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)[^@/]*@/i, '$1');
}

/** Options that make a dead or slow Redis cost a request `timeoutMs` at most, never a queue. */
function failFastOptions(timeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false, // disconnected: reject at once instead of queueing requests
    maxRetriesPerRequest: 0, // a command in flight when the connection drops is rejected, not resent
    commandTimeout: timeoutMs,
    // A server that accepts bytes but never answers (SIGSTOP, a hung host): after this long
    // without a reply while commands wait, the socket is destroyed and reconnected, so timed-out
    // commands cannot accumulate on a dead connection.
    socketTimeout: Math.max(1000, timeoutMs * 20),
    connectTimeout: Math.max(1000, timeoutMs * 20),
    // Reconnect for ever, quickly: shared counting resumes as soon as Redis is back.
    retryStrategy: (times: number) => Math.min(50 * times, 1000),
    enableAutoPipelining: false,
    // After disconnect() ends the socket, ioredis keeps a timer (2 s by default) to destroy it
    // if it is still open; when the socket is already gone (Redis down, reconnecting) the timer
    // still runs and holds the process that closed the limiter open for 2 s. Destroy at once:
    // nothing is waited for after a disconnect (close() quits first when Redis answers).
    disconnectTimeout: 0,
  };
}

interface ParsedRedisUrl {
  cluster: boolean;
  /** For a single server: the URL to hand ioredis. */
  url: string;
  /** For a cluster: the seed nodes and the credentials/TLS shared by every node. */
  nodes: ClusterNode[];
  nodeOptions: RedisOptions;
}

export function parseRedisUrl(raw: string): ParsedRedisUrl {
  const m = /^(redis|rediss|redis\+cluster|rediss\+cluster):\/\/(?:([^@/]*)@)?([^/?#@]+)(\/[^?#]*)?(\?[^#]*)?$/i.exec(raw.trim());
  if (m === null) {
    throw new RedisUrlError(
      `invalid Redis URL "${redactRedisUrl(raw)}": expected redis://[user:password@]host:port[/db], rediss://... (TLS) or redis+cluster://host:port[,host:port...]`,
    );
  }
  const scheme = m[1].toLowerCase();
  const params = new URLSearchParams(m[5] ?? '');
  const cluster = scheme.endsWith('+cluster') || params.get('cluster') === 'true' || params.get('cluster') === '1';
  const tls = scheme.startsWith('rediss');
  const hosts = m[3].split(',');
  if (!cluster) {
    if (hosts.length > 1) {
      throw new RedisUrlError(`Redis URL "${redactRedisUrl(raw)}" lists several hosts: use redis+cluster://host:port,host:port for a Redis Cluster`);
    }
    params.delete('cluster');
    const query = params.toString();
    return {
      cluster: false,
      url: `${tls ? 'rediss' : 'redis'}://${m[2] !== undefined ? `${m[2]}@` : ''}${m[3]}${m[4] ?? ''}${query ? `?${query}` : ''}`,
      nodes: [],
      nodeOptions: {},
    };
  }
  if (m[4] !== undefined && m[4] !== '/' && m[4] !== '/0') {
    throw new RedisUrlError(`Redis URL "${redactRedisUrl(raw)}": a Redis Cluster has only database 0, remove "${m[4]}"`);
  }
  const nodes = hosts.map((h) => {
    const hm = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h);
    if (hm === null) throw new RedisUrlError(`Redis URL "${redactRedisUrl(raw)}": bad cluster node "${h}" (expected host:port)`);
    return { host: hm[1].replace(/^\[|\]$/g, ''), port: hm[2] !== undefined ? Number(hm[2]) : 6379 };
  });
  const nodeOptions: RedisOptions = {};
  if (m[2] !== undefined) {
    const [user, ...pass] = m[2].split(':');
    if (user) nodeOptions.username = decodeURIComponent(user);
    if (pass.length > 0) nodeOptions.password = decodeURIComponent(pass.join(':'));
  }
  if (tls) nodeOptions.tls = {};
  return { cluster: true, url: '', nodes, nodeOptions };
}

export function openRedis(rawUrl: string, timeoutMs: number): RedisClient {
  const parsed = parseRedisUrl(rawUrl);
  const options = failFastOptions(timeoutMs);
  const { Redis, Cluster } = redisDriver();
  if (!parsed.cluster) return new Redis(parsed.url, options);
  return new Cluster(parsed.nodes, {
    enableOfflineQueue: false,
    enableReadyCheck: true,
    clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000),
    redisOptions: { ...options, ...parsed.nodeOptions },
  });
}
