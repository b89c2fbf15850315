// Rate limits and quotas (policies and keys): the checks the schema cannot express, and the
// "most generous declared value wins" merge. Absent = not declared; the runtime reads null as
// unlimited, so a key with no declared rate anywhere is unlimited.
import { MAX_LIMIT_SECONDS } from '../bundle/checks.ts';
import type { Quota, RateLimit } from '../bundle/types.ts';
import type { DiagnosticLog } from './diagnostics.ts';
import type { LimitsSpec } from './model.ts';
import type { RefusedDoc } from './schema.ts';
import { locate, type SourceDoc } from './source.ts';

/** How a number too large for the limiter reads in a message. */
const seconds = (n: number) => `${n.toPrecision(4).replace(/\.?0+(e|$)/, '$1')} s`;

function checkMagnitudes(spec: LimitsSpec, doc: SourceDoc, log: DiagnosticLog): void {
  const at = (field: string) => ({ file: doc.file, offset: locate(doc.root, [field]) });
  for (const field of ['per', 'quota_renewal_rate'] as const) {
    const v = spec[field];
    if (v !== undefined && v > MAX_LIMIT_SECONDS)
      log.report('E_FIELD_VALUE', at(field), `${field} ${seconds(v)} is longer than a limit may last: at most ${MAX_LIMIT_SECONDS} s (100 years)`);
  }
  if (spec.rate !== undefined && spec.per !== undefined && spec.per <= MAX_LIMIT_SECONDS && spec.per / spec.rate > MAX_LIMIT_SECONDS)
    log.report(
      'E_FIELD_VALUE',
      at('rate'),
      `rate ${spec.rate} per ${spec.per} s admits one request every ${seconds(spec.per / spec.rate)}: at most ${MAX_LIMIT_SECONDS} s (100 years) between two (raise rate, or lower per)`,
    );
  for (const field of ['rate', 'quota_max'] as const) {
    const v = spec[field];
    if (v !== undefined && v > Number.MAX_SAFE_INTEGER)
      log.report(
        'E_FIELD_VALUE',
        at(field),
        `${field} ${v} is past ${Number.MAX_SAFE_INTEGER}, the largest count kept exactly (for no limit, leave it out${field === 'quota_max' ? ' or write -1' : ''})`,
      );
  }
}

export function checkLimits(spec: LimitsSpec, doc: SourceDoc, log: DiagnosticLog): void {
  checkMagnitudes(spec, doc, log);
  if (spec.quota_max === 0) {
    log.report(
      'E_FIELD_VALUE',
      { file: doc.file, offset: locate(doc.root, ['quota_max']) },
      'quota_max 0 would refuse every request: use -1 (or leave it out) for unlimited, or is_inactive: true to turn a key off',
    );
  } else if (spec.quota_max !== undefined && spec.quota_max > 0 && spec.quota_renewal_rate === undefined) {
    log.report(
      'E_MISSING_FIELD',
      { file: doc.file, offset: locate(doc.root, ['quota_max'], true) },
      'quota_max needs quota_renewal_rate (the quota period in seconds)',
    );
  }
}

/**
 * checkLimits for policies and keys the schema refused (a rate without per, say): the quota
 * checks need only quota_max and quota_renewal_rate, so when those two are well-typed their
 * problems show in the same run instead of the next one.
 */
export function checkLimitsOfBroken(refused: readonly RefusedDoc[], log: DiagnosticLog): void {
  for (const r of refused) {
    if (r.kind !== 'policy' && r.kind !== 'key') continue;
    const max = r.value.quota_max;
    const renewal = r.value.quota_renewal_rate;
    if (!Number.isInteger(max) || (max as number) < -1) continue;
    if (renewal !== undefined && !(typeof renewal === 'number' && renewal > 0)) continue;
    checkLimits({ quota_max: max as number, quota_renewal_rate: renewal as number | undefined }, r.doc, log);
  }
}

/** The most generous declared rate (highest rate/per), or null when none is declared. */
export function mostGenerousRate(sources: LimitsSpec[]): RateLimit | null {
  let best: RateLimit | null = null;
  for (const s of sources) {
    if (s.rate === undefined || s.per === undefined) continue;
    const r = { per: s.per, rate: s.rate };
    if (!best || r.rate / r.per > best.rate / best.per || (r.rate / r.per === best.rate / best.per && r.per > best.per)) best = r;
  }
  return best;
}

/** The most generous declared quota; -1 anywhere means unlimited (null), as does none declared. */
export function mostGenerousQuota(sources: LimitsSpec[]): Quota | null {
  let best: Quota | null = null;
  for (const s of sources) {
    if (s.quota_max === undefined) continue;
    if (s.quota_max === -1) return null;
    if (s.quota_renewal_rate === undefined || s.quota_max <= 0) continue;
    const q = { max: s.quota_max, renewal: s.quota_renewal_rate };
    if (!best || q.max / q.renewal > best.max / best.renewal || (q.max / q.renewal === best.max / best.renewal && q.renewal > best.renewal)) best = q;
  }
  return best;
}
