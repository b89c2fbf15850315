// Semantic checks on APIs and their resolution to bundle form: the auth-combination table,
// static-mTLS lists (pinned leaves and CA trust anchors), and unique domain + listen_path.
import { checkCaPem, checkTargetUrl } from '../bundle/checks.ts';
import { API_DEFAULTS } from '../bundle/defaults.ts';
import type { BundleApi, BundleCa, CertMatch, Fingerprint, ForwardClientCert, XfccField } from '../bundle/types.ts';
import { caPem, type CertInfo, type CertLoader, SHA256_ENTRY, subjectOf } from './certs.ts';
import type { DiagnosticLog, Site } from './diagnostics.ts';
import { uniqueById } from './ids.ts';
import { resolveMatch } from './match.ts';
import type { ApiDoc, ForwardClientCertSpec } from './model.ts';
import { locate } from './source.ts';

export interface ResolvedApis {
  apis: Map<string, BundleApi>;
  cas: Map<Fingerprint, BundleCa>;
  /** leaf fingerprint -> APIs pinning it */
  pins: Map<Fingerprint, string[]>;
  /** notAfter (ms) of every certificate named by PEM (pinned leaves and CAs). */
  notAfter: Map<Fingerprint, number>;
  /** host ("*" = any) -> listen_path -> api id */
  routes: Map<string, Map<string, string>>;
}

/** A CA as the bundle holds it, or null after reporting why the gateway could not use it. */
function trustAnchor(cert: CertInfo, site: Site, log: DiagnosticLog): BundleCa | null {
  const pem = caPem(cert);
  const checked = checkCaPem(pem);
  if (checked.ok) return { apis: [], pem, subject: subjectOf(cert) };
  log.report('E_CERT_PARSE', site, `CA certificate ${subjectOf(cert)} ${checked.problem}: the gateway would refuse the bundle`);
  return null;
}

const NO_FORWARD: ForwardClientCert = API_DEFAULTS.forward_client_cert;
/** `true` is what forward_client_cert meant before the modes: XFCC with Hash and Subject. */
const XFCC_DEFAULT: XfccField[] = ['Hash', 'Subject'];
const XFCC_ORDER: XfccField[] = ['Hash', 'Cert', 'Subject', 'URI', 'DNS'];

function forwardClientCert(spec: ForwardClientCertSpec | undefined): ForwardClientCert {
  if (spec === undefined || spec === false) return NO_FORWARD;
  if (spec === true) return { key_id_header: null, rfc9440: false, xfcc: XFCC_DEFAULT };
  return {
    key_id_header: spec.key_id_header?.toLowerCase() ?? null,
    rfc9440: spec.rfc9440 ?? false,
    xfcc: XFCC_ORDER.filter((f) => spec.xfcc?.includes(f)),
  };
}

export function normaliseListenPath(p: string): string {
  return p.endsWith('/') ? p : p + '/';
}

export function resolveApis(docs: ApiDoc[], certs: CertLoader, log: DiagnosticLog): ResolvedApis {
  const out: ResolvedApis = { apis: new Map(), cas: new Map(), pins: new Map(), routes: new Map(), notAfter: new Map() };
  const routeOwner = new Map<string, ApiDoc>();
  for (const item of uniqueById(docs, 'api', log).values()) {
    const { doc, spec } = item;
    const at = (path: (string | number)[], atKey = false) => ({ file: doc.file, offset: locate(doc.root, path, atKey) });
    const keyless = spec.use_keyless ?? API_DEFAULTS.use_keyless;
    const useCertificate = spec.auth?.use_certificate ?? API_DEFAULTS.use_certificate;
    const mtls = spec.use_mutual_tls_auth ?? API_DEFAULTS.use_mutual_tls_auth;
    const entries = spec.client_certificates ?? [];

    if (keyless && useCertificate) {
      log.report(
        'E_AUTH_COMBO',
        at(['auth', 'use_certificate']),
        'use_certificate needs token auth, but use_keyless is true (dynamic mTLS maps the certificate to a key; a keyless API has no keys)',
      );
    }
    if (keyless && spec.use_standard_auth === true) {
      log.report('E_AUTH_COMBO', at(['use_standard_auth']), 'use_standard_auth and use_keyless are both true: an API either takes tokens or is keyless');
    }
    if (!keyless && spec.use_standard_auth === false) {
      log.report(
        'E_AUTH_COMBO',
        at(['use_standard_auth']),
        'use_standard_auth is false but use_keyless is not true: the API would have no way to authenticate a key (set use_keyless: true for an open or static-mTLS-only API)',
      );
    }
    if (mtls && entries.length === 0) {
      log.report('E_MTLS_NO_CERTS', at(['use_mutual_tls_auth']), 'use_mutual_tls_auth is true but client_certificates is empty: every client would be refused');
    }
    if (!mtls && entries.length > 0) {
      log.report('W_CERTS_UNUSED', at(['client_certificates'], true), 'client_certificates is set but use_mutual_tls_auth is false: the list is not enforced');
    }

    const pinned = new Set<Fingerprint>();
    const cas = new Set<Fingerprint>();
    const matches: CertMatch[] = [];
    entries.forEach((entry, i) => {
      const site = at(['client_certificates', i]);
      if (typeof entry !== 'string') {
        const m = resolveMatch(entry, (f) => at(['client_certificates', i, f]), doc.file.absPath, certs, out.cas, mtls ? spec.id : null, log);
        if (m !== null) matches.push(m);
        return;
      }
      if (entry.startsWith('sha256:')) {
        const m = SHA256_ENTRY.exec(entry);
        if (!m)
          log.report(
            'E_FIELD_VALUE',
            site,
            `client_certificates[${i}] ${JSON.stringify(entry)}: a fingerprint entry is sha256: followed by 64 hex digits (\`mtlsgate fingerprint FILE\` prints it)`,
          );
        else pinned.add(m[1].toLowerCase());
        return;
      }
      const loaded = certs.load(entry, site, doc.file.absPath) ?? [];
      // A file holding a leaf is that leaf's chain: pin the leaf, and do not let the CAs that
      // came along admit everything they issued. Only a file of CAs alone is a trust anchor.
      const isChain = loaded.some((c) => !c.isCa);
      for (const cert of loaded) {
        out.notAfter.set(cert.fingerprint, cert.notAfter.getTime());
        if (!cert.isCa) {
          pinned.add(cert.fingerprint);
          continue;
        }
        if (isChain) continue;
        cas.add(cert.fingerprint);
        if (mtls) {
          const ca = out.cas.get(cert.fingerprint) ?? trustAnchor(cert, site, log);
          if (ca === null) continue;
          if (!ca.apis.includes(spec.id)) ca.apis.push(spec.id);
          out.cas.set(cert.fingerprint, ca);
        }
      }
    });

    const target = checkTargetUrl(spec.proxy.target_url);
    if (!target.ok) {
      log.report(
        'E_TARGET_URL',
        at(['proxy', 'target_url']),
        `target_url ${JSON.stringify(spec.proxy.target_url)} ${target.problem}: the gateway would refuse the bundle`,
      );
    }

    const domain = spec.domain === undefined ? API_DEFAULTS.domain : spec.domain.toLowerCase();
    const listenPath = normaliseListenPath(spec.proxy.listen_path);
    const routeKey = `${domain ?? '*'} ${listenPath}`;
    const other = routeOwner.get(routeKey);
    if (other) {
      const where = domain === null ? 'any host' : `domain ${domain}`;
      log.report('E_DUPLICATE_ROUTE', at(['proxy', 'listen_path']), `API "${spec.id}" and API "${other.spec.id}" both listen on ${listenPath} on ${where}`, [
        { site: { file: other.doc.file, offset: locate(other.doc.root, ['proxy', 'listen_path']) }, message: `API "${other.spec.id}" listens here` },
      ]);
    } else {
      routeOwner.set(routeKey, item);
      const host = domain ?? '*';
      const paths = out.routes.get(host) ?? new Map<string, string>();
      paths.set(listenPath, spec.id);
      out.routes.set(host, paths);
    }

    // Fields in sorted order: serializeBundle then writes this object as it is, without a copy.
    const api: BundleApi = {
      auth_header_name: spec.auth?.auth_header_name?.toLowerCase() ?? API_DEFAULTS.auth_header_name,
      client_cas: mtls ? [...cas].sort() : [],
      client_certificates: mtls ? [...pinned].sort() : [],
      client_matches: mtls ? matches : [],
      domain,
      forward_client_cert: forwardClientCert(spec.forward_client_cert),
      id: spec.id,
      listen_path: listenPath,
      name: spec.name ?? spec.id,
      strip_auth_data: spec.strip_auth_data ?? API_DEFAULTS.strip_auth_data,
      strip_listen_path: spec.proxy.strip_listen_path ?? API_DEFAULTS.strip_listen_path,
      target_url: spec.proxy.target_url,
      use_certificate: useCertificate,
      use_keyless: keyless,
      use_mutual_tls_auth: mtls,
    };
    out.apis.set(spec.id, api);
    if (mtls) {
      for (const fp of api.client_certificates) {
        const list = out.pins.get(fp);
        if (list) list.push(spec.id);
        else out.pins.set(fp, [spec.id]);
      }
    }
  }
  for (const ca of out.cas.values()) ca.apis.sort();
  for (const list of out.pins.values()) list.sort();
  return out;
}
