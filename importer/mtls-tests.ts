// The proof of each imported mTLS API: a `kind: test` document, tests/mtls-<api>.yaml, whose
// cases present certificates as Tyk's clients do and expect the answer Tyk gives them: for
// static mTLS (use_mutual_tls_auth + client_certificates) each pinned certificate passes the
// certificate check, and a request without a certificate or with one the API does not pin is
// refused; for dynamic mTLS (auth.use_certificate) each key's certificate identifies that key,
// and a request without a certificate or with one no key has is refused. `mtlsgate check` on the
// output (which the import runs) runs them on mtlsgate's own stages.
//
// The import needs the certificates themselves (CertMaterial: --certs DIR, or files a definition
// names by path): a Tyk certificate id is a hash. Each pin or key certificate without its PEM
// gets no case, and a note per API names the ids and where Tyk keeps them. The refusals use a
// certificate made for the purpose (stranger-cert.ts), and one more given certificate the API
// does not admit when --certs holds one.
import { stringify } from 'yaml';
import type { ApiSpec, KeySpec, TestSpec } from '../compiler/model.ts';
import type { ImportContext, Imported } from './context.ts';
import { STRANGER_PEM } from './stranger-cert.ts';
import type { OutFile } from './yaml-out.ts';

/** Past this many cases per API the rest are left out (the document says so). */
const MAX_CASES = 60;

type Case = TestSpec['cases'][number];

/** The fingerprint a client_certificates or certificate entry names, when the import can tell. */
function fingerprintOf(ctx: ImportContext, entry: unknown): string | undefined {
  if (typeof entry !== 'string') return undefined;
  if (entry.startsWith('sha256:')) return entry.slice('sha256:'.length);
  if (entry.startsWith('../certs/')) return ctx.certMaterial.fingerprintAt(entry.slice('../'.length));
  return undefined;
}

/** How a key is granted the API: its own right or an applied policy's; 'whole' when one of them is the whole API. */
function grantOn(ctx: ImportContext, key: KeySpec, apiId: string): 'whole' | 'paths' | undefined {
  const rights = [
    key.access_rights?.[apiId],
    ...(key.apply_policies ?? []).map((id) => ctx.policies.find((p) => p.spec.id === id)?.spec.access_rights?.[apiId]),
  ];
  const given = rights.filter((r) => r !== undefined);
  if (given.length === 0) return undefined;
  return given.some((r) => r.allowed_urls === undefined) ? 'whole' : 'paths';
}

/** Keys a test may use: written active, not commented out. `at`: an hour before expiry (the test is not about expiry). */
function usableKeys(ctx: ImportContext, apiId: string) {
  return ctx.keys
    .filter((k) => k.disabledBecause === undefined && !k.spec.is_inactive)
    .map((k) => ({ key: k, grant: grantOn(ctx, k.spec, apiId), at: k.spec.expires ? Date.parse(k.spec.expires) - 3_600_000 : undefined }))
    .filter((k) => k.grant !== undefined);
}

const iso = (ms: number | undefined) => (ms === undefined ? {} : { at: new Date(ms).toISOString() });

/** Where `instant` says why no moment will do, the case is left out and named in the header. */
const unusable = (when: { at?: number } | { why: string }): string | undefined => ('why' in when ? when.why : undefined);

function casesFor(ctx: ImportContext, api: Imported<ApiSpec>, missing: string[], skipped: string[]): Case[] {
  const spec = api.spec;
  const staticMtls = spec.use_mutual_tls_auth === true;
  const dynamic = spec.auth?.use_certificate === true && !spec.use_keyless;
  const url = spec.domain ? `https://${spec.domain}${spec.proxy.listen_path}` : spec.proxy.listen_path;
  const cert = (fp: string) => `../${ctx.certMaterial.outPath(fp, ctx.certCopies)}`;
  const pins = new Set<string>();
  if (staticMtls)
    (spec.client_certificates ?? []).forEach((entry, i) => {
      const fp = fingerprintOf(ctx, entry);
      if (fp === undefined) skipped.push(`client_certificates[${i}] ${JSON.stringify(entry)}: a file the import did not copy (the report says why)`);
      else pins.add(fp);
    });
  const keys = usableKeys(ctx, spec.id);
  const keyCerts = new Set(ctx.keys.map((k) => fingerprintOf(ctx, k.spec.certificate)).filter((fp) => fp !== undefined));
  // What a certificate nobody admits gets: the static check refuses it first; else dynamic mTLS finds no key for it.
  const stranger: Case['expect'] = staticMtls ? { status: 403, code: 'mtls.cert_not_allowed' } : { status: 401, code: 'auth.cert_not_found' };
  const cases: Case[] = [
    {
      name: `GET ${url} without a client certificate: refused (Tyk: ${staticMtls ? 'client certificate required' : 'no certificate and no token'})`,
      request: { url },
      expect: staticMtls ? { status: 403, code: 'mtls.cert_required' } : { status: 401, code: 'auth.auth_field_missing' },
    },
    {
      name: `GET ${url} with a certificate no Tyk definition names: refused`,
      // Inline: the test carries it, and certs/ holds only the migration's own certificates.
      request: { url, certificate: STRANGER_PEM },
      expect: stranger,
    },
  ];
  // One more refusal with a real certificate of the migration (another partner's), when --certs gave one.
  const other = ctx.certMaterial.fingerprints().find((fp) => !pins.has(fp) && !keyCerts.has(fp) && !unusable(ctx.certMaterial.instant(fp)));
  if (other !== undefined)
    cases.push({ name: `GET ${url} with ${cert(other)}, which the API does not admit: refused`, request: { url, certificate: cert(other) }, expect: stranger });

  for (const fp of pins) {
    if (!ctx.certMaterial.has(fp)) {
      missing.push(`pinned sha256:${fp}`);
      continue;
    }
    const why = unusable(ctx.certMaterial.instant(fp));
    if (why !== undefined) {
      skipped.push(`pinned ${cert(fp)}: ${why}`);
      continue;
    }
    const base = { url, certificate: cert(fp) };
    if (spec.use_keyless) {
      cases.push({ name: `GET ${url} with pinned ${cert(fp)}: let through (keyless API)`, request: base, expect: { status: 200 } });
      continue;
    }
    if (!dynamic)
      // Past the certificate check, the token is asked for: the refusal comes from the next stage.
      cases.push({
        name: `GET ${url} with pinned ${cert(fp)} and no token: the certificate passes, the key is asked for`,
        request: base,
        expect: { status: 401, code: 'auth.auth_field_missing' },
      });
    // With a token: a key granted the whole API whose own certificate (if any) is this one.
    const k = keys.find(
      ({ key, grant }) => grant === 'whole' && key.spec.token_sha256 && (key.spec.certificate === undefined || fingerprintOf(ctx, key.spec.certificate) === fp),
    );
    const when = k && !dynamic ? ctx.certMaterial.instant(fp, k.at) : undefined;
    if (k && when && !('why' in when))
      cases.push({
        name: `GET ${url} with pinned ${cert(fp)} as key ${k.key.spec.id}: let through`,
        request: { ...base, as_key: k.key.spec.id, ...iso(when.at) },
        expect: { status: 200, key: k.key.spec.id },
      });
  }

  if (dynamic)
    for (const { key, grant, at } of keys) {
      const fp = fingerprintOf(ctx, key.spec.certificate);
      if (key.spec.certificate === undefined) continue;
      if (fp === undefined || !ctx.certMaterial.has(fp)) {
        missing.push(`key ${key.spec.id}'s ${fp ? `sha256:${fp}` : JSON.stringify(key.spec.certificate)}`);
        continue;
      }
      const when = ctx.certMaterial.instant(fp, at);
      if ('why' in when) {
        skipped.push(`key ${key.spec.id}'s ${cert(fp)}: ${when.why}`);
        continue;
      }
      const request = { url, certificate: cert(fp), ...iso(when.at) };
      if (staticMtls && !pins.has(fp))
        cases.push({
          name: `GET ${url} with key ${key.spec.id}'s certificate, which the API does not pin: refused`,
          request,
          expect: { status: 403, code: 'mtls.cert_not_allowed' },
        });
      else
        cases.push({
          name: `GET ${url} with key ${key.spec.id}'s certificate: identifies the key${grant === 'whole' ? ', let through' : ''}`,
          request,
          // A key limited to some paths is identified; which paths it reaches is allowed_urls' business.
          expect: grant === 'whole' ? { status: 200, key: key.spec.id } : { key: key.spec.id },
        });
    }
  return cases;
}

export function mtlsTests(ctx: ImportContext): OutFile[] {
  const files: OutFile[] = [];
  for (const api of ctx.apis.values()) {
    const spec = api.spec;
    if (!spec.use_mutual_tls_auth && !(spec.auth?.use_certificate && !spec.use_keyless)) continue;
    const missing: string[] = [];
    const skipped: string[] = [];
    const cases = casesFor(ctx, api, missing, skipped);
    if (missing.length > 0)
      ctx.report.note(
        api.file,
        api.pointer,
        `the mTLS access test of API "${spec.id}" has no case for ${missing.join(', ')}: the import has no PEM for ${missing.length === 1 ? 'it' : 'them'}. ` +
          `Give the certificates with --certs DIR (their PEM files under DIR, any names: each is matched by its SHA-256, the hex a Tyk certificate id ends with)${ctx.certMaterial.dir ? `; ${JSON.stringify(ctx.certMaterial.dir)} holds none of them` : ''}. ` +
          "Tyk's API returns a certificate's metadata only: the PEM is the file uploaded to Tyk, or its Redis value cert-raw-<certificate id> (certificate blocks are taken, a private key in it never)",
      );
    const kept = cases.slice(0, MAX_CASES);
    const header = [
      `# Generated by \`mtlsgate import tyk\`: API "${spec.id}"'s client certificate checks, as Tyk made them.`,
      "# Each case expects the answer Tyk gives (refusals with mtlsgate's code for them); check and test run them against mtlsgate's stages.",
      ...(cases.length > MAX_CASES ? [`# ${cases.length - MAX_CASES} more cases left out (at most ${MAX_CASES}).`] : []),
      ...missing.map((m) => `# Not tested: ${m} (no PEM: give it with --certs DIR).`),
      ...skipped.map((s) => `# Not tested: ${s}.`),
    ];
    const test: TestSpec = { kind: 'test', id: `tyk-mtls-${spec.id}`, cases: kept };
    files.push({ path: `tests/mtls-${spec.id}.yaml`, text: `${header.join('\n')}\n${stringify(test, { lineWidth: 0 })}` });
  }
  return files;
}
