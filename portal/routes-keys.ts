// A signed-in developer's keys: the list of their own, one key, and what its owner can do to
// it (renew with a new certificate and proof of possession, remove a certificate, switch it
// off). A key that is not the viewer's answers exactly as a key that does not exist (404),
// whatever URL or form is crafted; admins may look at any key but change it only from the
// admin page. Also the loopback-only portal's status page, reached with a secret receipt.
import { timingSafeEqual } from 'node:crypto';
import { errorsForViewer } from './config-report.ts';
import { catalogNow, type PortalContext } from './context.ts';
import { STALE_FORM } from './csrf.ts';
import { editPortalKey } from './edit-key.ts';
import type { Exchange } from './http.ts';
import { withCertificateAdded, withCertificateRemoved } from './key-certs.ts';
import { PORTAL_KEY_ID, type PortalKey, readPortalKey, receiptHash, switchedOffKeyFile } from './key-file.ts';
import { keyViewer } from './key-status.ts';
import { keyPage, keysLoadingPage, myKeysPage } from './page-keys.ts';
import { lookupPage, statusPage } from './page-receipt.ts';
import { type FormError, messagePage } from './page.ts';
import { userLabel } from './session.ts';
import { checkProof, proofMessage } from './proof.ts';
import { readSubmission, safePasted, submittedCertificate } from './routes-request.ts';
import { validateCertificate } from './validate-cert.ts';

/** Results of an action, shown on the page it redirects to (fixed texts: nothing from the URL is echoed). */
const NOTICES: Record<string, string> = {
  issued: 'Your key is issued.',
  renewed: 'The new certificate is added. The gateway accepts both until you remove the old one.',
  removed: 'The certificate is removed: the gateway no longer accepts it for this key.',
  'switched-off': 'Your key is switched off: the gateway refuses it from its next request on.',
};

function notFound(ex: Exchange): void {
  ex.html(404, messagePage('Key not found', 'You have no key with this id.', ex.chrome()));
}

/** The key if this signed-in viewer may see it (its owner, or an admin), else null. */
function visibleKey(ctx: PortalContext, ex: Exchange, keyId: string): PortalKey | null {
  const user = ex.session?.user;
  if (!user || !PORTAL_KEY_ID.test(keyId)) return null;
  const key = readPortalKey(ctx.configDir, keyId);
  return key !== null && (key.owner === user.sub || user.admin) ? key : null;
}

/** How long a browser waits before it asks again for a keys page while the key files are read. */
const LOADING_RETRY_SECONDS = 2;

/**
 * Answers 503 with a page saying so while the key index has not read every file's text after a
 * start, PAGE_WAIT_MS after the page was asked (portal/key-index.ts: a part of the list is never
 * shown); false once the page can answer.
 */
export async function answeredLoading(ctx: PortalContext, ex: Exchange, nav: 'keys' | 'admin'): Promise<boolean> {
  if (await ctx.issuer.keyCounts.answersWithin()) return false;
  const loading = ctx.issuer.keyCounts.loading ?? { read: 0, total: 0 };
  ex.html(503, keysLoadingPage(ex.chrome(), nav, loading, LOADING_RETRY_SECONDS), { 'retry-after': String(LOADING_RETRY_SECONDS) });
  return true;
}

export async function myKeys(ctx: PortalContext, ex: Exchange): Promise<void> {
  const sub = ex.session!.user.sub;
  // While the key files are read after a start, the index finds this developer's own once every file's text is in.
  if (await answeredLoading(ctx, ex, 'keys')) return;
  const view = keyViewer(ctx.bundlePath);
  // From the index: the files the directory watch named since the last view are read again.
  const keys = (await ctx.issuer.keyCounts.ownedBy(sub)).map(view);
  const { catalog } = await catalogNow(ctx);
  ex.html(200, myKeysPage(ex.chrome(), keys, catalog, ctx.startup?.actionsNotice ?? null));
}

async function renderKey(
  ctx: PortalContext,
  ex: Exchange,
  key: PortalKey,
  status: number,
  errors: FormError[],
  notice: string | null,
  certificateValue = '',
  challenge?: string,
): Promise<void> {
  const { catalog } = await catalogNow(ctx);
  const model = {
    chrome: ex.chrome(),
    key: keyViewer(ctx.bundlePath)(key),
    catalog,
    gatewayUrl: ctx.gatewayUrl,
    own: key.owner === ex.session!.user.sub,
    challenge: ctx.challenges.challengeFor(ex.csrfCookie(), challenge),
    errors,
    notice,
    certificateValue,
    starting: ctx.startup?.actionsNotice ?? null,
  };
  ex.html(status, keyPage(model));
}

export async function showKey(ctx: PortalContext, ex: Exchange, keyId: string): Promise<void> {
  const key = visibleKey(ctx, ex, keyId);
  if (key === null) return notFound(ex);
  await renderKey(ctx, ex, key, 200, [], NOTICES[ex.url.searchParams.get('done') ?? ''] ?? null);
}

/** POST /keys/<id>/<action>, owner only. */
export async function keyAction(ctx: PortalContext, ex: Exchange, keyId: string, action: string): Promise<void> {
  const user = ex.session!.user;
  const key = PORTAL_KEY_ID.test(keyId) ? readPortalKey(ctx.configDir, keyId) : null;
  const own = key !== null && key.owner === user.sub;
  const refuseWith = async (status: number, errors: FormError[], extra: Record<string, string> = {}) => {
    if (ex.wantsJson()) return ex.json(status, { errors }, extra);
    if (!own) return notFound(ex);
    await renderKey(ctx, ex, key, status, errors, null);
  };
  const renew = action === 'renew';
  const form = await readSubmission(ctx, ex, renew, refuseWith);
  if (form === null) return;
  if (!ex.csrfValid(form.csrf)) {
    return refuseWith(403, [{ field: null, message: `${STALE_FORM} Submit it again from this page.` }]);
  }
  // Someone else's key, or none: the same answer, and nothing is read further or written.
  if (!own) {
    ctx.logger?.warn({ user: user.sub, key: keyId, action }, "portal: action on a key that is not the user's refused");
    return ex.wantsJson() ? ex.json(404, { errors: [{ field: null, message: 'You have no key with this id.' }] }) : notFound(ex);
  }
  const at = ctx.now();
  const by = userLabel(user);
  let edit: (text: string, current: PortalKey) => string | null | { refuse: number; message: string };
  let done: string;
  if (action === 'switch-off') {
    done = 'switched-off';
    // Off already: nothing to write (each post added a line, a recompile and a bundle write before, unbounded).
    edit = (text, current) =>
      current.owner !== user.sub
        ? { refuse: 404, message: 'You have no key with this id.' }
        : current.switchedOff
          ? text
          : (switchedOffKeyFile(text, at, by) ?? { refuse: 409, message: 'The key file is not readable.' });
  } else if (action === 'remove-certificate') {
    done = 'removed';
    edit = (text, current) => {
      if (current.owner !== user.sub) return { refuse: 404, message: 'You have no key with this id.' };
      const next = withCertificateRemoved(text, form.fingerprint.replace(/^sha256:/, '').toLowerCase());
      return typeof next === 'string' ? next : { refuse: 422, message: next.problem };
    };
  } else if (renew) {
    done = 'renewed';
    const values = safePasted(form.pasted);
    const { certificate, errors } = submittedCertificate(form);
    const compiled = await ctx.compile(ctx.configDir);
    if (compiled.apis === null)
      return refuseWith(503, [{ field: null, message: 'The gateway configuration does not compile; try again once the platform team fixed it.' }]);
    const cert = validateCertificate(certificate, compiled.certificate, at);
    if (!cert.ok) errors.push({ field: 'certificate', message: cert.message });
    else {
      const problem = checkProof(cert.pem, form.challenge, form.signature);
      if (problem !== null) errors.push({ field: 'signature', message: proofMessage(problem) });
    }
    if (errors.length > 0 || !cert.ok) {
      if (ex.wantsJson()) return ex.json(422, { errors });
      return renderKey(ctx, ex, key, 422, errors, null, values, form.challenge);
    }
    const binding = ex.csrfCookie();
    edit = (text, current) => {
      if (current.owner !== user.sub) return { refuse: 404, message: 'You have no key with this id.' };
      if (current.switchedOff) return { refuse: 409, message: 'This key is switched off.' };
      if (!ctx.challenges.consume(binding, form.challenge))
        return { refuse: 422, message: 'This challenge expired or was already used. Sign the new one and submit again.' };
      const next = withCertificateAdded(text, cert.pem);
      return typeof next === 'string' ? next : { refuse: 422, message: next.problem };
    };
  } else {
    return notFound(ex);
  }
  const outcome = await ctx.queue.run(() => editPortalKey(ctx.edits, keyId, edit));
  if (!outcome.ok) {
    ctx.logger?.info({ user: user.sub, key: keyId, action, status: outcome.status }, 'portal key change refused');
    const fresh = readPortalKey(ctx.configDir, keyId);
    const errors = errorsForViewer(ctx, ex, [{ field: null, message: outcome.message, details: outcome.details }]);
    if (fresh === null || ex.wantsJson()) return ex.json(outcome.status, { errors });
    return renderKey(ctx, ex, fresh, outcome.status, errors, null);
  }
  ctx.logger?.info({ user: user.sub, email: user.email, key: keyId, action }, `portal key ${done}`);
  if (ex.wantsJson()) return ex.json(200, { key_id: keyId, done });
  ex.redirect(`/keys/${keyId}?done=${done}`);
}

/** A loopback-only portal's status page: only with the receipt of that key. */
export async function receiptStatus(ctx: PortalContext, ex: Exchange, pathKeyId: string | null): Promise<void> {
  const receipt = (ex.url.searchParams.get('receipt') ?? '').trim();
  if (receipt === '' && pathKeyId === null) return ex.html(200, lookupPage(ex.chrome(), false));
  const keyId = receipt.split('.')[0] ?? '';
  const key = PORTAL_KEY_ID.test(keyId) && (pathKeyId === null || pathKeyId === keyId) ? readPortalKey(ctx.configDir, keyId) : null;
  const expected = Buffer.from(key?.receiptSha256 ?? '', 'hex');
  const given = Buffer.from(receiptHash(receipt), 'hex');
  if (key === null || expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return ex.html(404, lookupPage(ex.chrome(), true));
  }
  const { catalog } = await catalogNow(ctx);
  const model = {
    chrome: ex.chrome(),
    key: keyViewer(ctx.bundlePath)(key),
    entries: catalog.filter((e) => key.policies.includes(e.policy)),
    gatewayUrl: ctx.gatewayUrl,
    justIssued: ex.url.searchParams.get('issued') === '1',
    receipt,
  };
  ex.html(200, statusPage(model));
}
