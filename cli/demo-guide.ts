// What `mtlsgate demo` prints: where things run, and curl commands with the answer each gets.
//
// The commands are derived from the compiled bundle and the demo certificates, not hard-coded:
// the API that pins certificates with no token, the API where the certificate identifies the
// key, a token API, and which demo certificate each one admits. If the examples change, the
// guide follows (a scenario the config no longer has is left out). Tokens exist in plaintext
// nowhere but the config directory's README ("Demo tokens" table, demo secrets); one is used
// only if its SHA-256 matches a key in the bundle.
import { createHash, X509Certificate } from 'node:crypto';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import type { BundleApi, BundleContent, BundleKey } from '../bundle/types.ts';
import { DEMO_CLIENTS } from './pki.ts';

export interface DemoGuideInput {
  gatewayUrl: string;
  adminUrl: string | null;
  configDir: string;
  certsDir: string;
  bundleFile: string;
  content: BundleContent;
  upstreams: Array<{ name: string; port: number }>;
}

export interface DemoStep {
  title: string;
  command: string;
  /** HTTP status the command prints last ("HTTP 200"). */
  status: number;
  /** The JSON error code in the body, for refusals. */
  code: string | null;
  expect: string;
}

/** A path as a user types it from the current directory, shell-quoted if it needs to be. */
export function shellPath(p: string): string {
  const rel = relative(process.cwd(), p);
  const shown = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
  return shellQuote(shown);
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const CLIENTS = [...DEMO_CLIENTS, 'stranger'] as const;
type Client = (typeof CLIENTS)[number];

function fingerprints(certsDir: string): Map<Client, string> {
  const out = new Map<Client, string>();
  for (const name of CLIENTS) {
    const file = join(certsDir, `${name}.pem`);
    if (!existsSync(file)) continue;
    out.set(name, fingerprintOf(new X509Certificate(readFileSync(file)).raw));
  }
  return out;
}

/** Demo tokens from the README's table rows: | key | `token` | `sha256` |, verified against the bundle. */
function demoTokens(configDir: string, content: BundleContent): Map<string, string> {
  const out = new Map<string, string>();
  const readme = join(configDir, 'README.md');
  if (!existsSync(readme)) return out;
  const row = /^\|\s*([a-z0-9][a-z0-9._-]*)\s*\|\s*`([A-Za-z0-9_.~+/=-]{16,})`\s*\|\s*`?([0-9a-f]{64})`?\s*\|/gm;
  for (const m of readFileSync(readme, 'utf8').matchAll(row)) {
    const [, keyId, token, hash] = m;
    const actual = createHash('sha256').update(token).digest('hex');
    if (actual === hash && content.index.tokens[hash] === keyId) out.set(keyId, token);
  }
  return out;
}

/** A request path the key may GET on the API: a literal prefix of its first GET-able allowed_url. */
function allowedPath(api: BundleApi, key: BundleKey | null): string {
  const urls = key?.access_rights[api.id]?.allowed_urls;
  if (urls) {
    for (const u of urls) {
      if (u.methods.length > 0 && !u.methods.includes('GET')) continue;
      const m = /^\^?\/([A-Za-z0-9_-]+)/.exec(u.url);
      if (m) return api.listen_path + m[1];
    }
  }
  return api.listen_path + 'hello';
}

export function demoSteps(input: DemoGuideInput): DemoStep[] {
  const { content, gatewayUrl } = input;
  const fps = fingerprints(input.certsDir);
  const apis = Object.values(content.apis);
  const ca = shellPath(join(input.certsDir, 'ca.pem'));
  const keyOfCert = (fp: string | undefined) => (fp ? (content.index.certs[fp]?.key ?? null) : null);
  const curl = (path: string, client: Client | null, token: string | null) =>
    [
      'curl -sS',
      `--cacert ${ca}`,
      client ? `--cert ${shellPath(join(input.certsDir, `${client}.pem`))} --key ${shellPath(join(input.certsDir, `${client}-key.pem`))}` : '',
      token ? `-H 'Authorization: Bearer ${token}'` : '',
      `-w '\\nHTTP %{http_code}\\n'`,
      `${gatewayUrl}${path}`,
    ]
      .filter(Boolean)
      .join(' ');
  const steps: DemoStep[] = [];

  const pinsOnly = apis.find((a) => a.use_mutual_tls_auth && a.use_keyless);
  if (pinsOnly) {
    const pinned = CLIENTS.find((c) => fps.has(c) && pinsOnly.client_certificates.includes(fps.get(c)!));
    const path = pinsOnly.listen_path + 'daily';
    if (pinned) {
      steps.push({
        title: `static mTLS: ${pinned}'s pinned certificate alone opens API ${pinsOnly.id}`,
        command: curl(path, pinned, null),
        status: 200,
        code: null,
        expect: "HTTP 200, and the echo upstream's JSON",
      });
    }
    const unlisted = (['mallory', 'stranger'] as const).find(
      (c) => fps.has(c) && !pinsOnly.client_certificates.includes(fps.get(c)!) && pinsOnly.client_cas.length === 0,
    );
    if (unlisted) {
      steps.push({
        title: `static mTLS: ${unlisted}'s certificate is not on ${pinsOnly.id}'s list`,
        command: curl(path, unlisted, null),
        status: 403,
        code: 'mtls.cert_not_allowed',
        expect: `HTTP 403 {"error":"Certificate with SHA256 ${fps.get(unlisted)} not allowed","code":"mtls.cert_not_allowed"}`,
      });
    }
  }

  const dynamic = apis.find((a) => a.use_certificate && !a.use_mutual_tls_auth);
  if (dynamic) {
    const client = CLIENTS.find((c) => {
      const keyId = keyOfCert(fps.get(c));
      return keyId !== null && content.keys[keyId]?.access_rights[dynamic.id] !== undefined && !content.keys[keyId].is_inactive;
    });
    if (client) {
      const keyId = keyOfCert(fps.get(client))!;
      steps.push({
        title: `dynamic mTLS: ${client}'s certificate alone identifies key "${keyId}" on API ${dynamic.id}`,
        command: curl(allowedPath(dynamic, content.keys[keyId]), client, null),
        status: 200,
        code: null,
        expect: `HTTP 200 as key ${keyId} (the gateway's request log line says "key":"${keyId}")`,
      });
      steps.push({
        title: `dynamic mTLS: the same API without a certificate`,
        command: curl(allowedPath(dynamic, content.keys[keyId]), null, null),
        status: 401,
        code: 'auth.auth_field_missing',
        expect: 'HTTP 401 {"error":"Authorization field missing","code":"auth.auth_field_missing"}',
      });
    }
  }

  const tokens = demoTokens(input.configDir, content);
  for (const tokenApi of apis.filter((a) => !a.use_keyless && !a.use_certificate)) {
    const keyId = [...tokens.keys()].find((k) => content.keys[k]?.access_rights[tokenApi.id] !== undefined && !content.keys[k].is_inactive);
    if (!keyId) continue;
    const key = content.keys[keyId];
    // A pinned certificate the key may present: one bound to no key, or to this key.
    const client = tokenApi.use_mutual_tls_auth
      ? CLIENTS.find(
          (c) =>
            fps.has(c) &&
            tokenApi.client_certificates.includes(fps.get(c)!) &&
            (key.certificates.length === 0 ? keyOfCert(fps.get(c)) === null : key.certificates.includes(fps.get(c)!)),
        )
      : null;
    if (tokenApi.use_mutual_tls_auth && !client) continue;
    const title = client
      ? `static mTLS + token: ${client}'s pinned certificate and ${keyId}'s token (demo secret from ${shellPath(join(input.configDir, 'README.md'))}) on API ${tokenApi.id}`
      : `token auth: ${keyId}'s token on API ${tokenApi.id}`;
    steps.push({
      title,
      command: curl(allowedPath(tokenApi, key), client ?? null, tokens.get(keyId)!),
      status: 200,
      code: null,
      expect: `HTTP 200 as key ${keyId}; the upstream gets no Authorization header if the API strips it`,
    });
    if (key.access_rights[tokenApi.id]?.allowed_urls) {
      steps.push({
        title: `the same key on a path its allowed_urls do not list`,
        command: curl(tokenApi.listen_path + 'not-allowed', client ?? null, tokens.get(keyId)!),
        status: 403,
        code: 'access.url_denied',
        expect: 'HTTP 403 {"error":"Access to this resource has been disallowed","code":"access.url_denied"}',
      });
    }
    break;
  }
  return steps;
}

export function demoGuide(input: DemoGuideInput): string {
  const steps = demoSteps(input);
  const lines = [
    '',
    'mtlsgate demo is running',
    `  gateway    ${input.gatewayUrl}   (bundle ${shellPath(input.bundleFile)}, reloaded when it changes)`,
    input.adminUrl ? `  admin      ${input.adminUrl}/health   ${input.adminUrl}/metrics` : '  admin      off',
    `  upstreams  ${input.upstreams.map((u) => `echo on 127.0.0.1:${u.port} (${u.name})`).join(', ')}`,
    `  config     ${shellPath(input.configDir)}   (save a YAML file there: it is recompiled and reloaded)`,
    '',
    'Paste these from this directory; each prints the answer body, then its HTTP status:',
  ];
  steps.forEach((s, i) => {
    lines.push('', `${i + 1}) ${s.title}`, `   ${s.command}`, `   expect: ${s.expect}`);
  });
  lines.push(
    '',
    'Revoke a certificate: remove it from client_certificates in a YAML file under the config',
    'directory and save; the next request with it (even on an open connection) gets 403.',
    'Ctrl-C stops everything.',
    '',
  );
  return lines.join('\n');
}
