// Tyk policy partitions, and what Tyk does when several policies apply to one key
// (internal/policy/apply.go in Tyk's repository, read for this; no code taken):
// - `partitions` {acl, rate_limit, quota, complexity}: a policy with any of them set contributes
//   only those parts. Without `acl` it grants no API (its rights only carry limits to the APIs
//   other policies grant); without `rate_limit` its rate is not applied; without `quota` its quota.
// - `per_api`: each API's limit is its right's `limit`, else the policy's, counted per API. A
//   policy with per_api and any other partition, or a key mixing per_api policies with
//   partitioned ones, is refused by Tyk when the key is used ("cannot apply multiple policies
//   when some have per_api set and some are partitioned"): the key is not found, so it gets in nowhere.
// - rights on one API from several policies are merged: allowed_urls by union, where a whole-API
//   right (no allowed_urls) adds nothing, so the API stays limited to the other policies' paths.
// - limits: per API, the most generous of the policies that carry that API's limits.
// mtlsgate merges a key's policies at compile time: rights by union (a whole-API right wins), and
// the most generous rate and quota over the whole key. The importer writes what Tyk applies of
// each policy, refuses (is_inactive) what Tyk refuses, and reports the rest at the key.
import type { AccessRightsSpec, LimitsSpec } from '../compiler/model.ts';
import { mostGenerousQuota, mostGenerousRate } from '../compiler/limits.ts';
import type { ImportContext } from './context.ts';
import { ptr } from './report.ts';
import { bool, isObject, type JsonObject } from './values.ts';

export interface Partitions {
  acl: boolean;
  rate: boolean;
  quota: boolean;
  perApi: boolean;
  /** Any of acl, rate_limit, quota, complexity: the policy is partitioned. */
  partitioned: boolean;
}

/** What a key's checks need of an imported policy. */
export interface PolicyFacts {
  tykId: string;
  partitions: Partitions;
  /** The rights as written (none for a policy without the acl partition). */
  rights: AccessRightsSpec | undefined;
  /** The imported APIs its Tyk access_rights name (what its rate and quota apply to, acl partition or not). */
  limitApis: Set<string>;
  limits: LimitsSpec;
  /** Has access_rights in Tyk (per_api with none sets nothing). */
  hasTykRights: boolean;
  /** Tyk refuses every key that applies it: why. */
  refusedBecause?: string;
}

export function partitionsOf(p: JsonObject): Partitions {
  const o = isObject(p.partitions) ? p.partitions : {};
  const acl = bool(o.acl);
  const rate = bool(o.rate_limit);
  const quota = bool(o.quota);
  const partitioned = acl || rate || quota || bool(o.complexity);
  // Not partitioned: the policy applies whole.
  return partitioned
    ? { acl, rate, quota, perApi: bool(o.per_api), partitioned }
    : { acl: true, rate: true, quota: true, perApi: bool(o.per_api), partitioned };
}

/**
 * Reports a policy's partitions (at `base`/partitions) and returns what Tyk refuses keys for,
 * if anything. The caller leaves out the parts a partition turns off.
 */
export function reportPartitions(ctx: ImportContext, file: string, base: string, p: JsonObject, part: Partitions, tykId: string): string | undefined {
  const at = ptr(base, 'partitions');
  if (part.perApi && part.partitioned) {
    const why = `Tyk refuses every key that applies policy ${JSON.stringify(tykId)}: it sets per_api together with other partitions ("cannot apply policy ... which has per_api and any of partitions set")`;
    ctx.report.note(file, at, `${why}; keys that apply it are written with is_inactive: true`);
    return why;
  }
  if (part.perApi) {
    ctx.report.drop(
      file,
      at,
      "partitions.per_api not converted: Tyk counts each API's limit (its right's limit, else the policy's rate and quota) separately; mtlsgate counts the policy's rate and quota once across all of a key's APIs",
    );
    return undefined;
  }
  if (!part.partitioned) return undefined;
  const off = [
    !part.acl && isObject(p.access_rights) && Object.keys(p.access_rights).length > 0
      ? 'access_rights (no acl partition: it grants no API; keys get their APIs from other policies)'
      : '',
    !part.rate && typeof p.rate === 'number' && p.rate > 0 ? 'rate and per (no rate_limit partition)' : '',
    !part.quota && typeof p.quota_max === 'number' && p.quota_max !== 0 ? 'quota (no quota partition)' : '',
  ].filter((s) => s !== '');
  if (off.length > 0) ctx.report.note(file, at, `partitioned policy: not written, as Tyk does not apply them: ${off.join('; ')}`);
  return undefined;
}

const rateOf = (l: LimitsSpec) => (l.rate !== undefined && l.per !== undefined ? l.rate / l.per : undefined);
const showRate = (l: LimitsSpec) => `${l.rate} per ${l.per} s`;

/**
 * The Tyk outcome of applying `applied` (in order) to one key: why Tyk refuses the key, or
 * undefined; and the combinations mtlsgate grants more for, reported at `file#at`.
 */
export function checkCombination(ctx: ImportContext, facts: PolicyFacts[], file: string, at: string): string | undefined {
  const refused = facts.find((f) => f.refusedBecause !== undefined);
  if (refused) return refused.refusedBecause;
  // Tyk's order-dependent check: a partitioned policy after a per_api one (with rights), or a per_api one right after a partitioned one.
  let didPerApi = false;
  let didPartition = false;
  for (const f of facts) {
    const mixed = f.partitions.perApi ? didPartition : f.partitions.partitioned && didPerApi;
    if (mixed)
      return `Tyk refuses this key: it applies per_api and partitioned policies together (${facts.map((x) => x.tykId).join(', ')}: "cannot apply multiple policies when some have per_api set and some are partitioned")`;
    if (f.partitions.perApi) didPerApi ||= f.hasTykRights;
    else didPartition = f.partitions.partitioned;
  }
  if (facts.length < 2) return undefined;
  // Rights on one API from several policies: Tyk's union of allowed_urls ignores a whole-API right.
  const apis = new Set(facts.flatMap((f) => Object.keys(f.rights ?? {})));
  for (const api of apis) {
    const granting = facts.filter((f) => f.rights?.[api] !== undefined);
    const whole = granting.filter((f) => f.rights![api].allowed_urls === undefined);
    const paths = granting.filter((f) => f.rights![api].allowed_urls !== undefined);
    if (whole.length > 0 && paths.length > 0)
      ctx.report.drop(
        file,
        at,
        `API "${api}": Tyk merges the rights of policies ${[...whole, ...paths].map((f) => f.tykId).join(', ')} into the allowed_urls of ${paths.map((f) => f.tykId).join(', ')} only ` +
          `(a right without allowed_urls adds no path to the union), so this key reached those paths alone; mtlsgate grants it the whole API (a whole-API right wins its union). ` +
          `Give ${whole.map((f) => f.tykId).join(', ')} the same allowed_urls on "${api}", or apply one policy`,
        'wider',
      );
  }
  // Limits: Tyk limits each API by the most generous of the policies carrying its rate; mtlsgate one rate, the key's most generous, everywhere.
  const best = mostGenerousRate(facts.map((f) => f.limits));
  if (best !== null)
    for (const api of apis) {
      const carrying = facts.filter((f) => f.partitions.rate && f.limitApis.has(api) && rateOf(f.limits) !== undefined);
      const there = mostGenerousRate(carrying.map((f) => f.limits));
      if (there !== null && there.rate / there.per < best.rate / best.per)
        ctx.report.drop(
          file,
          at,
          `API "${api}": Tyk limits this key to ${showRate(there)} there (the most generous of ${carrying.map((f) => f.tykId).join(', ')}); mtlsgate applies the key's most generous rate, ${showRate(best)}, on every API`,
          'wider',
        );
    }
  const bestQuota = mostGenerousQuota(facts.map((f) => f.limits));
  for (const api of apis) {
    const carrying = facts.filter((f) => f.partitions.quota && f.limitApis.has(api) && f.limits.quota_max !== undefined);
    if (carrying.length === 0) continue;
    const there = mostGenerousQuota(carrying.map((f) => f.limits));
    const wider = bestQuota === null ? there !== null : there !== null && there.max / there.renewal < bestQuota.max / bestQuota.renewal;
    if (wider)
      ctx.report.drop(
        file,
        at,
        `API "${api}": Tyk's quota there is ${there!.max} per ${there!.renewal} s (the most generous of ${carrying.map((f) => f.tykId).join(', ')}); mtlsgate applies the key's most generous quota, ${bestQuota === null ? 'unlimited' : `${bestQuota.max} per ${bestQuota.renewal} s`}, on every API`,
        'wider',
      );
  }
  return undefined;
}
