// Sign-in and sign-out: /auth/login sends the browser to the identity provider (code flow,
// PKCE), /auth/callback turns its answer into a session, POST /auth/logout ends it.
import type { PortalContext } from './context.ts';
import { isCrossSite, STALE_FORM } from './csrf.ts';
import { parseRequestForm, readCappedBody } from './form.ts';
import type { Exchange } from './http.ts';
import { safeReturnTo, SignInError } from './oidc.ts';
import { signInPage } from './page-keys.ts';
import { messagePage } from './page.ts';

function callbackUrl(ctx: PortalContext): string {
  return new URL('/auth/callback', ctx.publicUrl()).href;
}

export async function login(ctx: PortalContext, ex: Exchange): Promise<void> {
  let started: { location: string; setCookie: string };
  try {
    started = await ctx.oidc!.begin(safeReturnTo(ex.url.searchParams.get('return')), callbackUrl(ctx));
  } catch (err) {
    ctx.logger?.error({ error: (err as Error).message }, 'portal: the identity provider cannot be reached');
    return ex.html(503, messagePage('Sign-in is unavailable', 'The identity provider cannot be reached right now. Try again in a minute.', ex.chrome()));
  }
  ex.cookies.push(started.setCookie);
  ex.redirect(started.location);
}

export async function callback(ctx: PortalContext, ex: Exchange): Promise<void> {
  // The URL the provider redirected to, as the browser reached it (its path and query).
  const url = new URL(ex.url.pathname + ex.url.search, callbackUrl(ctx));
  // The attempt ends here, whatever the answer: its cookie goes.
  ex.cookies.push(ctx.oidc!.clearCookie());
  try {
    const { user, returnTo } = await ctx.oidc!.finish(ex.req, url);
    // A session this browser had before (another account, or one planted in it) ends: one browser, one session.
    if (ex.session !== null) ctx.sessions!.destroy(ex.session);
    ex.cookies.push(ctx.sessions!.create(user).setCookie);
    // A new CSRF cookie with the new session: nothing handed out before the sign-in is accepted after it.
    ex.rotateCsrfCookie();
    ctx.logger?.info({ user: user.sub, email: user.email, name: user.name, admin: user.admin }, 'portal sign-in');
    ex.redirect(returnTo);
  } catch (err) {
    if (!(err instanceof SignInError)) throw err;
    ctx.logger?.info({ reason: err.message }, 'portal sign-in failed');
    ex.html(400, signInPage(ex.chrome(), '/', err.message));
  }
}

export async function logout(ctx: PortalContext, ex: Exchange): Promise<void> {
  if (isCrossSite(ex.req)) return ex.html(403, messagePage('Refused', 'This form was sent from another site.', ex.chrome()));
  const form = await parseRequestForm(await readCappedBody(ex.req, 4096), ex.req.headers['content-type']).catch(() => null);
  if (form === null || !ex.csrfValid(form.csrf)) {
    return ex.html(403, messagePage('Refused', `${STALE_FORM} Reload the page and use its Sign out button.`, ex.chrome()));
  }
  if (ex.session) ctx.logger?.info({ user: ex.session.user.sub, email: ex.session.user.email }, 'portal sign-out');
  ex.cookies.push(ctx.sessions!.destroy(ex.session));
  ex.redirect('/signed-out');
}
