// The Redis side of the limiter: algorithm.ts (GCRA rate + fixed-period quota, checked and
// committed together) as ONE Lua script, so a decision is one atomic round trip (EVALSHA).
// Keep the two in step: same clamping, same epsilon, same order (quota first, then rate).
//
// State: one hash per key id, fields tat / iv / qn / qend (times in ms since the epoch, iv the
// GCRA interval in ms the TAT was built with), with a PEXPIRE set
// to the moment the state becomes equivalent to no state, so idle keys vanish on their own.
// One key per script also makes it Redis Cluster-safe (no cross-slot access).
//
// Time: the script reads the Redis server's TIME rather than the gateway's clock. Every gateway
// instance then counts against one clock, so a skewed host can neither spend future credit nor
// see phantom denials. (TIME before writes is allowed because scripts replicate their effects:
// the default from Redis 5 on and the only mode in 7; redis.replicate_commands() turns it on for
// 3.2 and 4.)
import type { Quota, RateLimit } from '../../bundle/types.ts';
import { TAT_EPSILON_MS, type Outcome, type Verdict } from './algorithm.ts';

export const LIMIT_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local rate = tonumber(ARGV[1])      -- requests per period; 0 = no rate limit
local period = tonumber(ARGV[2])    -- ms
local qmax = tonumber(ARGV[3])      -- requests per renewal; -1 = no quota
local renewal = tonumber(ARGV[4])   -- ms
local eps = ${TAT_EPSILON_MS}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local st = redis.call('HMGET', key, 'tat', 'iv', 'qn', 'qend')
local qn, qend, qleft, qreset = 0, 0, -1, 0
if qmax >= 0 then
  local stored_end = tonumber(st[4]) or 0
  if stored_end > now then
    qn = tonumber(st[3]) or 0
    qend = stored_end
    if qend > now + renewal then
      -- renewal shortened: stored even if denied, or the end would move with every request
      qend = now + renewal
      redis.call('HSET', key, 'qend', string.format('%.3f', qend))
    end
  else
    qend = now + renewal
  end
  qreset = qend - now
  if qn >= qmax then
    return {2, -1, 0, math.ceil(qreset), 0, math.ceil(qreset)}
  end
  qleft = qmax - qn
end
local tat, rremaining, rreset = 0, -1, 0
if rate > 0 then
  local interval = period / rate
  local tolerance = period - interval
  tat = math.max(tonumber(st[1]) or 0, now)
  local stored_iv = tonumber(st[2]) or 0
  if tat > now and stored_iv > 0 and math.abs(stored_iv - interval) > 1e-9 then
    -- rate changed: re-express the debt under the new interval (stored even if denied)
    tat = math.min(now + (tat - now) / stored_iv * interval, now + period)
    redis.call('HSET', key, 'tat', string.format('%.3f', tat), 'iv', string.format('%.17g', interval))
  end
  if tat - now > tolerance + eps then
    return {1, 0, math.ceil(tat - now), math.ceil(tat - tolerance - now), qleft, math.ceil(qreset)}
  end
  tat = tat + interval
  rreset = tat - now
  rremaining = math.floor((period - rreset) / interval + eps / interval)
  redis.call('HSET', key, 'tat', string.format('%.3f', tat), 'iv', string.format('%.17g', interval))
end
if qmax >= 0 then
  redis.call('HSET', key, 'qn', qn + 1, 'qend', string.format('%.3f', qend))
  qleft = qleft - 1
end
redis.call('PEXPIRE', key, math.ceil(math.max(rreset, qreset)) + 1)
return {0, rremaining, math.ceil(rreset), 0, qleft, math.ceil(qreset)}
`;

/** Script arguments for a key's (already effective) limits. */
export function scriptArgs(rate: RateLimit | null, quota: Quota | null): Array<string | number> {
  return [rate?.rate ?? 0, rate !== null ? rate.per * 1000 : 0, quota?.max ?? -1, quota !== null ? quota.renewal * 1000 : 0];
}

const VERDICTS: readonly Verdict[] = ['allowed', 'limit.rate', 'limit.quota'];

/** Reads the script's reply: {verdict, rateRemaining, rateResetMs, retryAfterMs, quotaRemaining, quotaResetMs}. */
export function outcomeFromReply(reply: unknown): Outcome {
  if (!Array.isArray(reply) || reply.length !== 6 || !reply.every((n) => typeof n === 'number')) {
    throw new Error(`unexpected reply from the limiter script: ${JSON.stringify(reply)}`);
  }
  const [v, rateRemaining, rateResetMs, retryAfterMs, quotaRemaining, quotaResetMs] = reply as number[];
  const verdict = VERDICTS[v];
  if (verdict === undefined) throw new Error(`unexpected verdict ${v} from the limiter script`);
  return { verdict, rateRemaining, rateResetMs, retryAfterMs, quotaRemaining, quotaResetMs };
}
