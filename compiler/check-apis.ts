// Semantic checks on APIs and their resolution to bundle form: the auth-combination table,
// static-mTLS lists (pinned leaves and CA trust anchors), and unique domain + listen_path.
import { isAbsolute } from 'node:path';
import { checkCaPem, checkTargetUrl } from '../bundle/checks.ts';
import { API_DEFAULTS } from '../bundle/defaults.ts';
import type { BundleApi, BundleCa, CertMatch, Fingerprint, ForwardClientCert, UpstreamTls, XfccField } from '../bundle/types.ts';
import { parsePin } from '../cert/fingerprint.ts';
import { caPem, type CertInfo, type CertLoader, isInlinePem, subjectOf } from './certs.ts';
import { checkPinnedSigner, checkTrustedCa } from './check-ca.ts';
import type { DiagnosticLog, Site } from './diagnostics.ts';
import { excerpt } from './excerpt.ts';
import { uniqueById } from './ids.ts';
import { listenPathVerdict } from './listen-path.ts';
import { resolveMatch } from './match.ts';
import type { ApiDoc, ForwardClientCertSpec } from './model.ts';
import { locate } from './source.ts';

export interface ResolvedApis {
  apis: Map<string, BundleApi>;
  cas: Map<Fingerprint, BundleCa>;
  /** notAfter (ms) of every certificate named by PEM (pinned leaves and CAs). */
  notAfter: Map<Fingerprint, number>;
}

/** A CA as the bundle holds it, or null after reporting why the gateway could not use it. */
function trustAnchor(cert: CertInfo, site: Site, label: string, now: Date, log: DiagnosticLog): BundleCa | null {
  // The precise reason first: a keyUsage without keyCertSign also fails checkCaPem (OpenSSL's X509_check_ca).
  if (!checkTrustedCa(cert, site, label, now, log)) return null;
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

/** `proxy.upstream_tls` in bundle form: the CA as PEM, pins normalised; the client pair stays two runtime paths. */
function resolveUpstreamTls(
  proxy: ApiDoc['spec']['proxy'],
  at: (path: (string | number)[]) => Site,
  yamlAbsPath: string,
  certs: CertLoader,
  log: DiagnosticLog,
): UpstreamTls | null {
  const spec = proxy.upstream_tls;
  if (spec === undefined) return API_DEFAULTS.upstream_tls;
  if (!proxy.target_url.startsWith('https://')) {
    log.report('E_FIELD_VALUE', at([]), `upstream_tls applies to an https:// target_url; ${excerpt(proxy.target_url)} is plain http`);
  }
  let caPemText: string | null = null;
  if (spec.ca !== undefined) {
    const loaded = certs.load(spec.ca, at(['ca']), yamlAbsPath) ?? [];
    const anchors = loaded.filter((c) => c.der !== null);
    if (loaded.length > 0 && anchors.length === 0) {
      log.report(
        'E_FIELD_VALUE',
        at(['ca']),
        "upstream_tls.ca holds no CA certificate: name the CA that issued the upstream's certificate (or pin the leaf with pinned_sha256)",
      );
    }
    if (anchors.length > 0) caPemText = anchors.map(caPem).join('');
  }
  // The client pair is read by serve on the gateway's machine, from serve's working directory
  // when relative. Resolving it against this YAML file would write the compiling machine's
  // directory (a CI checkout) into the bundle, wrong wherever the bundle is deployed, so a
  // relative path is kept and said to be the gateway's.
  for (const field of ['client_certificate', 'client_key_file'] as const) {
    const path = spec[field];
    if (path !== undefined && !isAbsolute(path))
      log.report(
        'W_UPSTREAM_TLS_RELATIVE',
        at([field]),
        `upstream_tls.${field} ${excerpt(path)} is relative: serve reads it from its own working directory on the gateway machine, not relative to this file (the bundle holds the path, never the key); give an absolute path`,
      );
  }
  return {
    ca_pem: caPemText,
    client_certificate_file: spec.client_certificate ?? null,
    client_key_file: spec.client_key_file ?? null,
    pinned_sha256: [...new Set((spec.pinned_sha256 ?? []).map((p) => p.slice('sha256:'.length).toLowerCase()))].sort(),
    server_name: spec.server_name?.toLowerCase() ?? null,
  };
}

function normaliseListenPath(p: string): string {
  return p.endsWith('/') ? p : p + '/';
}

export function resolveApis(docs: ApiDoc[], certs: CertLoader, log: DiagnosticLog): ResolvedApis {
  const out: ResolvedApis = { apis: new Map(), cas: new Map(), notAfter: new Map() };
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
      const pin = parsePin(entry);
      if (pin !== null) {
        if (pin.ok) pinned.add(pin.fingerprint);
        else log.report('E_FIELD_VALUE', site, `client_certificates[${i}] ${excerpt(entry)} ${pin.problem}`);
        return;
      }
      const loaded = certs.load(entry, site, doc.file.absPath) ?? [];
      // A file holding a leaf is that leaf's chain: pin the leaf, and do not let the CAs that
      // came along admit everything they issued. Only a file of CAs alone is a trust anchor.
      const isChain = loaded.some((c) => !c.isCa);
      for (const cert of loaded) {
        out.notAfter.set(cert.fingerprint, cert.notAfter.getTime());
        const label = isInlinePem(entry) ? '(inline PEM)' : entry;
        if (!cert.isCa) {
          pinned.add(cert.fingerprint);
          if (mtls) checkPinnedSigner(cert, site, label, log);
          continue;
        }
        if (isChain) continue;
        cas.add(cert.fingerprint);
        if (mtls) {
          const ca = out.cas.get(cert.fingerprint) ?? trustAnchor(cert, site, label, certs.now, log);
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
        `target_url ${excerpt(spec.proxy.target_url)} ${target.problem}: the gateway would refuse the bundle`,
      );
    }

    const upstreamTls = resolveUpstreamTls(spec.proxy, (path) => at(['proxy', 'upstream_tls', ...path]), doc.file.absPath, certs, log);

    const routable = listenPathVerdict(spec.proxy.listen_path);
    if (!routable.ok) {
      const write = routable.write ? `; write ${excerpt(routable.write)}` : '';
      log.report('E_FIELD_VALUE', at(['proxy', 'listen_path']), `listen_path ${excerpt(spec.proxy.listen_path)} ${routable.reason}${write}`);
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
      upstream_http2: spec.proxy.http2 ?? API_DEFAULTS.upstream_http2,
      upstream_tls: upstreamTls,
      use_certificate: useCertificate,
      use_keyless: keyless,
      use_mutual_tls_auth: mtls,
    };
    out.apis.set(spec.id, api);
  }
  for (const ca of out.cas.values()) ca.apis.sort();
  return out;
}
