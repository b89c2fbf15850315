// access_rights blocks (on policies and keys): every API must exist and every allowed_urls
// regex must compile with RE2 (re2js, the linear-time engine the runtime matches with), and
// should be anchored at the start.
import type { AccessRight, BundleApi } from '../bundle/types.ts';
import type { DiagnosticLog } from './diagnostics.ts';
import { excerpt } from './excerpt.ts';
import type { AccessRightsSpec } from './model.ts';
import { locate, type SourceDoc } from './source.ts';
import { didYouMean } from './suggest.ts';
import { anchoredForm, re2Problem } from './url-pattern.ts';

/** Reports problems; returns the access rights limited to APIs that exist and compiled. */
export function checkAccessRights(
  rights: AccessRightsSpec | undefined,
  doc: SourceDoc,
  owner: string,
  apis: Map<string, BundleApi>,
  brokenApis: ReadonlySet<string>,
  log: DiagnosticLog,
): AccessRightsSpec {
  const valid: AccessRightsSpec = {};
  for (const [apiId, right] of Object.entries(rights ?? {})) {
    if (brokenApis.has(apiId)) continue; // exists, but failed the schema: already reported
    if (!apis.has(apiId)) {
      log.report(
        'E_UNKNOWN_API',
        { file: doc.file, offset: locate(doc.root, ['access_rights', apiId], true) },
        `${owner} grants access to API ${excerpt(apiId)}, which does not exist${didYouMean(apiId, apis.keys())}`,
      );
      continue;
    }
    (right.allowed_urls ?? []).forEach((allowed, i) => {
      const at = locate(doc.root, ['access_rights', apiId, 'allowed_urls', i, 'url']);
      const problem = re2Problem(allowed.url);
      if (problem) {
        // Point into the pattern: past the opening quote of a quoted scalar (exact unless
        // escapes come before the culprit).
        const quoted = doc.file.text[at] === '"' || doc.file.text[at] === "'";
        log.report(
          'E_URL_REGEX',
          { file: doc.file, offset: at + (quoted ? 1 : 0) + problem.index },
          `allowed_urls regex ${excerpt(allowed.url)} cannot run in RE2 (linear time): ${problem.message}`,
        );
        return;
      }
      const anchored = anchoredForm(allowed.url);
      if (anchored !== null) {
        log.report(
          'W_URL_UNANCHORED',
          { file: doc.file, offset: at },
          `allowed_urls regex ${excerpt(allowed.url)} is not anchored: it matches anywhere in the path, not only at its start; write ${excerpt(anchored)}`,
        );
      }
    });
    valid[apiId] = right;
  }
  return valid;
}

/**
 * The union of several access_rights blocks (a key's own and its policies'). An API granted
 * whole anywhere (no allowed_urls) stays whole; otherwise allowed_urls are united per url
 * regex, with methods united too (an entry with no methods allows every method).
 */
export function mergeAccessRights(blocks: AccessRightsSpec[]): Record<string, AccessRight> {
  const merged = new Map<string, Map<string, Set<string> | 'all'> | 'whole'>();
  for (const block of blocks) {
    for (const [apiId, right] of Object.entries(block)) {
      const current = merged.get(apiId);
      if (current === 'whole') continue;
      if (right.allowed_urls === undefined) {
        merged.set(apiId, 'whole');
        continue;
      }
      const urls = current ?? new Map<string, Set<string> | 'all'>();
      for (const { url, methods } of right.allowed_urls) {
        const had = urls.get(url);
        if (had === 'all') continue;
        if (!methods || methods.length === 0) urls.set(url, 'all');
        else {
          const set = had ?? new Set<string>();
          for (const m of methods) set.add(m.toUpperCase());
          urls.set(url, set);
        }
      }
      merged.set(apiId, urls);
    }
  }
  const out: Record<string, AccessRight> = {};
  for (const apiId of [...merged.keys()].sort()) {
    const m = merged.get(apiId)!;
    out[apiId] = {
      allowed_urls:
        m === 'whole'
          ? null
          : [...m.keys()].sort().map((url) => {
              const methods = m.get(url)!;
              return { methods: methods === 'all' ? [] : [...methods].sort(), url };
            }),
    };
  }
  return out;
}
