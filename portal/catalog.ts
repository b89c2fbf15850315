// The portal's catalog: policies that declare a `portal:` block, each offered for the APIs it
// grants that use dynamic mTLS (auth.use_certificate), the only kind where a certificate alone
// identifies a key. Static mTLS lists certificates on the API itself: no self-serve path.
//
// The compiled bundle holds no policies: the compiler hands the portal blocks over with its
// result (`portalPlans`), and the APIs' auth settings come from the compiled APIs (the
// compiler's resolution, not ours). Nothing is parsed here: at 100,000 keys re-reading the
// directory for the catalog cost seconds.
import type { PortalPlan } from '../compiler/index.ts';
import type { BundleApi } from '../bundle/types.ts';

export interface CatalogApi {
  id: string;
  name: string;
  domain: string | null;
  listenPath: string;
}

export interface CatalogEntry {
  /** The policy id: what `apply_policies` of an issued key names. */
  policy: string;
  name: string;
  description: string;
  requireApproval: boolean;
  /** The dynamic-mTLS APIs the policy grants, sorted by id. */
  apis: CatalogApi[];
}

function catalogApi(api: BundleApi): CatalogApi {
  return { id: api.id, name: api.name || api.id, domain: api.domain, listenPath: api.listen_path };
}

/**
 * The catalog for a config directory and its compiled content: only portal policies that grant
 * at least one dynamic-mTLS API, with only those APIs, sorted by display name.
 */
export function loadCatalog(compiled: { plans: readonly PortalPlan[]; apis: Record<string, BundleApi> }): CatalogEntry[] {
  const entries: CatalogEntry[] = [];
  for (const plan of compiled.plans) {
    const p = {
      id: plan.id,
      name: typeof plan.portal.name === 'string' && plan.portal.name.trim() !== '' ? plan.portal.name : plan.id,
      description: typeof plan.portal.description === 'string' ? plan.portal.description : '',
      requireApproval: plan.portal.require_approval === true,
      apiIds: plan.apiIds,
    };
    const apis = p.apiIds
      .map((id) => compiled.apis[id])
      .filter((api): api is BundleApi => api?.use_certificate)
      .map(catalogApi)
      .sort((a, b) => a.id.localeCompare(b.id));
    if (apis.length === 0) continue;
    entries.push({ policy: p.id, name: p.name, description: p.description, requireApproval: p.requireApproval, apis });
  }
  return entries.sort((a, b) => a.name.localeCompare(b.name) || a.policy.localeCompare(b.policy));
}

/** The URL a developer calls an API on through the gateway at `gatewayUrl`. */
export function apiUrl(gatewayUrl: string, api: CatalogApi): string {
  const base = new URL(gatewayUrl);
  // An API bound to a domain answers only on that host (SNI/Host), so the URL must name it.
  if (api.domain) base.hostname = api.domain;
  return base.origin + api.listenPath;
}
