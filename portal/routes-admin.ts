// The admin page: keys waiting for approval (approve or deny), the newest portal keys and the
// plan catalog. Admins are the users named by --admins (verified email) or in --admin-group.
// Each action is an edit of the key's YAML file (approve: is_inactive false; deny: the file is
// removed), recompiled into the bundle atomically, and logged with the admin's subject.
import { catalogNow, type PortalContext } from './context.ts';
import { isCrossSite, STALE_FORM } from './csrf.ts';
import { editPortalKey } from './edit-key.ts';
import { parseRequestForm, readCappedBody, UnsupportedForm } from './form.ts';
import type { Exchange } from './http.ts';
import { approvedKeyFile, PORTAL_KEY_ID } from './key-file.ts';
import { keyViewer } from './key-status.ts';
import { answeredLoading } from './routes-keys.ts';
import { adminPage } from './page-keys.ts';
import { type FormError, messagePage } from './page.ts';
import { userLabel } from './session.ts';

const NOTICES: Record<string, string> = {
  approved: 'Approved: the key is active and the gateway reloads it.',
  denied: 'Denied: the key file is removed.',
};

function forbidden(ex: Exchange): void {
  ex.html(403, messagePage('Admins only', "This page is for the portal's admins.", ex.chrome()));
}

/** Keys waiting for approval shown per page (`/admin?page=N`), and the newest keys shown. */
const PENDING_PER_PAGE = 200;
const RECENT_SHOWN = 50;

async function render(ctx: PortalContext, ex: Exchange, status: number, notice: string | null, errors: FormError[]): Promise<void> {
  const view = keyViewer(ctx.bundlePath);
  // From the key index: only the keys shown are viewed (their certificates parsed).
  const asked = Number(ex.url.searchParams.get('page') ?? '1');
  const keys = await ctx.issuer.keyCounts.forAdmin(Number.isSafeInteger(asked) && asked >= 1 ? asked - 1 : 0, PENDING_PER_PAGE, RECENT_SHOWN);
  const { catalog } = await catalogNow(ctx);
  ex.html(
    status,
    adminPage({
      chrome: ex.chrome(),
      pending: keys.pending.map(view),
      pendingPage: { page: keys.page + 1, perPage: PENDING_PER_PAGE, total: keys.pendingTotal },
      recent: keys.recent.map(view),
      catalog,
      notice,
      errors,
      starting: ctx.startup?.actionsNotice ?? null,
      reading: ctx.issuer.keyCounts.loading,
    }),
  );
}

export async function showAdmin(ctx: PortalContext, ex: Exchange): Promise<void> {
  if (!ex.session?.user.admin) return forbidden(ex);
  if (await answeredLoading(ctx, ex, 'admin')) return;
  await render(ctx, ex, 200, NOTICES[ex.url.searchParams.get('done') ?? ''] ?? null, []);
}

export async function adminAction(ctx: PortalContext, ex: Exchange, keyId: string, action: string): Promise<void> {
  const user = ex.session!.user;
  if (!user.admin) return forbidden(ex);
  if (isCrossSite(ex.req)) return forbidden(ex);
  let form;
  try {
    form = await parseRequestForm(await readCappedBody(ex.req, 4096), ex.req.headers['content-type']);
  } catch (err) {
    if (err instanceof UnsupportedForm) return render(ctx, ex, 415, null, [{ field: null, message: err.message }]);
    return render(ctx, ex, 413, null, [{ field: null, message: 'The form is too large.' }]);
  }
  if (!ex.csrfValid(form.csrf)) return render(ctx, ex, 403, null, [{ field: null, message: `${STALE_FORM} Try again from this page.` }]);
  if (!PORTAL_KEY_ID.test(keyId) || (action !== 'approve' && action !== 'deny'))
    return render(ctx, ex, 404, null, [{ field: null, message: 'No such key or action.' }]);
  const at = ctx.now();
  const by = userLabel(user);
  const outcome = await ctx.queue.run(() =>
    editPortalKey(ctx.edits, keyId, (text, key) => {
      if (!key.pending) return { refuse: 409, message: `${keyId} is not waiting for approval.` };
      if (action === 'deny') return null;
      return approvedKeyFile(text, at, by)?.text ?? { refuse: 409, message: 'The key file is not readable.' };
    }),
  );
  if (!outcome.ok) {
    ctx.logger?.info({ admin: user.sub, email: user.email, key: keyId, action, status: outcome.status }, 'portal admin action refused');
    return render(ctx, ex, outcome.status, null, [{ field: null, message: outcome.message, details: outcome.details }]);
  }
  ctx.logger?.info({ admin: user.sub, email: user.email, key: keyId, action }, action === 'approve' ? 'portal key approved' : 'portal key denied');
  ex.redirect(`/admin?done=${action === 'approve' ? 'approved' : 'denied'}`);
}
