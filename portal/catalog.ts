// The portal's catalog: policies that declare a `portal:` block, each offered for the APIs it
// grants that use dynamic mTLS (auth.use_certificate), the only kind where a certificate alone
// identifies a key. Static mTLS lists certificates on the API itself: no self-serve path.
//
// The compiled bundle holds no policies, so the portal blocks are read from the YAML here; the
// APIs' auth settings come from the compiled content (the compiler's resolution, not ours).
import { DiagnosticLog } from '../compiler/diagnostics.ts';
import { loadConfigFiles } from '../compiler/load.ts';
import { parseSources } from '../compiler/parse.ts';
import type { BundleApi, BundleContent } from '../bundle/types.ts';

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

interface PortalPolicy {
  id: string;
  name: string;
  description: string;
  requireApproval: boolean;
  apiIds: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Policies carrying a well-formed `portal:` block. Malformed documents are the compiler's to report. */
function portalPolicies(dir: string): PortalPolicy[] {
  const found: PortalPolicy[] = [];
  // The compiler's own file walk and parser: the catalog sees exactly the files the bundle is
  // built from, with the same bounds (confinement to the directory, alias expansion).
  const log = new DiagnosticLog(false);
  for (const doc of parseSources(loadConfigFiles(dir, log), log)) {
    const value: unknown = doc.value;
    if (!isRecord(value) || value.kind !== 'policy' || typeof value.id !== 'string' || !isRecord(value.portal)) continue;
    const portal = value.portal;
    found.push({
      id: value.id,
      name: typeof portal.name === 'string' && portal.name.trim() !== '' ? portal.name : value.id,
      description: typeof portal.description === 'string' ? portal.description : '',
      requireApproval: portal.require_approval === true,
      apiIds: isRecord(value.access_rights) ? Object.keys(value.access_rights) : [],
    });
  }
  return found;
}

function catalogApi(api: BundleApi): CatalogApi {
  return { id: api.id, name: api.name || api.id, domain: api.domain, listenPath: api.listen_path };
}

/**
 * The catalog for a config directory and its compiled content: only portal policies that grant
 * at least one dynamic-mTLS API, with only those APIs, sorted by display name.
 */
export function loadCatalog(dir: string, content: BundleContent): CatalogEntry[] {
  const entries: CatalogEntry[] = [];
  for (const p of portalPolicies(dir)) {
    const apis = p.apiIds
      .map((id) => content.apis[id])
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
