// Signed-in sessions: the cookie holds a random session id and its HMAC under a per-process
// secret; the session itself (who, until when) stays in the portal's memory, so signing out
// ends it for good (a copied cookie is worthless afterwards) and a restart signs everyone out.
// HttpOnly always, Secure (and the __Host- prefix) when the portal is reached over https,
// SameSite=Lax: the sign-in callback arrives as a top-level navigation from the identity
// provider and must carry it; every change is a POST with a CSRF token besides.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface User {
  /** The identity provider's subject: what `owner:` records. */
  sub: string;
  /** The email the provider says it verified (`email_verified: true`); '' when it did not. */
  email: string;
  /** The provider's `name` (free text the user often sets themselves), else the unverified email, else `sub`. */
  name: string;
  admin: boolean;
}

/**
 * How the portal names a user to others (the key file's developer line, who switched a key
 * off or approved it, the admin page): the verified email, else the name marked as unverified
 * with the subject beside it. A name, or an email the provider did not verify, is whatever the
 * user typed at the provider: unmarked, "ada@example.com" would pass for the admin Ada.
 */
export function userLabel(user: User): string {
  return user.email !== '' ? user.email : `${user.name} (no verified email; subject ${user.sub})`;
}

export interface Session {
  id: string;
  user: User;
  expiresAt: number;
}

export const SESSION_TTL_MS = 8 * 3600_000;
const MAX_SESSIONS = 100_000;

/** The value of cookie `name` in the request, or null. */
export function cookieValue(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export class SessionStore {
  private readonly secret = randomBytes(32);
  private readonly sessions = new Map<string, Session>();
  /** The session cookie's name: the __Host- prefix makes browsers insist on Secure, Path=/ and no Domain. */
  readonly cookieName: string;

  constructor(
    private readonly secure: boolean,
    private readonly ttlMs = SESSION_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.cookieName = secure ? '__Host-mtlsgate_session' : 'mtlsgate_session';
  }

  private sign(id: string): string {
    return createHmac('sha256', this.secret).update(id).digest('base64url');
  }

  /** Starts a session; returns it and the Set-Cookie header value. */
  create(user: User): { session: Session; setCookie: string } {
    if (this.sessions.size >= MAX_SESSIONS) this.sweep();
    const id = randomBytes(24).toString('base64url');
    const session: Session = { id, user, expiresAt: this.now() + this.ttlMs };
    this.sessions.set(id, session);
    return { session, setCookie: this.cookie(`${id}.${this.sign(id)}`, Math.floor(this.ttlMs / 1000)) };
  }

  /** The live session this request's cookie names, or null. */
  get(req: IncomingMessage): Session | null {
    const raw = cookieValue(req, this.cookieName);
    const m = raw === null ? null : /^([A-Za-z0-9_-]{32})\.([A-Za-z0-9_-]{43})$/.exec(raw);
    if (!m) return null;
    const expected = Buffer.from(this.sign(m[1]!));
    if (!timingSafeEqual(expected, Buffer.from(m[2]!))) return null;
    const session = this.sessions.get(m[1]!);
    if (session === undefined) return null;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(session.id);
      return null;
    }
    return session;
  }

  /** Ends the session; returns the Set-Cookie header value that clears the cookie. */
  destroy(session: Session | null): string {
    if (session) this.sessions.delete(session.id);
    return this.cookie('', 0);
  }

  private cookie(value: string, maxAge: number): string {
    return `${this.cookieName}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${this.secure ? '; Secure' : ''}`;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
  }
}
