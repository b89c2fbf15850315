// Tyk policies (one policy, a /tyk/policies array, a policies.json map of id -> policy, or a
// Dashboard {"Data": [...]} listing) as kind: policy. Mapped: id (or _id), access_rights
// (allowed_urls with methods), rate, per, quota_max, quota_renewal_rate; is_inactive turns the
// keys that apply the policy inactive. The name goes into the YAML header.
import type { PolicySpec } from '../compiler/model.ts';
import type { ImportContext } from './context.ts';
import { reportLeftovers } from './leftovers.ts';
import { FatalImportError, ptr } from './report.ts';
import { convertLimits, convertRights } from './rights.ts';
import { partitionsOf, reportPartitions, type PolicyFacts } from './partitions.ts';
import { bool, isObject, num, str, type JsonObject } from './values.ts';

const HANDLED = new Set([
  'id',
  '_id',
  'name',
  'access_rights',
  'rate',
  'per',
  'quota_max',
  'quota_renewal_rate',
  'active',
  'is_inactive',
  'state',
  'partitions',
]);
const SILENT = new Set(['org_id', 'last_updated', 'quota_renews']);
/** Tyk writes -1 for "off" in these. */
const OFF_WHEN_NEGATIVE = ['throttle_interval', 'throttle_retry_limit', 'max_query_depth', 'key_expires_in'];

/**
 * Fields of a Tyk policy a policies.json entry may hold without access_rights (a policy of
 * limits only, or one a partition restricts): Tyk's own policies.json fixtures have such entries.
 */
const POLICY_FIELDS = [
  'access_rights',
  'partitions',
  'rate',
  'per',
  'quota_max',
  'quota_renewal_rate',
  'key_expires_in',
  'is_inactive',
  'tags',
  'throttle_interval',
  'max_query_depth',
];

/**
 * A policies.json map (policy id -> policy): every entry an object with a policy field, and one
 * at least with access_rights (so a map of something else is not taken for policies).
 */
export function isPolicyMap(o: JsonObject): boolean {
  const entries = Object.values(o);
  return (
    entries.length > 0 &&
    entries.every((v) => isObject(v) && POLICY_FIELDS.some((f) => f in v)) &&
    entries.some((v) => isObject(v) && isObject(v.access_rights))
  );
}

export function isPolicy(o: JsonObject): boolean {
  return isObject(o.access_rights) && ('partitions' in o || 'key_expires_in' in o || '_id' in o || ('id' in o && !('apply_policies' in o)));
}

/** Tyk policy ids (id and _id) -> mtlsgate policy id; inactive policies; what keys' checks need of each (importer/partitions.ts). */
export interface PolicyIndex {
  ids: Map<string, string>;
  inactive: Set<string>;
  facts: Map<string, PolicyFacts>;
}

export function convertPolicy(ctx: ImportContext, index: PolicyIndex, p: JsonObject, file: string, base: string, mapKey?: string): void {
  const tykId = str(p.id) || str(p._id) || mapKey;
  if (!tykId) throw new FatalImportError(file, base, 'policy has neither id nor _id');
  const id = ctx.policyIds.add(tykId, file, ptr(base, str(p.id) ? 'id' : '_id'));
  for (const alias of [tykId, str(p.id), str(p._id), mapKey]) if (alias) index.ids.set(alias, id);
  if (id !== tykId) ctx.report.note(file, base, `policy ${JSON.stringify(tykId)} is "${id}" in mtlsgate`);
  const spec: PolicySpec = { kind: 'policy', id };
  // A partitioned policy contributes only its partitions in Tyk: what it leaves out is not written.
  const partitions = partitionsOf(p);
  const refusedBecause = reportPartitions(ctx, file, base, p, partitions, tykId);
  const rights = partitions.acl ? convertRights(ctx, file, ptr(base, 'access_rights'), p.access_rights, { kind: 'policy', id }) : undefined;
  if (rights) spec.access_rights = rights;
  const { rate, per, quota_max, quota_renewal_rate } = convertLimits(ctx, file, base, p);
  const limits = {
    ...(partitions.rate && rate !== undefined ? { rate, per } : {}),
    ...(partitions.quota && quota_max !== undefined ? { quota_max, ...(quota_renewal_rate !== undefined ? { quota_renewal_rate } : {}) } : {}),
  };
  Object.assign(spec, limits);
  const tykRights = isObject(p.access_rights) ? p.access_rights : {};
  const limitApis = new Set(Object.keys(tykRights).flatMap((k) => ctx.apis.get(k)?.spec.id ?? []));
  index.facts.set(id, {
    tykId,
    partitions,
    rights,
    limits,
    limitApis,
    hasTykRights: Object.keys(tykRights).length > 0,
    ...(refusedBecause ? { refusedBecause } : {}),
  });
  if (bool(p.is_inactive)) {
    index.inactive.add(id);
    ctx.report.note(file, ptr(base, 'is_inactive'), 'the policy is inactive: keys that apply it are written with is_inactive: true');
  }
  // The Dashboard's policy state: "deny" refuses the keys that apply it; a draft is not applied. Both fail closed here.
  const state = str(p.state);
  if (state !== undefined && state !== 'active') {
    index.inactive.add(id);
    ctx.report.note(file, ptr(base, 'state'), `the policy's state is ${JSON.stringify(state)}: keys that apply it are written with is_inactive: true`);
  }
  if (p.active === false) ctx.report.note(file, ptr(base, 'active'), 'the policy is not active in Tyk (active: false); imported anyway');
  const silent = new Set(SILENT);
  for (const f of OFF_WHEN_NEGATIVE) if ((num(p[f]) ?? 0) <= 0) silent.add(f);
  reportLeftovers(ctx.report, file, base, p, HANDLED, silent);
  const name = str(p.name);
  ctx.policies.push({ spec, file, pointer: base, origin: `Tyk policy ${JSON.stringify(name ?? tykId)} (id ${tykId})` });
}
