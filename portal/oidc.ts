// Sign-in with OpenID Connect: authorization code flow with PKCE (S256), state and nonce,
// through `openid-client`. The login transaction (PKCE verifier, state, nonce, where to go
// back, until when) travels in a short-lived HttpOnly cookie, sealed (AES-256-GCM) under a
// per-process key: the portal keeps nothing per attempt, so attempts started by anyone else
// (a GET to /auth/login needs no account) cannot push out the one a browser is in; the identity
// provider's answer is checked by openid-client (ID token signature, issuer, audience, nonce),
// then the user's claims come from the ID token and the UserInfo endpoint.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import * as client from 'openid-client';
import { cookieValue, type User } from './session.ts';

export interface OidcOptions {
  /** The issuer URL (its /.well-known/openid-configuration is read on first use). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Emails (verified by the provider) that get the admin page. */
  admins: string[];
  /** A value of the `groups` claim that makes its members admins. */
  adminGroup?: string;
}

interface LoginTx {
  verifier: string;
  state: string;
  nonce: string;
  returnTo: string;
  expiresAt: number;
}

const LOGIN_TTL_MS = 10 * 60_000;
/** The longest return path kept (the cookie carries it; browsers drop cookies past 4 KiB). */
const MAX_RETURN_TO = 1024;
/** A sealed attempt: 12 bytes of IV, 16 of tag, the JSON (three 43-character values, a path, a time). */
const SEALED = /^[A-Za-z0-9_-]{40,2000}$/;
/** The email and name kept from the provider's claims (they go into key files and pages): as the loopback form's name field. */
const MAX_CLAIM_CHARS = 200;

const ANOTHER_ATTEMPT = 'This sign-in attempt expired or was started in another browser. Sign in again.';
const USED_ATTEMPT = 'This sign-in attempt was already used (the page was reloaded, or its address sent again). Sign in again.';
/**
 * Attempts whose callback arrived, kept until they expire, so each is answered once. Only a
 * callback with the state of its own sealed cookie adds one; beyond the cap the oldest is
 * forgotten (its code is still single-use at the provider).
 */
const MAX_USED_ATTEMPTS = 100_000;

export class SignInError extends Error {
  override name = 'SignInError';
}

/** A local path to go back to after sign-in; anything else (another origin, //host) is "/". */
export function safeReturnTo(value: string | null): string {
  return value !== null && /^\/(?![/\\])[\x21-\x7e]*$/.test(value) ? value : '/';
}

export class OidcSignIn {
  private config: Promise<client.Configuration> | null = null;
  /** Seals login attempts into their cookie; never leaves the process (a restart voids attempts in progress). */
  private readonly txKey = randomBytes(32);
  private readonly admins: Set<string>;
  /** The state of each attempt whose callback arrived, with its expiry (insertion order: oldest first). */
  private readonly used = new Map<string, number>();
  readonly cookieName: string;

  constructor(
    private readonly opts: OidcOptions,
    private readonly secure: boolean,
  ) {
    this.admins = new Set(opts.admins.map((a) => a.trim().toLowerCase()).filter(Boolean));
    this.cookieName = secure ? '__Host-mtlsgate_login' : 'mtlsgate_login';
  }

  /** Discovery on first use (and again after a failure): the portal starts while the provider is down. */
  private configuration(): Promise<client.Configuration> {
    if (this.config === null) {
      const issuer = new URL(this.opts.issuer);
      // Plain http only for a provider on loopback (the CLI refuses anything else): tests, local development.
      const options = issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined;
      const config = client.discovery(issuer, this.opts.clientId, undefined, client.ClientSecretBasic(this.opts.clientSecret), options);
      this.config = config;
      config.catch(() => {
        if (this.config === config) this.config = null;
      });
    }
    return this.config;
  }

  private cookie(value: string, maxAge: number): string {
    return `${this.cookieName}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${this.secure ? '; Secure' : ''}`;
  }

  /**
   * Starts a sign-in: where to send the browser, and the cookie naming this attempt.
   * `redirectUri` is the portal's /auth/callback as the browser reaches it (registered at the provider).
   */
  async begin(returnTo: string, redirectUri: string): Promise<{ location: string; setCookie: string }> {
    const config = await this.configuration();
    const tx: LoginTx = {
      verifier: client.randomPKCECodeVerifier(),
      state: client.randomState(),
      nonce: client.randomNonce(),
      returnTo: returnTo.length > MAX_RETURN_TO ? '/' : safeReturnTo(returnTo),
      expiresAt: Date.now() + LOGIN_TTL_MS,
    };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: this.opts.adminGroup ? 'openid email profile groups' : 'openid email profile',
      code_challenge: await client.calculatePKCECodeChallenge(tx.verifier),
      code_challenge_method: 'S256',
      state: tx.state,
      nonce: tx.nonce,
    });
    return { location: url.href, setCookie: this.cookie(this.seal(tx), LOGIN_TTL_MS / 1000) };
  }

  private seal(tx: LoginTx): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.txKey, iv);
    const sealed = Buffer.concat([cipher.update(JSON.stringify(tx), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url');
  }

  /** The attempt a login cookie carries; null when there is none, or it was not sealed by this process. */
  private unseal(value: string | null): LoginTx | null {
    if (value === null || !SEALED.test(value)) return null;
    const raw = Buffer.from(value, 'base64url');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.txKey, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')) as LoginTx;
    } catch {
      return null;
    }
  }

  /** Records the attempt as answered; false when it already was. */
  private firstUse(tx: LoginTx): boolean {
    const now = Date.now();
    if ((this.used.get(tx.state) ?? 0) > now) return false;
    for (const [state, expiresAt] of this.used) {
      if (expiresAt > now && this.used.size < MAX_USED_ATTEMPTS) break;
      this.used.delete(state);
    }
    this.used.set(tx.state, tx.expiresAt);
    return true;
  }

  /** The Set-Cookie value that ends this browser's attempt (sent with every answer of the callback). */
  clearCookie(): string {
    return this.cookie('', 0);
  }

  /**
   * Completes a sign-in at the callback URL (as the browser reached it: its origin and path are
   * the redirect_uri sent at the start); throws SignInError with a message for the page.
   */
  async finish(req: IncomingMessage, callbackUrl: URL): Promise<{ user: User; returnTo: string }> {
    const tx = this.unseal(cookieValue(req, this.cookieName));
    if (tx === null || tx.expiresAt <= Date.now()) {
      throw new SignInError(ANOTHER_ATTEMPT);
    }
    // The provider's refusal is believed only for the attempt this browser started (its state):
    // anyone can send a browser here with ?error=<text of their choosing> right after its sign-in
    // began. The code is shown only when it is a code (RFC 6749's error is a word like access_denied).
    if (callbackUrl.searchParams.get('state') !== tx.state) {
      throw new SignInError(ANOTHER_ATTEMPT);
    }
    // One answer per attempt (its state and nonce with it), whatever it is: a callback replayed
    // with the same cookie, before or after the provider's code was spent, starts nothing.
    if (!this.firstUse(tx)) throw new SignInError(USED_ATTEMPT);
    const error = callbackUrl.searchParams.get('error');
    if (error !== null) {
      const code = /^[a-z0-9_.-]{1,64}$/i.test(error) ? ` (${error})` : '';
      throw new SignInError(`The identity provider refused the sign-in${code}.`);
    }
    const config = await this.configuration();
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: tx.verifier,
        expectedState: tx.state,
        expectedNonce: tx.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      throw new SignInError(`The sign-in could not be completed: ${(err as Error).message}`);
    }
    const claims = tokens.claims()!;
    const info: Record<string, unknown> = { ...claims, ...(await client.fetchUserInfo(config, tokens.access_token, claims.sub)) };
    const claimed = typeof info.email === 'string' ? info.email.slice(0, MAX_CLAIM_CHARS) : '';
    // Only a verified email names the user to others (session.ts userLabel); an unverified one is a name the user typed.
    const email = info.email_verified === true ? claimed : '';
    const groups = Array.isArray(info.groups) ? info.groups.filter((g): g is string => typeof g === 'string') : [];
    const admin = (email !== '' && this.admins.has(email.toLowerCase())) || (this.opts.adminGroup !== undefined && groups.includes(this.opts.adminGroup));
    const name = (typeof info.name === 'string' && info.name !== '' ? info.name : claimed || claims.sub).slice(0, MAX_CLAIM_CHARS);
    return { user: { sub: claims.sub, email, name, admin }, returnTo: tx.returnTo };
  }
}
