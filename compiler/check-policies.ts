// Policies: unique ids, access rights that name real APIs, and portal catalog entries that the
// portal can actually offer (it issues certificate-bound keys, so only dynamic-mTLS APIs).
import type { BundleApi } from '../bundle/types.ts';
import { checkAccessRights } from './check-rights.ts';
import type { DiagnosticLog } from './diagnostics.ts';
import { uniqueById } from './ids.ts';
import { checkLimits } from './limits.ts';
import type { PolicyDoc } from './model.ts';
import { locate } from './source.ts';

export function checkPolicies(docs: PolicyDoc[], apis: Map<string, BundleApi>, brokenApis: ReadonlySet<string>, log: DiagnosticLog): Map<string, PolicyDoc> {
  const policies = uniqueById(docs, 'policy', log);
  for (const p of policies.values()) {
    const rights = checkAccessRights(p.spec.access_rights, p.doc, `policy "${p.spec.id}"`, apis, brokenApis, log);
    checkLimits(p.spec, p.doc, log);
    if (p.spec.portal && !Object.keys(rights).some((id) => apis.get(id)?.use_certificate)) {
      log.report(
        'W_PORTAL_NO_DYNAMIC',
        { file: p.doc.file, offset: locate(p.doc.root, ['portal'], true) },
        `policy "${p.spec.id}" is offered in the portal but grants no API with auth.use_certificate: portal keys are identified by their certificate, so they could reach nothing`,
      );
    }
  }
  return policies;
}
