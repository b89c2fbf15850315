// A real OpenID provider in the test process (`oidc-provider`, its development login form:
// any login name, any password), for the portal's sign-in. The listener is bound first, so
// its issuer URL is known before the portal starts; the client (with the portal's callback
// URL as its redirect URI) is registered once the portal listens.
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

export interface TestIdp {
  issuer: string;
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

/** Users by login name; an unknown login signs in as `<login>@example.com`. */
export async function bindIdp(users: Record<string, TestUser> = {}): Promise<TestIdp> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  const server: Server = createServer((req, res) => {
    if (handler === null) res.writeHead(503).end('not started');
    else handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    start({ clientId, clientSecret, redirectUri }) {
      const provider = new Provider(issuer, {
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
    },
    close: () => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())),
  };
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
