// CSRF protection for the portal's form: a signed double-submit token. The browser holds a
// random value in a SameSite=Strict, HttpOnly cookie; the form carries HMAC(secret, value and
// the signed-in session's id) under a per-process secret. A POST is accepted only when both are
// present and match (compared in constant time), so another site can neither read nor forge the
// pair. The session's id is in the MAC (OWASP: a token per user session): a token taken from a
// page before a sign-out, or before someone else signed in in the same browser, is refused once
// that session has ended, though the cookie stays the browser's. The cookie itself is replaced at
// every sign-in (rotateCookie), which also ends the challenges handed out to it. Behind
// https the cookie is Secure with the __Host- prefix: a plain cookie planted over http (by
// anyone on the network path) or by a sibling domain is not read, so nobody can fix this
// browser's value to one whose token they fetched.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const CSRF_COOKIE = 'mtlsgate_portal_csrf';

/** The start of every refusal of a form whose token does not match: what may have happened (each adds what to do). */
export const STALE_FORM =
  'This page is out of date (the portal restarted, or someone signed in or out in this browser since it was shown), or the form did not come from the portal.';
const COOKIE_VALUE = /^[A-Za-z0-9_-]{22,64}$/;

export class CsrfGuard {
  /** Never leaves the process: a restart invalidates open forms (the page says to reload). */
  private readonly secret = randomBytes(32);
  /** The cookie's name: `__Host-` + CSRF_COOKIE when served over https. */
  readonly cookieName: string;

  constructor(private readonly secure = false) {
    this.cookieName = secure ? `__Host-${CSRF_COOKIE}` : CSRF_COOKIE;
  }

  /** The cookie value of this request if it has a well-formed one. */
  cookieOf(req: IncomingMessage): string | null {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === this.cookieName) {
        const value = part.slice(eq + 1).trim();
        return COOKIE_VALUE.test(value) ? value : null;
      }
    }
    return null;
  }

  newCookieValue(): string {
    return randomBytes(18).toString('base64url');
  }

  setCookieHeader(value: string): string {
    return `${this.cookieName}=${value}; Path=/; HttpOnly; SameSite=Strict${this.secure ? '; Secure' : ''}`;
  }

  /**
   * The hidden form field value that goes with a cookie value and the signed-in session (its
   * id; '' without one: the loopback-only portal, the sign-in pages).
   */
  tokenFor(cookieValue: string, sessionId: string): string {
    // The cookie value never holds a newline (COOKIE_VALUE), so the pair reads one way only.
    return createHmac('sha256', this.secret).update(`${cookieValue}\n${sessionId}`).digest('base64url');
  }

  verify(cookieValue: string | null, sessionId: string, token: unknown): boolean {
    if (cookieValue === null || typeof token !== 'string') return false;
    const expected = Buffer.from(this.tokenFor(cookieValue, sessionId));
    const got = Buffer.from(token);
    return got.length === expected.length && timingSafeEqual(got, expected);
  }
}

/**
 * Browsers say where a POST comes from; when they do, it must be this origin. Sec-Fetch-Site
 * is the browser's own verdict; Origin is the fallback for older browsers. (Scripts and curl
 * send neither header and are judged by the token alone.)
 */
export function isCrossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site !== 'same-origin' && site !== 'none';
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true; // "null" (sandboxed frame, file:) or garbage
  }
}
