// Fixtures for the portal tests: a config with catalog plans, an upstream, fresh client
// certificates on disk, the portal (in-process or `dist/mtlsgate.mjs portal`), its form
// (CSRF cookie and token) and curl through the gateway with a given certificate.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, sign } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { issueCert, type DemoPki, type Issued, type KeyAlg } from '../../cli/pki.ts';
import type { IssueOutcome, Issuer } from '../../portal/issue-key.ts';
import { renderKeyFile } from '../../portal/key-file.ts';
import { CHALLENGE_PREFIX } from '../../portal/proof.ts';
import { CLI, run } from './serve-fixtures.ts';
import { waitFor } from './ops-fixtures.ts';

/** An upstream answering 200 with the path it got. */
export async function startUpstream(): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url }) + '\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())),
  };
}

/**
 * DIR/config: dynamic-mTLS APIs "profile" (/profile/) and "reports" (/reports/); plans
 * "profile-self-serve" (instant) and "profile-reviewed" (require_approval), both granting
 * profile only; policy "internal" (no portal block) granting reports; key alice on profile.
 */
export function writePortalConfig(dir: string, upstream: string, pki: DemoPki): string {
  const config = join(dir, 'config');
  mkdirSync(join(config, 'apis'), { recursive: true });
  mkdirSync(join(config, 'policies'), { recursive: true });
  mkdirSync(join(config, 'keys'), { recursive: true });
  writeFileSync(
    join(config, 'apis', 'apis.yaml'),
    [
      `kind: api\nid: profile\nname: Profile\nproxy:\n  listen_path: /profile/\n  target_url: ${upstream}\nauth:\n  use_certificate: true\n`,
      `kind: api\nid: reports\nname: Reports\nproxy:\n  listen_path: /reports/\n  target_url: ${upstream}\nauth:\n  use_certificate: true\n`,
    ].join('---\n'),
  );
  writeFileSync(
    join(config, 'policies', 'plans.yaml'),
    [
      'kind: policy\nid: profile-self-serve\naccess_rights:\n  profile: {}\nportal:\n  name: Profile API\n  description: Your own profile, identified by your client certificate\n  require_approval: false\n',
      'kind: policy\nid: profile-reviewed\naccess_rights:\n  profile: {}\nportal:\n  name: Profile API (reviewed)\n  description: The same, turned on by the platform team\n  require_approval: true\n',
      'kind: policy\nid: internal\naccess_rights:\n  reports: {}\n',
    ].join('---\n'),
  );
  // Config reads stay inside the config directory (docs/security.md item 4): alice's
  // certificate is copied in beside the config, as a repository would hold it.
  mkdirSync(join(config, 'certs'), { recursive: true });
  copyFileSync(join(pki.dir, 'alice.pem'), join(config, 'certs', 'alice.pem'));
  writeFileSync(join(config, 'keys', 'alice.yaml'), 'kind: key\nid: alice\ncertificate: ../certs/alice.pem\napply_policies: [profile-self-serve]\n');
  return config;
}

/** A fresh client certificate from the demo CA, written as DIR/<name>.pem and DIR/<name>-key.pem. */
export async function freshClient(pki: DemoPki, dir: string, name: string, alg: KeyAlg = 'ec'): Promise<Issued & { certFile: string; keyFile: string }> {
  const issued = await issueCert(pki.ca, name, { alg });
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  writeFileSync(certFile, issued.certPem);
  writeFileSync(keyFile, issued.keyPem, { mode: 0o600 });
  return { ...issued, certFile, keyFile };
}

/** The text of a portal key file for `owner` with a fresh certificate, as the portal writes it (plan profile-self-serve). */
export async function portalKeyText(pki: DemoPki, dir: string, keyId: string, owner: string, requireApproval: boolean, requestedAt: Date): Promise<string> {
  const client = await freshClient(pki, dir, keyId);
  return renderKeyFile({
    keyId,
    owner,
    policy: 'profile-self-serve',
    entryName: 'Profile API',
    developer: `${owner}@example.com`,
    certificatePem: client.certPem,
    requireApproval,
    requestedAt,
  });
}

/** `owner` asks `issuer` (in this process) for a key with a fresh certificate (`name`) and a valid proof of its private key. */
export async function issueAs(issuer: Issuer, pki: DemoPki, dir: string, owner: string, name: string): Promise<IssueOutcome> {
  const client = await freshClient(pki, dir, name);
  const challenge = CHALLENGE_PREFIX + randomBytes(24).toString('base64url');
  const signature = sign('sha256', Buffer.from(challenge), client.keyPem).toString('base64');
  return issuer.issue({
    policy: 'profile-self-serve',
    developer: `${owner}@example.com`,
    certificate: Buffer.from(client.certPem),
    proof: { challenge, signature },
    consumeChallenge: () => true,
    owner,
  });
}

/** curl through the gateway with the given certificate files (and `extra` curl arguments, e.g. --resolve); status, body and the error code. */
export async function curlWith(
  url: string,
  pki: DemoPki,
  certFile: string,
  keyFile: string,
  extra: string[] = [],
): Promise<{ status: number; body: string; code: string | null }> {
  const r = await run('curl', [
    '-sS',
    '--max-time',
    '20',
    '--cacert',
    join(pki.dir, 'ca.pem'),
    '--cert',
    certFile,
    '--key',
    keyFile,
    ...extra,
    '-w',
    '\n%{http_code}',
    url,
  ]);
  if (r.code !== 0) throw new Error(`curl ${url} failed (${r.code}): ${r.stderr}`);
  const nl = r.stdout.lastIndexOf('\n');
  const body = r.stdout.slice(0, nl);
  let code: string | null = null;
  try {
    code = (JSON.parse(body) as { code?: string }).code ?? null;
  } catch {
    // not a gateway error body
  }
  return { status: Number(r.stdout.slice(nl + 1)), body, code };
}

type CurlAnswer = Awaited<ReturnType<typeof curlWith>>;

/**
 * curlWith every 50 ms until `wanted` holds for the answer (resolved with it) or `timeoutMs`
 * passes (throws, naming `what`): the gateway reloads by file watch, so a change shows later.
 */
export function curlUntil(
  what: string,
  url: string,
  pki: DemoPki,
  client: { certFile: string; keyFile: string },
  wanted: (res: CurlAnswer) => boolean,
  timeoutMs: number,
): Promise<CurlAnswer> {
  return waitFor(
    what,
    async () => {
      const res = await curlWith(url, pki, client.certFile, client.keyFile);
      return wanted(res) ? res : null;
    },
    timeoutMs,
    50,
  );
}

export interface OpenForm {
  cookie: string;
  token: string;
  page: string;
  /** The one-time challenge on the form, and the command the page shows to sign it. */
  challenge: string;
  command: string;
}

function unescapeHtml(s: string): string {
  return s
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/**
 * GET / and return the CSRF cookie, the form's token and its proof-of-possession challenge.
 * `session` (a `name=value` session cookie of a signed-in portal) is sent along and kept in `cookie`.
 */
export async function openForm(base: string, session?: string): Promise<OpenForm> {
  const res = await fetch(`${base}/`, { headers: session === undefined ? {} : { cookie: session } });
  const page = await res.text();
  const csrfCookie = (res.headers.get('set-cookie') ?? '').split(';')[0];
  const cookie = session === undefined || !csrfCookie ? csrfCookie : `${session}; ${csrfCookie}`;
  const token = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
  const challenge = /name="challenge" value="([^"]+)"/.exec(page)?.[1];
  const command = /<pre class="command" id="sign-command"[^>]*>([^<]+)<\/pre>/.exec(page)?.[1];
  if (!cookie || !token || !challenge || !command) throw new Error(`no CSRF cookie, token or challenge on the form page (status ${res.status})`);
  return { cookie, token, page, challenge, command: unescapeHtml(command) };
}

/**
 * Runs the signing command a portal page shows (`printf ... | openssl dgst -sha256 -sign
 * my-key.pem | openssl base64 -A`) with real openssl, the developer's key file in place of
 * my-key.pem; returns what it prints (the signature to paste).
 */
export async function runSignCommand(command: string, keyFile: string): Promise<string> {
  if (!command.includes(' -sign my-key.pem ')) throw new Error(`unexpected signing command: ${command}`);
  const r = await run('bash', ['-c', command.replace(' -sign my-key.pem ', ` -sign '${keyFile}' `)]);
  if (r.code !== 0 || r.stdout.trim() === '') throw new Error(`the signing command failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** POSTs a request as the HTTP API does (urlencoded, JSON answer); `keyFile` signs the form's challenge. */
export async function submitJson(
  base: string,
  form: OpenForm,
  fields: Record<string, string>,
  keyFile?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const proof: Record<string, string> = keyFile === undefined ? {} : { challenge: form.challenge, signature: await runSignCommand(form.command, keyFile) };
  const res = await fetch(`${base}/requests`, {
    method: 'POST',
    headers: { cookie: form.cookie, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: form.token, ...proof, ...fields }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Every file under dir with its bytes (relative path -> content), for "nothing changed" checks. */
export function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}

/**
 * `node dist/mtlsgate.mjs portal ...` as a child; resolves once it listens and its start-up
 * compile is done (until then catalog pages answer 503 "starting": test/portal-startup.test.ts), with its URL.
 */
export async function spawnPortal(args: string[]): Promise<{ child: ChildProcess; url: string; output(): string; kill(): void }> {
  const child = spawn(process.execPath, [CLI, 'portal', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const line = await waitFor(
    'mtlsgate portal listening',
    () => {
      if (child.exitCode !== null) throw new Error(`portal exited ${child.exitCode}:\n${out}`);
      return out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; url?: string })
        .find((l) => l.msg === 'mtlsgate portal listening');
    },
    30_000,
    50,
  );
  await waitFor(
    'the start-up compile',
    () => {
      if (child.exitCode !== null) throw new Error(`portal exited ${child.exitCode}:\n${out}`);
      return out.includes('"msg":"mtlsgate portal: the start-up compile is done"');
    },
    60_000,
    50,
  );
  return {
    child,
    url: String(line.url).replace(/\/$/, ''),
    output: () => out,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
