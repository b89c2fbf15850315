// A real OpenID provider in the test process (`oidc-provider`, its development login form:
// any login name, any password), for the portal's sign-in. The listener is bound first, so
// its issuer URL is known before the portal starts; the client (with the portal's callback
// URL as its redirect URI) is registered once the portal listens.
import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Provider from 'oidc-provider';
import type { Browser, BrowserContext, Page } from 'playwright-core';

export interface TestUser {
  email: string;
  /** What the provider says of the email (default true): false for an address the user typed and never confirmed. */
  emailVerified?: boolean;
  name?: string;
  groups?: string[];
}

/** Rewrites the claims of an ID token the provider issued, re-signed with its key: a provider (or its key) turned hostile. */
export type IdTokenTamper = (claims: Record<string, unknown>) => Record<string, unknown>;

export interface TestIdp {
  issuer: string;
  /** Token requests the provider was sent (a code exchange each). */
  readonly tokenRequests: number;
  /** With `bindIdp(users, { tamperable: true })`: the rewrite of the next ID tokens (null: as issued). */
  tamperIdToken: IdTokenTamper | null;
  /** Rewrites the provider's redirect back to the portal's callback (its query: code, state, iss) on its way to the browser; null: as sent. */
  rewriteCallback: ((callback: URL) => void) | null;
  /** Starts answering, with one confidential client allowed to redirect to `redirectUri`. */
  start(client: { clientId: string; clientSecret: string; redirectUri: string }): void;
  close(): Promise<void>;
}

/** The portal's client at the test IdP: the id and secret every portal test registers. */
const PORTAL_CLIENT = { clientId: 'mtlsgate-portal', clientSecret: 'portal-test-secret-0123456789' } as const;

/** The in-process portal's `oidc` option: sign-in at `idp` as PORTAL_CLIENT, with these admins. */
export function portalOidc(idp: TestIdp, admins: string[]) {
  return { issuer: idp.issuer, ...PORTAL_CLIENT, admins };
}

/** Writes PORTAL_CLIENT's secret to DIR/client-secret (0600), as `--oidc-client-secret-file` reads it; returns the path. */
export function writePortalClientSecret(dir: string): string {
  const secretFile = join(dir, 'client-secret');
  writeFileSync(secretFile, `${PORTAL_CLIENT.clientSecret}\n`, { mode: 0o600 });
  return secretFile;
}

/** The `mtlsgate portal` flags that sign in at `idp` as PORTAL_CLIENT. */
export function portalOidcFlags(idp: TestIdp, secretFile: string): string[] {
  return ['--oidc-issuer', idp.issuer, '--oidc-client-id', PORTAL_CLIENT.clientId, '--oidc-client-secret-file', secretFile];
}

/** The IdP starts answering PORTAL_CLIENT, redirecting to the portal at `portalBase`. */
export function startIdpForPortal(idp: TestIdp, portalBase: string): void {
  idp.start({ ...PORTAL_CLIENT, redirectUri: `${portalBase}/auth/callback` });
}

/**
 * Users by login name; an unknown login signs in as `<login>@example.com`. `tamperable`: the
 * provider signs with a key the test holds, and its token answers pass through `tamperIdToken`.
 */
export async function bindIdp(users: Record<string, TestUser> = {}, opts: { tamperable?: boolean } = {}): Promise<TestIdp> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  let tokenRequests = 0;
  const signing = opts.tamperable ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey : null;
  const jwks = signing ? { keys: [{ ...signing.export({ format: 'jwk' }), kid: 'test-idp', alg: 'RS256', use: 'sig' }] } : undefined;
  /** The provider itself, behind the listener (tamperable only): the token answers are rewritten on their way out. */
  let inner: Server | null = null;
  let callbackUri = '';
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/token')) tokenRequests++;
    const rewrite = idp.rewriteCallback;
    if (rewrite !== null) {
      const setHeader = res.setHeader.bind(res);
      res.setHeader = (name, value) => {
        if (name.toLowerCase() === 'location' && typeof value === 'string' && value.startsWith(`${callbackUri}?`)) {
          const url = new URL(value);
          rewrite(url);
          return setHeader(name, url.href);
        }
        return setHeader(name, value);
      };
    }
    if (handler === null) res.writeHead(503).end('not started');
    else if (inner !== null && req.url?.startsWith('/token')) void tamperedToken(req, res);
    else handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const idp: TestIdp = {
    issuer,
    get tokenRequests() {
      return tokenRequests;
    },
    tamperIdToken: null,
    rewriteCallback: null,
    start,
    close: async () => {
      if (inner !== null) await new Promise<void>((r) => (inner!.close(() => r()), inner!.closeAllConnections()));
      await new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections()));
    },
  };
  /** The provider's answer to a token request, its ID token's claims rewritten by `tamperIdToken` and signed again with the provider's key. */
  async function tamperedToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const port = (inner!.address() as AddressInfo).port;
    const answer = await fetch(`http://127.0.0.1:${port}${req.url}`, {
      method: req.method,
      headers: { authorization: req.headers.authorization ?? '', 'content-type': req.headers['content-type'] ?? '' },
      body: Buffer.concat(chunks),
    });
    const body = (await answer.json()) as Record<string, unknown>;
    const tamper = idp.tamperIdToken;
    if (tamper !== null && typeof body.id_token === 'string') {
      // RS256 by hand (the provider's header kept): base64url(header).base64url(claims).signature.
      const [header, payload] = body.id_token.split('.');
      const claims = Buffer.from(JSON.stringify(tamper(JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')))), 'utf8').toString('base64url');
      body.id_token = `${header}.${claims}.${sign('sha256', Buffer.from(`${header}.${claims}`), signing!).toString('base64url')}`;
    }
    res.writeHead(answer.status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  }
  function start({ clientId, clientSecret, redirectUri }: { clientId: string; clientSecret: string; redirectUri: string }): void {
    callbackUri = redirectUri;
    const provider = new Provider(issuer, {
      ...(jwks ? { jwks } : {}),
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
      scopes: ['openid', 'email', 'profile', 'groups'],
      pkce: { required: () => true },
      cookies: { keys: ['mtlsgate-test-idp-cookie-key'] },
      features: { devInteractions: { enabled: true } },
      async findAccount(_ctx: unknown, id: string) {
        const user = users[id] ?? { email: `${id}@example.com` };
        return {
          accountId: id,
          async claims() {
            return { sub: id, email: user.email, email_verified: user.emailVerified ?? true, name: user.name ?? id, groups: user.groups ?? [] };
          },
        };
      },
      // The consent step of the development interactions is skipped: the test client is first-party.
      async loadExistingGrant(ctx: { oidc: { client: { clientId: string }; session: { accountId: string } } }) {
        const grant = new provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
        grant.addOIDCScope('openid email profile groups');
        await grant.save();
        return grant;
      },
    });
    handler = provider.callback();
    if (signing !== null) {
      inner = createServer(handler);
      inner.listen(0, '127.0.0.1');
    }
  }
  return idp;
}

/**
 * A browser context of its own (cookies and all) signed in to the portal at `portalUrl` as
 * `login`, through the provider's login form, as a developer does; `step` sees the sign-in
 * page and the provider's form (for screenshots).
 */
export async function signInAt(
  browser: Browser,
  portalUrl: string,
  idp: TestIdp,
  login: string,
  step?: (page: Page, name: 'sign-in' | 'provider-login') => Promise<unknown>,
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${portalUrl}/keys`);
  assert.equal(await page.title(), 'Sign in · mtlsgate developer portal');
  await step?.(page, 'sign-in');
  await page.locator('#sign-in').click();
  await page.locator('input[name="login"]').waitFor();
  assert.ok(page.url().startsWith(idp.issuer), page.url());
  await step?.(page, 'provider-login');
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.locator('button[type="submit"]').click();
  // Back on the page that asked for sign-in.
  await page.waitForURL(`${portalUrl}/keys`);
  return { context, page };
}
