// One request to the portal and its answer: the protective headers on every answer, cookies
// to set, the CSRF token of this browser, and what every page shows around its content.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CsrfGuard } from './csrf.ts';
import type { Chrome } from './page.ts';
import type { Session } from './session.ts';

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer, browsers send `Origin: null` on form posts.
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

export class Exchange {
  /** Set-Cookie values to send with the answer. */
  readonly cookies: string[] = [];
  private token: string | null = null;
  readonly method: string;
  /** Set when the request was admitted to wait for the start-up compile (portal/startup.ts): its deadline. */
  waitDeadline: AbortSignal | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly url: URL,
    private readonly csrf: CsrfGuard,
    /** The signed-in session, null when none (or on a loopback-only portal). */
    readonly session: Session | null,
    /** true when the portal signs users in (OIDC). */
    readonly oidc: boolean,
  ) {
    this.method = req.method ?? 'GET';
  }

  get readOnly(): boolean {
    return this.method === 'GET' || this.method === 'HEAD';
  }

  wantsJson(): boolean {
    return /\bapplication\/json\b/.test(this.req.headers.accept ?? '');
  }

  send(status: number, type: string, body: string, extra: Record<string, string> = {}): void {
    const headers: Record<string, string | string[]> = {
      ...SECURITY_HEADERS,
      'content-type': type,
      'content-length': String(Buffer.byteLength(body)),
      ...extra,
    };
    if (this.cookies.length > 0) headers['set-cookie'] = this.cookies;
    this.res.writeHead(status, headers);
    this.res.end(this.method === 'HEAD' ? undefined : body);
  }

  html(status: number, body: string, extra: Record<string, string> = {}): void {
    this.send(status, 'text/html; charset=utf-8', body, extra);
  }

  json(status: number, value: unknown, extra: Record<string, string> = {}): void {
    this.send(status, 'application/json', JSON.stringify(value) + '\n', extra);
  }

  /** 303 See Other: after a POST, the browser GETs the result (reloading it submits nothing). */
  redirect(location: string): void {
    const headers: Record<string, string | string[]> = { ...SECURITY_HEADERS, location, 'content-length': '0' };
    if (this.cookies.length > 0) headers['set-cookie'] = this.cookies;
    this.res.writeHead(303, headers);
    this.res.end();
  }

  /** The CSRF cookie value of this browser (set on the answer when it has none yet). */
  csrfCookie(): string {
    let cookie = this.csrf.cookieOf(this.req);
    if (cookie === null) {
      cookie = this.csrf.newCookieValue();
      this.cookies.push(this.csrf.setCookieHeader(cookie));
      // Later calls in this exchange see the cookie just set.
      this.req.headers.cookie = `${this.req.headers.cookie ? `${this.req.headers.cookie}; ` : ''}${this.csrf.setCookieHeader(cookie).split(';')[0]}`;
    }
    return cookie;
  }

  /**
   * A new CSRF cookie for this browser (at sign-in): tokens and challenges handed out before
   * belong to the old one.
   */
  rotateCsrfCookie(): void {
    this.cookies.push(this.csrf.setCookieHeader(this.csrf.newCookieValue()));
  }

  /** The form token that goes with this browser's CSRF cookie and its signed-in session. */
  csrfToken(): string {
    this.token ??= this.csrf.tokenFor(this.csrfCookie(), this.session?.id ?? '');
    return this.token;
  }

  csrfValid(token: unknown): boolean {
    return this.csrf.verify(this.csrf.cookieOf(this.req), this.session?.id ?? '', token);
  }

  chrome(): Chrome {
    return { oidc: this.oidc, user: this.session?.user ?? null, csrfToken: this.session ? this.csrfToken() : '' };
  }

  /**
   * Who is asking, for the submission limiter: the signed-in subject, else the client address.
   * Not both: a portal reached over https sits behind a proxy, whose one address every
   * developer shares, and one account spending that address's budget refused everyone's keys.
   */
  clientKeys(): string[] {
    return this.session ? [`sub:${this.session.user.sub}`] : [`addr:${this.req.socket.remoteAddress ?? 'unknown'}`];
  }
}
